//! The dashboards' aggregates (`llmRunStats`, `systemRecordStats`, `auditStats`) against values
//! the test computes itself from the runs it generated (or from SQL over the stored rows):
//! every measure, every bucket unit, time zones across a DST change, the `other` group, the
//! limits, tenant isolation, `totalCount` from rollups, and rollups rebuilt from the evidence
//! equal to what ingest maintained after concurrent ingest.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::both;
use crate::cli::{run_err, run_ok};
use crate::helpers::{Backend, TestApp};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const MODELS: [(&str, &str); 5] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4"),
    ("anthropic", "claude-3-5-haiku"),
    ("google", "gemini-2.0-flash"),
];
const STATUSES: [&str; 5] = ["SUCCEEDED", "FAILED", "BLOCKED", "TIMED_OUT", "ABORTED"];

/// One generated run and what the test knows about it.
#[derive(Clone, Debug)]
struct GenRun {
    id: String,
    provider: &'static str,
    model: &'static str,
    status: &'static str,
    agent: Option<&'static str>,
    source: &'static str,
    session: Option<String>,
    started: DateTime<Utc>,
    completed: Option<DateTime<Utc>>,
    input: i64,
    output: i64,
    /// The record's own cost (0: the steps' sum counts).
    cost: i64,
    /// Costs of the steps sent with the run, then of those sent later on their own.
    step_costs: Vec<i64>,
    late_step_costs: Vec<i64>,
}

impl GenRun {
    fn cost_total(&self) -> i64 {
        if self.cost > 0 {
            self.cost
        } else {
            self.step_costs.iter().chain(&self.late_step_costs).sum()
        }
    }
    fn duration_us(&self) -> Option<i64> {
        self.completed
            .map(|c| (c - self.started).num_microseconds().unwrap())
    }
    fn dim(&self, d: &str) -> Option<String> {
        match d {
            "PROVIDER" => Some(self.provider.to_string()),
            "MODEL" => Some(self.model.to_string()),
            "STATUS" => Some(self.status.to_string()),
            "AGENT" => self.agent.map(str::to_string),
            "SOURCE" => Some(self.source.to_string()),
            "SESSION" => self.session.clone(),
            _ => unreachable!(),
        }
    }
    fn input_json(&self, with_steps: bool) -> Value {
        let steps: Vec<Value> = if with_steps {
            self.step_costs
                .iter()
                .enumerate()
                .map(|(i, c)| step_json(None, i, *c, self.started))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "runId": self.id, "traceId": format!("t-{}", self.id), "provider": self.provider,
            "model": self.model, "inputTokens": self.input, "outputTokens": self.output,
            "costCents": self.cost, "executionStatus": self.status,
            "startedAt": iso(self.started), "completedAt": self.completed.map(iso),
            "source": self.source, "isSynthetic": false, "agentId": self.agent,
            "humanActorId": if self.agent.is_none() { Some("dana") } else { None },
            "sessionId": self.session, "steps": steps,
        })
    }
}

fn step_json(trace: Option<&str>, index: usize, cost: i64, at: DateTime<Utc>) -> Value {
    json!({
        "traceId": trace, "stepIndex": index, "timestamp": iso(at + Duration::milliseconds(index as i64)),
        "skillName": "llm.call", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS",
        "costCents": cost, "durationMs": 5,
    })
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Instants on the edges the buckets must get right: the Berlin autumn change (01:00 UTC on
/// 2026-10-25), Berlin midnights on both sides of it, a UTC day and a Kolkata midnight.
const EDGES: [&str; 12] = [
    // The ragged window's ends: its first instant, the one before, its last, its end.
    "2026-10-23T05:07:13.250001Z",
    "2026-10-23T05:07:13.25Z",
    "2026-10-27T19:59:59.499999Z",
    "2026-10-27T19:59:59.5Z",
    "2026-10-25T00:59:59.999999Z",
    "2026-10-25T01:00:00Z",
    "2026-10-24T21:59:59.999999Z",
    "2026-10-24T22:00:00Z",
    "2026-10-25T22:59:59.999999Z",
    "2026-10-25T23:00:00Z",
    "2026-10-26T00:00:00Z",
    "2026-10-26T18:29:59.999999Z",
];

fn generate(rng: &mut Rng, prefix: &str, n: usize) -> Vec<GenRun> {
    let base = at("2026-10-23T00:00:00Z");
    let span_us = 5 * 86_400 * 1_000_000i64;
    (0..n)
        .map(|i| {
            let (provider, model) = MODELS[rng.below(MODELS.len() as u64) as usize];
            let started = match EDGES.get(i) {
                Some(e) => at(e),
                None => base + Duration::microseconds((rng.next() % span_us as u64) as i64),
            };
            let completed = (rng.below(10) != 0)
                .then(|| started + Duration::microseconds(1 + rng.below(90_000_000) as i64));
            let steps = rng.below(3) as usize;
            GenRun {
                id: format!("{prefix}-{i:04}"),
                provider,
                model,
                status: STATUSES[[0, 0, 0, 0, 0, 1, 1, 2, 3, 4][rng.below(10) as usize]],
                agent: (rng.below(4) != 0).then(|| rng.pick(&["triage", "research", "billing"])),
                source: rng.pick(&["sdk", "api", "otel"]),
                session: (rng.below(3) == 0).then(|| format!("s{}", rng.below(4))),
                started,
                completed,
                input: if rng.below(5) == 0 {
                    0
                } else {
                    rng.below(5000) as i64
                },
                output: rng.below(2000) as i64,
                cost: if rng.below(3) == 0 {
                    0
                } else {
                    rng.below(500) as i64
                },
                step_costs: (0..steps).map(|_| rng.below(40) as i64).collect(),
                late_step_costs: if rng.below(4) == 0 {
                    vec![1 + rng.below(30) as i64]
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Stores the runs (with their first steps) in batches, then their late steps on their own.
async fn ingest(app: &TestApp, key: &str, runs: &[GenRun]) {
    for chunk in runs.chunks(40) {
        let runs: Vec<Value> = chunk.iter().map(|r| r.input_json(true)).collect();
        let data = app
            .query(
                key,
                "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }",
                json!({ "runs": runs }),
            )
            .await;
        assert!(data["ingestRuns"]["storedCount"].as_i64().unwrap() > 0);
    }
    ingest_late_steps(app, key, runs).await;
}

async fn ingest_late_steps(app: &TestApp, key: &str, runs: &[GenRun]) {
    let steps: Vec<Value> = runs
        .iter()
        .flat_map(|r| {
            let trace = format!("t-{}", r.id);
            r.late_step_costs
                .iter()
                .enumerate()
                .map(move |(i, c)| step_json(Some(&trace), r.step_costs.len() + i, *c, r.started))
                .collect::<Vec<_>>()
        })
        .collect();
    for chunk in steps.chunks(50) {
        app.query(
            key,
            "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }",
            json!({ "s": chunk }),
        )
        .await;
    }
}

/// What the test expects of one cell.
#[derive(Default, Debug)]
struct Cell {
    runs: i64,
    by_status: BTreeMap<&'static str, i64>,
    input: i64,
    output: i64,
    cost: i64,
    durations: Vec<i64>,
}

impl Cell {
    fn add(&mut self, r: &GenRun) {
        self.runs += 1;
        *self.by_status.entry(r.status).or_default() += 1;
        self.input += r.input;
        self.output += r.output;
        self.cost += r.cost_total();
        self.durations.extend(r.duration_us());
    }

    /// Nearest-rank percentile in milliseconds.
    fn percentile(&self, p: usize) -> Value {
        let mut d = self.durations.clone();
        if d.is_empty() {
            return Value::Null;
        }
        d.sort();
        let rank = (p * d.len()).div_ceil(100);
        json!(d[rank - 1] as f64 / 1000.0)
    }

    fn check(&self, got: &Value, what: &str) {
        let status = |s: &str| self.by_status.get(s).copied().unwrap_or(0);
        assert_eq!(got["runs"], json!(self.runs), "runs of {what}");
        assert_eq!(
            got["succeeded"],
            json!(status("SUCCEEDED")),
            "succeeded of {what}"
        );
        assert_eq!(got["failed"], json!(status("FAILED")), "failed of {what}");
        assert_eq!(
            got["blocked"],
            json!(status("BLOCKED")),
            "blocked of {what}"
        );
        assert_eq!(
            got["timedOut"],
            json!(status("TIMED_OUT")),
            "timedOut of {what}"
        );
        assert_eq!(
            got["aborted"],
            json!(status("ABORTED")),
            "aborted of {what}"
        );
        assert_eq!(
            got["inputTokens"],
            json!(self.input),
            "inputTokens of {what}"
        );
        assert_eq!(
            got["outputTokens"],
            json!(self.output),
            "outputTokens of {what}"
        );
        assert_eq!(got["costCents"], json!(self.cost), "costCents of {what}");
        assert_eq!(
            got["completedRuns"],
            json!(self.durations.len()),
            "completed of {what}"
        );
        if self.runs == 0 {
            assert_eq!(got["errorRate"], Value::Null, "errorRate of {what}");
        } else {
            let errors = status("FAILED") + status("TIMED_OUT") + status("ABORTED");
            let want = errors as f64 / self.runs as f64;
            let rate = got["errorRate"].as_f64().unwrap();
            assert!(
                (rate - want).abs() < 1e-12,
                "errorRate of {what}: {rate} vs {want}"
            );
        }
        if self.durations.is_empty() {
            assert_eq!(got["durationAvgMs"], Value::Null, "avg of {what}");
        } else {
            let want =
                self.durations.iter().sum::<i64>() as f64 / self.durations.len() as f64 / 1000.0;
            let avg = got["durationAvgMs"].as_f64().unwrap();
            assert!(
                (avg - want).abs() < 1e-6,
                "durationAvgMs of {what}: {avg} vs {want}"
            );
        }
        assert_eq!(got["durationP50Ms"], self.percentile(50), "p50 of {what}");
        assert_eq!(got["durationP90Ms"], self.percentile(90), "p90 of {what}");
        assert_eq!(got["durationP99Ms"], self.percentile(99), "p99 of {what}");
    }
}

const MEASURES: &str = "runs succeeded failed blocked timedOut aborted errorRate inputTokens \
    outputTokens costCents completedRuns durationAvgMs durationP50Ms durationP90Ms durationP99Ms";

/// The local midnights of `zone` from the day of `from` until `to`, every `step` days (or
/// months), as the test computes them.
fn local_starts(
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    unit: &str,
) -> Vec<DateTime<Utc>> {
    let mut date = from.with_timezone(&zone).date_naive();
    date = match unit {
        "WEEK" => date - Duration::days(date.weekday().num_days_from_monday() as i64),
        "MONTH" => NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap(),
        _ => date,
    };
    let mut out = Vec::new();
    loop {
        let start = zone
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc);
        if start >= to {
            return out;
        }
        out.push(start);
        date = match unit {
            "DAY" => date + Duration::days(1),
            "WEEK" => date + Duration::days(7),
            _ => date.checked_add_months(chrono::Months::new(1)).unwrap(),
        };
    }
}

struct Case {
    from: &'static str,
    to: &'static str,
    bucket: Option<&'static str>,
    zone: &'static str,
}

/// A key of `role` for tenant `tenant` (created when missing).
async fn key_of(app: &TestApp, tenant: &str, role: runledger::domain::Role) -> String {
    let db = app.db();
    runledger::auth::ensure_tenant(db, tenant, tenant, &[])
        .await
        .unwrap();
    runledger::auth::create_key(db, tenant, role, None, None)
        .await
        .unwrap()
        .0
}

async fn run_stats(app: &TestApp, key: &str, args: &str, selection: &str) -> Value {
    let q = format!("{{ llmRunStats({args}) {{ {selection} }} }}");
    app.query(key, &q, json!({})).await["llmRunStats"].clone()
}

/// Checks one window of one bucket unit and zone: buckets, series and total.
async fn check_case(app: &TestApp, key: &str, runs: &[GenRun], case: &Case) {
    let zone: Tz = case.zone.parse().unwrap();
    let (from, to) = (at(case.from), at(case.to));
    let bucket_arg = case
        .bucket
        .map_or(String::new(), |b| format!(", bucket: {b}"));
    let args = format!(
        r#"from: "{}", to: "{}", timeZone: "{}"{bucket_arg}"#,
        case.from, case.to, case.zone
    );
    let got = run_stats(
        app,
        key,
        &args,
        &format!("buckets {{ start end localStart }} total {{ {MEASURES} }} series {{ bucketStart {MEASURES} }} runsFromRollups"),
    )
    .await;
    let what = format!("{} {} {:?}", case.from, case.zone, case.bucket);
    let in_window: Vec<&GenRun> = runs
        .iter()
        .filter(|r| r.started >= from && r.started < to)
        .collect();
    let mut total = Cell::default();
    in_window.iter().for_each(|r| total.add(r));
    total.check(&got["total"], &format!("total of {what}"));

    let Some(unit) = case.bucket else {
        assert_eq!(got["buckets"], json!([]));
        return;
    };
    let buckets: Vec<(DateTime<Utc>, DateTime<Utc>)> = got["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                at(b["start"].as_str().unwrap()),
                at(b["end"].as_str().unwrap()),
            )
        })
        .collect();
    // The buckets the test expects: calendar units from local midnights; minutes and hours of
    // elapsed time starting on the zone's whole minute or hour.
    match unit {
        "DAY" | "WEEK" | "MONTH" => {
            let want = local_starts(zone, from, to, unit);
            let starts: Vec<_> = buckets.iter().map(|b| b.0).collect();
            assert_eq!(starts, want, "bucket starts of {what}");
        }
        _ => {
            let len = if unit == "HOUR" { 3600 } else { 60 };
            for (s, e) in &buckets {
                assert_eq!((*e - *s).num_seconds(), len, "bucket length of {what}");
                let local = s.with_timezone(&zone);
                assert_eq!(local.format("%S").to_string(), "00");
                if unit == "HOUR" {
                    assert_eq!(local.format("%M").to_string(), "00", "hour start of {what}");
                }
            }
            assert!(buckets[0].0 <= from && buckets.last().unwrap().1 >= to);
        }
    }
    for pair in buckets.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "contiguous buckets of {what}");
    }
    let series = got["series"].as_array().unwrap();
    assert_eq!(series.len(), buckets.len());
    for (i, (s, e)) in buckets.iter().enumerate() {
        let mut cell = Cell::default();
        in_window
            .iter()
            .filter(|r| r.started >= *s && r.started < *e)
            .for_each(|r| cell.add(r));
        assert_eq!(series[i]["bucketStart"], json!(iso(*s)));
        cell.check(&series[i], &format!("bucket {} of {what}", iso(*s)));
    }
}

async fn run_stats_agree_with_the_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    use runledger::domain::Role;
    let (ingest_a, viewer_a) = (
        key_of(&app, "acme", Role::Ingest).await,
        key_of(&app, "acme", Role::Viewer).await,
    );
    let (ingest_b, viewer_b) = (
        key_of(&app, "other", Role::Ingest).await,
        key_of(&app, "other", Role::Viewer).await,
    );
    let mut rng = Rng(7);
    let runs = generate(&mut rng, "a", 260);
    ingest(&app, &ingest_a, &runs).await;
    // The other tenant's runs lie in the same window: none may be counted for acme.
    let theirs = generate(&mut rng, "b", 30);
    ingest(&app, &ingest_b, &theirs).await;

    let cases = [
        Case {
            from: "2026-10-22T00:00:00Z",
            to: "2026-11-01T00:00:00Z",
            bucket: Some("DAY"),
            zone: "UTC",
        },
        Case {
            from: "2026-10-22T00:00:00Z",
            to: "2026-11-01T00:00:00Z",
            bucket: Some("DAY"),
            zone: "Europe/Berlin",
        },
        Case {
            from: "2026-10-22T00:00:00Z",
            to: "2026-11-01T00:00:00Z",
            bucket: Some("DAY"),
            zone: "Asia/Kolkata",
        },
        Case {
            from: "2026-10-24T12:00:00Z",
            to: "2026-10-26T12:00:00Z",
            bucket: Some("HOUR"),
            zone: "Europe/Berlin",
        },
        Case {
            from: "2026-10-24T12:00:00Z",
            to: "2026-10-25T12:00:00Z",
            bucket: Some("HOUR"),
            zone: "Asia/Kolkata",
        },
        Case {
            from: "2026-10-25T00:30:00Z",
            to: "2026-10-25T02:30:00Z",
            bucket: Some("MINUTE"),
            zone: "UTC",
        },
        Case {
            from: "2026-10-01T00:00:00Z",
            to: "2026-12-01T00:00:00Z",
            bucket: Some("WEEK"),
            zone: "Europe/Berlin",
        },
        Case {
            from: "2026-09-01T00:00:00Z",
            to: "2026-12-01T00:00:00Z",
            bucket: Some("MONTH"),
            zone: "America/New_York",
        },
        // Ragged ends: the whole quarter hours inside from rollups, the rest from the runs.
        Case {
            from: "2026-10-23T05:07:13.250001Z",
            to: "2026-10-27T19:59:59.5Z",
            bucket: Some("DAY"),
            zone: "UTC",
        },
        Case {
            from: "2026-10-23T05:07:13.250001Z",
            to: "2026-10-27T19:59:59.5Z",
            bucket: None,
            zone: "UTC",
        },
    ];
    for case in &cases {
        check_case(&app, &viewer_a, &runs, case).await;
    }
    // The other tenant sees its own runs only.
    check_case(&app, &viewer_b, &theirs, &cases[0]).await;

    // An aligned window of whole days is answered from rollups alone; minutes never are.
    let all = r#"from: "2026-10-22T00:00:00Z", to: "2026-11-01T00:00:00Z", bucket: DAY"#;
    let got = run_stats(&app, &viewer_a, all, "total { runs } runsFromRollups").await;
    assert_eq!(got["runsFromRollups"], got["total"]["runs"]);
    let got = run_stats(
        &app,
        &viewer_a,
        &cases[5].args(),
        "total { runs } runsFromRollups",
    )
    .await;
    assert_eq!(got["runsFromRollups"], json!(0));
    let got = run_stats(
        &app,
        &viewer_a,
        &cases[8].args(),
        "total { runs } runsFromRollups",
    )
    .await;
    let from_rollups = got["runsFromRollups"].as_i64().unwrap();
    assert!(from_rollups > 0 && from_rollups < got["total"]["runs"].as_i64().unwrap());

    check_groups(&app, &viewer_a, &runs).await;
    check_filters_and_counts(&app, &viewer_a, &runs).await;
}
both!(run_stats_agree_with_the_runs);

impl Case {
    fn args(&self) -> String {
        let bucket = self
            .bucket
            .map_or(String::new(), |b| format!(", bucket: {b}"));
        format!(
            r#"from: "{}", to: "{}", timeZone: "{}"{bucket}"#,
            self.from, self.to, self.zone
        )
    }
}

/// Groups by every dimension (and two at once), the largest `groupLimit` kept in order and the
/// rest folded into `other`.
async fn check_groups(app: &TestApp, key: &str, runs: &[GenRun]) {
    let (from, to) = (at("2026-10-22T00:00:00Z"), at("2026-11-01T00:00:00Z"));
    let window: Vec<&GenRun> = runs
        .iter()
        .filter(|r| r.started >= from && r.started < to)
        .collect();
    let dims_cases: [&[&str]; 7] = [
        &["PROVIDER"],
        &["MODEL"],
        &["STATUS"],
        &["AGENT"],
        &["SOURCE"],
        &["SESSION"],
        &["PROVIDER", "STATUS"],
    ];
    for dims in dims_cases {
        let mut cells: BTreeMap<Vec<Option<String>>, Cell> = BTreeMap::new();
        for r in &window {
            cells
                .entry(dims.iter().map(|d| r.dim(d)).collect())
                .or_default()
                .add(r);
        }
        let mut ranked: Vec<(&Vec<Option<String>>, &Cell)> = cells.iter().collect();
        ranked.sort_by_key(|(k, c)| (std::cmp::Reverse(c.runs), (*k).clone()));
        let limit = 2;
        let args = format!(
            r#"from: "2026-10-22T00:00:00Z", to: "2026-11-01T00:00:00Z", bucket: DAY, groupBy: [{}], groupLimit: {limit}"#,
            dims.join(", ")
        );
        let got = run_stats(
            app,
            key,
            &args,
            &format!("groups {{ key {{ dimension value }} other groupsFolded total {{ {MEASURES} }} series {{ {MEASURES} }} }} otherGroups"),
        )
        .await;
        let groups = got["groups"].as_array().unwrap();
        let what = format!("groupBy {dims:?}");
        let kept = ranked.len().min(limit);
        assert_eq!(
            groups.len(),
            kept + usize::from(ranked.len() > limit),
            "{what}"
        );
        for (i, (k, c)) in ranked.iter().take(limit).enumerate() {
            let key: Vec<Value> = dims
                .iter()
                .zip(k.iter())
                .map(|(d, v)| json!({"dimension": d, "value": v}))
                .collect();
            assert_eq!(groups[i]["key"], json!(key), "key {i} of {what}");
            assert_eq!(groups[i]["other"], json!(false));
            c.check(&groups[i]["total"], &format!("group {k:?} of {what}"));
            // Each UTC day of the group, percentiles included.
            let series = groups[i]["series"].as_array().unwrap();
            assert_eq!(series.len(), 10);
            for (d, got) in series.iter().enumerate() {
                let start = from + Duration::days(d as i64);
                let mut day = Cell::default();
                window
                    .iter()
                    .filter(|r| dims.iter().map(|d| r.dim(d)).collect::<Vec<_>>() == **k)
                    .filter(|r| r.started >= start && r.started < start + Duration::days(1))
                    .for_each(|r| day.add(r));
                day.check(got, &format!("day {d} of group {k:?} of {what}"));
            }
        }
        if ranked.len() > limit {
            let mut other = Cell::default();
            for r in &window {
                let k: Vec<Option<String>> = dims.iter().map(|d| r.dim(d)).collect();
                if !ranked.iter().take(limit).any(|(kk, _)| **kk == k) {
                    other.add(r);
                }
            }
            let g = groups.last().unwrap();
            assert_eq!(g["other"], json!(true), "{what}");
            assert_eq!(g["key"], json!([]));
            assert_eq!(g["groupsFolded"], json!(ranked.len() - limit));
            assert_eq!(got["otherGroups"], json!(ranked.len() - limit));
            other.check(&g["total"], &format!("other of {what}"));
            let series_runs: i64 = g["series"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["runs"].as_i64().unwrap())
                .sum();
            assert_eq!(series_runs, other.runs);
        } else {
            assert_eq!(got["otherGroups"], json!(0));
        }
    }
}

/// A filter narrows the stats as it narrows the list; `totalCount` (from rollups where the
/// filter allows) equals the list's rows.
async fn check_filters_and_counts(app: &TestApp, key: &str, runs: &[GenRun]) {
    let after = at("2026-10-23T05:07:13.250001Z");
    let before = at("2026-10-26T18:29:59.999999Z");
    for (filter, keep) in [
        (
            format!(
                r#"{{provider: "openai", startedAfter: "{}", startedBefore: "{}"}}"#,
                iso(after),
                iso(before)
            ),
            Box::new(|r: &GenRun| {
                r.provider == "openai" && r.started >= after && r.started <= before
            }) as Box<dyn Fn(&GenRun) -> bool>,
        ),
        (
            r#"{model: "gpt-4o", executionStatus: [FAILED, SUCCEEDED]}"#.to_string(),
            Box::new(|r: &GenRun| {
                r.model == "gpt-4o" && matches!(r.status, "FAILED" | "SUCCEEDED")
            }),
        ),
        (
            format!(r#"{{agentId: "triage", startedAfter: "{}"}}"#, iso(after)),
            Box::new(|r: &GenRun| r.agent == Some("triage") && r.started >= after),
        ),
        (
            format!(r#"{{startedBefore: "{}"}}"#, iso(before)),
            Box::new(|r: &GenRun| r.started <= before),
        ),
    ] {
        let mut want = Cell::default();
        runs.iter().filter(|r| keep(r)).for_each(|r| want.add(r));
        let got = run_stats(
            app,
            key,
            &format!(
                r#"filter: {filter}, from: "2026-10-22T00:00:00Z", to: "2026-11-01T00:00:00Z""#
            ),
            &format!("total {{ {MEASURES} }}"),
        )
        .await;
        want.check(&got["total"], &format!("filter {filter}"));
        let data = app
            .query(
                key,
                &format!("{{ llmRuns(filter: {filter}, first: 1) {{ totalCount }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(
            data["llmRuns"]["totalCount"],
            json!(want.runs),
            "totalCount of {filter}"
        );
    }
}

async fn stats_limits_and_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let viewer = key_of(&app, "acme", runledger::domain::Role::Viewer).await;
    let cases = [
        (
            r#"llmRunStats(from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z", bucket: HOUR) { total { runs } }"#,
            "more than 1000 buckets",
        ),
        (
            r#"llmRunStats(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", groupBy: [MODEL], groupLimit: 101) { total { runs } }"#,
            "groupLimit must be 1 to 100",
        ),
        (
            r#"llmRunStats(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", groupBy: [MODEL], groupLimit: 0) { total { runs } }"#,
            "groupLimit must be 1 to 100",
        ),
        (
            r#"llmRunStats(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", timeZone: "Europe/Atlantis") { total { runs } }"#,
            "not an IANA time zone",
        ),
        (
            r#"llmRunStats(from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z") { total { runs } }"#,
            "`to` must be after `from`",
        ),
        (
            r#"llmRunStats(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", groupBy: [MODEL, MODEL]) { total { runs } }"#,
            "groupBy names MODEL twice",
        ),
        (
            r#"systemRecordStats(from: "2026-01-01T00:00:00Z", to: "2026-06-01T00:00:00Z", bucket: HOUR) { total { count } }"#,
            "more than 1000 buckets",
        ),
    ];
    for (field, message) in cases {
        let (code, got) = app
            .query_error(Some(&viewer), &format!("{{ {field} }}"), json!({}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{field}: {got}");
        assert!(got.contains(message), "{field}: {got}");
    }
    // 1,000 buckets of 100 groups: more series points than a query may cost.
    let (code, got) = app
        .query_error(
            Some(&viewer),
            r#"{ llmRunStats(from: "2026-01-01T00:00:00Z", to: "2026-02-11T00:00:00Z", bucket: HOUR, groupBy: [MODEL], groupLimit: 100) { groups { series { runs } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(code, "QUERY_TOO_COMPLEX", "{got}");
    // The ledger's stats are for auditors: a viewer is refused.
    let (code, _) = app
        .query_error(
            Some(&viewer),
            r#"{ auditStats(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z") { total { count } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
}
both!(stats_limits_and_errors);

/// System-record and ledger counts against SQL over the stored rows; the as-of names the
/// ledger size the figures were read at and a checkpoint at or before it.
async fn record_and_ledger_stats_agree_with_sql(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.seeded_auditor("sec", 120, 3, 0, 5).await;
    let tree_size = app.checkpoint("sec").await;
    let from = "2020-01-01T00:00:00Z";
    let to = "2030-01-01T00:00:00Z";
    let before = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'sec'")
        .await[0];
    let data = app
        .query(
            &key,
            &format!(
                r#"{{ auditStats(from: "{from}", to: "{to}", groupBy: [CATEGORY, DECISION], groupLimit: 100) {{
                    total {{ count flagged flaggedMeans }} groups {{ key {{ value }} total {{ count flagged }} }}
                    asOf {{ treeSize checkpoint {{ treeSize }} }} }}
                  systemRecordStats(from: "{from}", to: "{to}", groupBy: [SEVERITY, COMPONENT], groupLimit: 100, bucket: MONTH) {{
                    total {{ count flagged }} groups {{ key {{ value }} total {{ count }} }} series {{ count }} }} }}"#
            ),
            json!({}),
        )
        .await;
    let audit = &data["auditStats"];
    // Export workers append entries while the test runs: the answer is one snapshot, of the
    // ledger's first `treeSize` entries, and names the newest checkpoint within them.
    let size = audit["asOf"]["treeSize"].as_i64().unwrap();
    assert!(size >= before, "{size} < {before}");
    let newest_checkpoint = app
        .store
        .query_i64(&format!(
            "SELECT MAX(tree_size) FROM ledger_checkpoints WHERE tenant_id = 'sec' AND tree_size <= {size}"
        ))
        .await[0];
    assert!(newest_checkpoint >= tree_size);
    assert_eq!(
        audit["asOf"]["checkpoint"]["treeSize"],
        json!(newest_checkpoint)
    );
    assert_eq!(audit["total"]["count"], json!(size));
    let want: Vec<String> = app
        .store
        .query_strings(&format!(
            "SELECT category || '/' || COALESCE(decision, '-') || '/' || CAST(COUNT(*) AS TEXT) \
             FROM audit_ledger WHERE tenant_id = 'sec' AND seq <= {size} GROUP BY category, decision"
        ))
        .await;
    let mut got: Vec<String> = audit["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{}/{}/{}",
                g["key"][0]["value"].as_str().unwrap(),
                g["key"][1]["value"].as_str().unwrap_or("-"),
                g["total"]["count"]
            )
        })
        .collect();
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
    let denied = app
        .store
        .query_i64(
            "SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'sec' AND decision = 'DENY'",
        )
        .await[0];
    assert_eq!(audit["total"]["flagged"], json!(denied));
    assert_eq!(audit["total"]["flaggedMeans"], json!("denied"));

    let system = &data["systemRecordStats"];
    let want: Vec<String> = app
        .store
        .query_strings(
            "SELECT severity || '/' || component || '/' || CAST(COUNT(*) AS TEXT) FROM system_records \
             WHERE tenant_id = 'sec' OR tenant_id IS NULL GROUP BY severity, component",
        )
        .await;
    let mut got: Vec<String> = system["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{}/{}/{}",
                g["key"][0]["value"].as_str().unwrap(),
                g["key"][1]["value"].as_str().unwrap(),
                g["total"]["count"]
            )
        })
        .collect();
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
    let incidents = app
        .store
        .query_i64(
            "SELECT COUNT(*) FROM system_records WHERE (tenant_id = 'sec' OR tenant_id IS NULL) \
             AND severity IN ('ERROR', 'CRITICAL')",
        )
        .await[0];
    assert_eq!(system["total"]["flagged"], json!(incidents));
    let months: i64 = system["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_i64().unwrap())
        .sum();
    assert_eq!(json!(months), system["total"]["count"]);

    // Reads of stats are recorded like any read.
    let data = app
        .query(&key, r#"{ auditEntries(first: 100, filter: {category: [ACCESS]}) { nodes { entityType } } }"#, json!({}))
        .await;
    let kinds: Vec<&str> = data["auditEntries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["entityType"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"audit_stats") && kinds.contains(&"system_record_stats"),
        "{kinds:?}"
    );
}
both!(record_and_ledger_stats_agree_with_sql);

async fn rollup_rows(app: &TestApp) -> Vec<String> {
    app.store
        .query_strings(
            "SELECT tenant_id || ' ' || CAST(bucket_start AS TEXT) || ' ' || provider || ' ' || model \
             || ' ' || execution_status || ' ' || CAST(runs AS TEXT) || ' ' || CAST(input_tokens AS TEXT) \
             || ' ' || CAST(output_tokens AS TEXT) || ' ' || CAST(cache_read_tokens AS TEXT) || ' ' \
             || CAST(cache_creation_tokens AS TEXT) || ' ' || CAST(cost_cents AS TEXT) || ' ' \
             || CAST(duration_runs AS TEXT) || ' ' || CAST(duration_us AS TEXT) FROM run_rollups \
             ORDER BY tenant_id, bucket_start, provider, model, execution_status",
        )
        .await
}

/// Concurrent writers (runs with steps, steps before their run, steps after it, retries), then
/// `runledger rollups rebuild` from the evidence: the same rows as ingest kept; `rollups check`
/// agrees, and finds a row changed behind its back.
async fn rollups_rebuilt_equal_what_ingest_maintained(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ingest_key = key_of(&app, "acme", runledger::domain::Role::Ingest).await;
    let mut rng = Rng(99);
    let runs = generate(&mut rng, "c", 160);
    let parts: Vec<Vec<GenRun>> = runs.chunks(40).map(|c| c.to_vec()).collect();
    let mut tasks = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let (app_address, key) = (app.address.clone(), ingest_key.clone());
        let client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            let post = |query: &'static str, variables: Value| {
                let client = client.clone();
                let (app_address, key) = (app_address.clone(), key.clone());
                async move {
                    let resp: Value = client
                        .post(format!("{app_address}/graphql"))
                        .bearer_auth(&key)
                        .json(&json!({"query": query, "variables": variables}))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert!(resp.get("errors").is_none(), "{resp}");
                }
            };
            for r in &part {
                // Odd writers send a run's first steps before the run.
                let early = i % 2 == 1;
                if early && !r.step_costs.is_empty() {
                    let trace = format!("t-{}", r.id);
                    let steps: Vec<Value> = r.step_costs.iter().enumerate().map(|(k, c)| step_json(Some(&trace), k, *c, r.started)).collect();
                    post("mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }", json!({"s": steps})).await;
                }
                let run = r.input_json(!early);
                post("mutation($r: [RunInput!]!) { ingestRuns(runs: $r) { storedCount } }", json!({"r": [run.clone()]})).await;
                // A retry changes nothing.
                post("mutation($r: [RunInput!]!) { ingestRuns(runs: $r) { storedCount } }", json!({"r": [run]})).await;
                let trace = format!("t-{}", r.id);
                let late: Vec<Value> = r.late_step_costs.iter().enumerate().map(|(k, c)| step_json(Some(&trace), r.step_costs.len() + k, *c, r.started)).collect();
                if !late.is_empty() {
                    post("mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }", json!({"s": late})).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let maintained = rollup_rows(&app).await;
    assert!(!maintained.is_empty());
    // What the test expects of the rows, from the runs it generated.
    let mut want: BTreeMap<(i64, &str, &str, &str), (i64, i64)> = BTreeMap::new();
    for r in &runs {
        let e = want
            .entry((
                r.started.timestamp().div_euclid(900) * 900,
                r.provider,
                r.model,
                r.status,
            ))
            .or_default();
        e.0 += 1;
        e.1 += r.cost_total();
    }
    let got: BTreeMap<(i64, String, String, String), (i64, i64)> = maintained
        .iter()
        .map(|row| {
            let f: Vec<&str> = row.split(' ').collect();
            (
                (
                    f[1].parse().unwrap(),
                    f[2].to_string(),
                    f[3].to_string(),
                    f[4].to_string(),
                ),
                (f[5].parse().unwrap(), f[10].parse().unwrap()),
            )
        })
        .collect();
    let want: BTreeMap<(i64, String, String, String), (i64, i64)> = want
        .into_iter()
        .map(|((b, p, m, s), v)| ((b, p.to_string(), m.to_string(), s.to_string()), v))
        .collect();
    assert_eq!(got, want, "runs and cost per rollup row");

    let url = app.store.url.clone();
    assert_eq!(
        run_ok(&["rollups", "check", "--database-url", &url]).trim(),
        "rollups match the evidence"
    );
    let out = run_ok(&[
        "rollups",
        "rebuild",
        "--database-url",
        &url,
        "--tenant",
        "acme",
    ]);
    assert_eq!(out.trim(), format!("acme {}", maintained.len()));
    assert_eq!(
        rollup_rows(&app).await,
        maintained,
        "rebuilt rows equal the maintained ones"
    );

    // Derived data is not evidence: it can change, and the check says so.
    app.store.exec("UPDATE run_rollups SET runs = runs + 1 WHERE bucket_start = (SELECT MIN(bucket_start) FROM run_rollups)").await.unwrap();
    let err = run_err(&["rollups", "check", "--database-url", &url]);
    assert!(err.contains("differ from the evidence"), "{err}");
    run_ok(&["rollups", "rebuild", "--database-url", &url]);
    assert_eq!(rollup_rows(&app).await, maintained);
    let err = run_err(&[
        "rollups",
        "rebuild",
        "--database-url",
        &url,
        "--tenant",
        "nobody",
    ]);
    assert!(err.contains("nobody"), "{err}");
}
both!(rollups_rebuilt_equal_what_ingest_maintained);

/// A run sent as spans: its id, its children's (input, output, cache-read tokens, cost), and
/// whether its root is sent last.
type SpanRun = (&'static str, &'static [(i64, i64, i64, i64)], bool);

/// Usage reported on LLM child spans, sent by the official OpenTelemetry exporter before and
/// after their root span (which carries none): the stats count what the spans said, as the run
/// usage view does, and the maintained rollups equal a rebuild.
async fn stats_count_usage_from_real_spans(backend: Backend) {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
    let app = TestApp::spawn(backend).await;
    use runledger::domain::Role;
    let ingest_key = key_of(&app, "acme", Role::Ingest).await;
    let viewer = key_of(&app, "acme", Role::Viewer).await;
    let provider = crate::otlp::provider(&app, &ingest_key);
    let tracer = provider.tracer("agent");
    // (run id, the children's (input, output, cache-read tokens, cost)), roots sent last for
    // the first two runs (children flushed first), first for the third.
    let runs: [SpanRun; 3] = [
        ("span-run-1", &[(120, 30, 0, 2), (300, 55, 64, 5)], true),
        ("span-run-2", &[(80, 20, 16, 1)], true),
        ("span-run-3", &[(500, 90, 128, 9), (7, 3, 0, 0)], false),
    ];
    for (run_id, children, root_last) in runs {
        let mut root = tracer.start("invoke_agent stats-bot");
        root.set_attribute(KeyValue::new("gen_ai.operation.name", "invoke_agent"));
        root.set_attribute(KeyValue::new("gen_ai.provider.name", "openai"));
        root.set_attribute(KeyValue::new("runledger.run.id", run_id));
        let cx = opentelemetry::Context::current_with_span(root);
        if !root_last {
            cx.span().end();
            crate::otlp::flush(&provider).await;
        }
        for (input, output, cache, cost) in children {
            let mut chat = tracer.start_with_context("chat gpt-4o", &cx);
            chat.set_attribute(KeyValue::new("gen_ai.request.model", "gpt-4o"));
            chat.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", *input));
            chat.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", *output));
            chat.set_attribute(KeyValue::new(
                "gen_ai.usage.cache_read.input_tokens",
                *cache,
            ));
            chat.set_attribute(KeyValue::new("runledger.cost_cents", *cost));
            chat.end();
            crate::otlp::flush(&provider).await;
        }
        if root_last {
            cx.span().end();
            crate::otlp::flush(&provider).await;
        }
    }
    provider.shutdown().ok();
    let sum = |f: fn(&(i64, i64, i64, i64)) -> i64| -> i64 {
        runs.iter().flat_map(|(_, c, _)| c.iter()).map(f).sum()
    };
    let got = run_stats(
        &app,
        &viewer,
        r#"from: "2020-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z", groupBy: [MODEL, SOURCE]"#,
        "total { runs inputTokens outputTokens cacheReadTokens costCents } groups { key { value } total { runs } }",
    )
    .await;
    assert_eq!(
        got["total"],
        json!({"runs": 3, "inputTokens": sum(|c| c.0), "outputTokens": sum(|c| c.1),
               "cacheReadTokens": sum(|c| c.2), "costCents": sum(|c| c.3)})
    );
    // Grouped by the run record's own model: the root spans named none.
    assert_eq!(
        got["groups"],
        json!([{"key": [{"value": "unknown"}, {"value": "otel"}], "total": {"runs": 3}}])
    );
    let url = app.store.url.clone();
    assert_eq!(
        run_ok(&["rollups", "check", "--database-url", &url]).trim(),
        "rollups match the evidence"
    );
}
both!(stats_count_usage_from_real_spans);
