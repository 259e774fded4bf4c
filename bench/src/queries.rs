//! The dashboard query mix Q1–Q5 (issue 6), side by side in one run: runledger on PostgreSQL
//! and on SQLite, PostGraphile 5 over the same PostgreSQL data, and the floor (pgbench running
//! the SQL each query needs), all at the same concurrency; then Q1–Q3 on a 10,000-run and a
//! 1,000,000-run tenant, with and without `totalCount` and on a deep page. Servers run as
//! separate processes, so their peak memory is their own; SQL statements per request come from
//! runledger's `/metrics`. The report is markdown, written into BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runledger::db::Db;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::dataset::{self, Dataset, Scale};
use crate::floor::{self, RunRef};
use crate::load::{self, Load, Target};
use crate::procs::{self, Server};

/// Q1–Q5 as runledger answers them.
pub const MIX: [(&str, &str); 5] = [
    (
        "Q1 50 runs by status + totalCount",
        "query { llmRuns(first: 50, filter: {executionStatus: [FAILED]}) { totalCount nodes { runId model executionStatus costCents startedAt } } }",
    ),
    (
        "Q2 20 runs + steps + governance",
        "query { llmRuns(first: 20) { nodes { runId trace { steps { stepIndex skillName status } } governance { events { eventId decision } } } } }",
    ),
    (
        "Q3 one run in full",
        "query($id: String!) { llmRun(runId: $id) { runId envelope { checksum } trace { steps { stepIndex } } governance { events { eventId } } replay { inflection { reason } events { timestamp } } export { bundleChecksum } system { events { events { recordId } } } } }",
    ),
    (
        "Q4 50 ledger entries by category",
        "query { auditEntries(first: 50, filter: {category: [ACCESS]}) { nodes { seq eventType entityId } } }",
    ),
    (
        "Q5 50 system records by severity",
        "query { systemRecords(first: 50, filter: {severity: [ERROR, CRITICAL]}) { nodes { recordId component severity } } }",
    ),
];

const Q1_NO_COUNT: &str = "query { llmRuns(first: 50, filter: {executionStatus: [FAILED]}) { nodes { runId model executionStatus costCents startedAt } } }";
const Q1_AFTER: &str = "query($after: String) { llmRuns(first: 50, after: $after, filter: {executionStatus: [FAILED]}) { nodes { runId model executionStatus costCents startedAt } pageInfo { endCursor hasNextPage } } }";
/// How many pages deep the deep-page variant of Q1 starts (or the last page, if fewer).
const DEEP_PAGES: usize = 100;

/// What the command was asked to do.
pub struct Options {
    pub scale: Scale,
    pub postgres_server: String,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub peer: bool,
    /// `postgres`, `sqlite` or both.
    pub backends: Vec<String>,
}

/// One measured line.
pub struct Row {
    pub system: String,
    pub query: String,
    pub load: Load,
    pub statements: Option<f64>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Run ids (with trace ids) of `tenant`, spread over its whole time range.
pub(crate) async fn sample_runs(
    url: &str,
    tenant: &str,
    count: usize,
) -> Result<Vec<RunRef>, String> {
    let db = Db::connect(url, 1).await.map_err(|e| e.describe())?;
    let backend = db.conn.get_database_backend();
    let total: i64 = db
        .conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT COUNT(*) FROM llm_runs WHERE tenant_id = $1",
            [tenant.into()],
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no count")?
        .try_get_by_index(0)
        .map_err(|e| e.to_string())?;
    let step = (total as usize / count).max(1);
    let rows = db
        .conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT run_id, trace_id FROM llm_runs WHERE tenant_id = $1 ORDER BY run_id",
            [tenant.into()],
        ))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rows.iter().step_by(step).take(count) {
        out.push(RunRef {
            run_id: row.try_get_by_index(0).map_err(|e| e.to_string())?,
            trace_id: row
                .try_get_by_index::<Option<String>>(1)
                .map_err(|e| e.to_string())?
                .unwrap_or_default(),
        });
    }
    db.conn.close().await.map_err(|e| e.to_string())?;
    Ok(out)
}

/// Request bodies of `query` with `variables` (an object): one per run, with `id` set to
/// the run's id, when the query takes `$id`.
pub fn bodies(query: &str, runs: &[RunRef], variables: Value) -> Vec<Value> {
    if !query.contains("$id") {
        return vec![json!({"query": query, "variables": variables})];
    }
    runs.iter()
        .map(|r| {
            let mut v = variables.clone();
            v["id"] = json!(r.run_id);
            json!({"query": query, "variables": v})
        })
        .collect()
}

/// The cursor `DEEP_PAGES` pages into Q1's list (or of the last page), and how many rows lie
/// before it.
async fn deep_cursor(target: &Target) -> Result<(Value, usize), String> {
    let mut after = Value::Null;
    let mut skipped = 0;
    for _ in 0..DEEP_PAGES {
        let data = load::ask(
            target,
            &json!({"query": Q1_AFTER, "variables": {"after": after}}),
        )
        .await?;
        let page = &data["llmRuns"];
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        skipped += page["nodes"].as_array().map_or(0, Vec::len);
        after = page["pageInfo"]["endCursor"].clone();
    }
    Ok((after, skipped))
}

/// Warms up, then measures `bodies` on `server`; statements per request from its `/metrics`.
pub async fn measure(
    opts: &Options,
    server: Option<&Server>,
    target: &Target,
    bodies: &[Value],
) -> Result<(Load, Option<f64>), String> {
    // Every distinct request once (a run's rows may not be cached yet), then the timed warm-up.
    if bodies.len() > 1 {
        for body in bodies {
            load::ask(target, body).await?;
        }
    }
    load::drive(target, bodies, opts.clients, opts.warmup).await?;
    let before = match server {
        Some(s) => Some(procs::metric(s, "runledger_sql_statements_total").await?),
        None => None,
    };
    let measured = load::drive(target, bodies, opts.clients, opts.duration).await?;
    let statements = match (server, before) {
        (Some(s), Some(before)) => {
            let after = procs::metric(s, "runledger_sql_statements_total").await?;
            Some((after - before) as f64 / measured.requests as f64)
        }
        _ => None,
    };
    Ok((measured, statements))
}

pub(crate) fn auditor_key(ds: &Dataset, tenant: &str) -> Result<String, String> {
    let out = procs::runledger(&[
        "keys",
        "create",
        "--database-url",
        &ds.url,
        "--tenant",
        tenant,
        "--role",
        "auditor",
        "--label",
        "runledger-bench",
    ])?;
    Ok(out.trim().to_string())
}

/// Everything one runledger backend is measured on: the mix, then the scaling check.
async fn runledger_backend(
    opts: &Options,
    ds: &Dataset,
    work: &Path,
    mix: &mut Vec<Row>,
    scaling: &mut Vec<Row>,
) -> Result<u64, String> {
    let key_file = work.join("signing.key");
    let server = procs::start_runledger(
        &ds.url,
        &key_file,
        &work.join(format!("runledger-{}.log", ds.backend)),
    )
    .await?;
    let system = format!("runledger {}", ds.backend);
    let target = |key: String| Target {
        url: format!("{}/graphql", server.base),
        bearer: Some(key),
    };
    let small = target(auditor_key(ds, &ds.tenant)?);
    let small_runs = sample_runs(&ds.url, &ds.tenant, 100).await?;
    for (name, query) in MIX {
        eprintln!("{system}: {name}");
        let (load, statements) = measure(
            opts,
            Some(&server),
            &small,
            &bodies(query, &small_runs, json!({})),
        )
        .await?;
        mix.push(Row {
            system: system.clone(),
            query: name.to_string(),
            load,
            statements,
        });
    }
    let big = target(auditor_key(ds, &ds.big_tenant)?);
    let big_runs = sample_runs(&ds.url, &ds.big_tenant, 100).await?;
    for (label, runs, target) in [("10k", &small_runs, &small), ("1M", &big_runs, &big)] {
        let (cursor, skipped) = deep_cursor(target).await?;
        let deep = format!("Q1 page after {skipped} rows, no totalCount");
        let variants = [
            (MIX[0].0.to_string(), bodies(MIX[0].1, runs, json!({}))),
            (
                "Q1 without totalCount".to_string(),
                bodies(Q1_NO_COUNT, runs, json!({})),
            ),
            (deep, bodies(Q1_AFTER, runs, json!({"after": cursor}))),
            (MIX[1].0.to_string(), bodies(MIX[1].1, runs, json!({}))),
            (MIX[2].0.to_string(), bodies(MIX[2].1, runs, json!({}))),
        ];
        for (name, bodies) in variants {
            eprintln!("{system} {label}: {name}");
            let (load, statements) = measure(opts, Some(&server), target, &bodies).await?;
            scaling.push(Row {
                system: format!("{system}, {label}-run tenant"),
                query: name,
                load,
                statements,
            });
        }
    }
    let peak = server.peak_memory()?;
    server.stop()?;
    Ok(peak)
}

/// Where datasets and scratch files live (git-ignored).
pub(crate) fn data_dir() -> PathBuf {
    repo_root().join("bench/.data")
}

/// Makes sure both datasets of the scale are seeded.
pub async fn seed(opts: &Options) -> Result<Vec<Dataset>, String> {
    let work = data_dir().join("work");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    dataset::ensure(
        &opts.scale,
        &data_dir(),
        &opts.postgres_server,
        &work.join("signing.key"),
        &opts.backends,
    )
    .await
}

/// Runs the whole comparison and returns the report (markdown).
pub async fn run(opts: Options) -> Result<String, String> {
    let repo = repo_root();
    let work = data_dir().join("work");
    let datasets = seed(&opts).await?;
    let mut mix = Vec::new();
    let mut scaling = Vec::new();
    let mut memory = Vec::new();
    let mut counts = Vec::new();
    for ds in &datasets {
        counts.push((ds.backend, dataset::row_counts(&ds.url).await?));
        let peak = runledger_backend(&opts, ds, &work, &mut mix, &mut scaling).await?;
        memory.push((format!("runledger {}", ds.backend), peak));
    }
    // The peer and the floor serve the PostgreSQL data.
    if let Some(pg) = datasets.iter().find(|d| d.backend == "postgres") {
        let runs = sample_runs(&pg.url, &pg.tenant, 100).await?;
        if opts.peer {
            let peak = crate::peer::measure_mix(&opts, &repo, pg, &runs, &work, &mut mix).await?;
            memory.push(("PostGraphile".to_string(), peak));
        }
        for (i, (name, _)) in MIX.iter().enumerate() {
            eprintln!("pgbench floor: {name}");
            let scripts = floor::scripts(i, &runs);
            // Warm-up, as for the servers.
            floor::run(
                &work,
                &pg.url,
                &pg.tenant,
                &scripts,
                opts.clients,
                opts.warmup,
            )?;
            let load = floor::run(
                &work,
                &pg.url,
                &pg.tenant,
                &scripts,
                opts.clients,
                opts.duration,
            )?;
            mix.push(Row {
                system: "floor (pgbench)".into(),
                query: name.to_string(),
                load,
                statements: Some(scripts[0].matches(";\n").count() as f64),
            });
        }
    }
    Ok(report(&opts, &datasets, &counts, &mix, &scaling, &memory))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let pg = std::process::Command::new("pgbench")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem_gib:.0} GiB; PostgreSQL client tools: {pg}")
}

fn table(out: &mut String, rows: &[&Row]) {
    out.push_str("| system | query | req/s | p50 ms | p99 ms | SQL statements / request |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {} |\n",
            r.system,
            r.query,
            r.load.per_second(),
            ms(r.load.p50),
            ms(r.load.p99),
            r.statements.map_or("–".to_string(), |s| format!("{s:.1}"))
        ));
    }
}

fn report(
    opts: &Options,
    datasets: &[Dataset],
    counts: &[(&str, Vec<(&str, i64)>)],
    mix: &[Row],
    scaling: &[Row],
    memory: &[(String, u64)],
) -> String {
    let s = &opts.scale;
    let mut out = String::new();
    let backends = if opts.backends.len() == 2 {
        String::new()
    } else {
        format!(" --backends {}", opts.backends.join(","))
    };
    out.push_str(&format!(
        "Generated by `cargo run --release -p runledger-bench -- queries --scale {}{backends}` on \
         {} (one run; do not edit by hand).\n\n",
        s.name,
        chrono::Utc::now().format("%Y-%m-%d")
    ));
    out.push_str(&format!("Machine: {}.\n\n", machine()));
    out.push_str(&format!(
        "Dataset `{}` (`runledger seed`, kept in `bench/.data`): {} tenants × {} runs × {} steps \
         (seed 1) and one tenant of {} runs (seed 2), {}% of runs with telemetry. Measured tenants: \
         `{}` and, for scaling, `{}`.\n\n",
        s.name,
        s.tenants,
        s.runs_per_tenant,
        s.steps_per_run,
        s.big_tenant_runs,
        s.telemetry_percent,
        datasets.first().map_or("", |d| d.tenant.as_str()),
        datasets.first().map_or("", |d| d.big_tenant.as_str()),
    ));
    out.push_str("| rows | ");
    out.push_str(
        &counts
            .iter()
            .map(|(b, _)| *b)
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|---|");
    out.push_str(&"---|".repeat(counts.len()));
    out.push('\n');
    if let Some((_, first)) = counts.first() {
        for (i, (label, _)) in first.iter().enumerate() {
            out.push_str(&format!("| {label} |"));
            for (_, c) in counts {
                out.push_str(&format!(" {} |", c.get(i).map_or(0, |x| x.1)));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\nLoad: {} concurrent clients, closed loop over HTTP/1.1 keep-alive, {} s per query \
         after {} s of warm-up; the floor is pgbench with {} connections for the same time. \
         runledger runs as shipped (`runledger serve`: every request authenticated and recorded \
         in the tenant's ledger) except that rate limiting is off and `/metrics` is on.\n\n",
        opts.clients,
        opts.duration.as_secs(),
        opts.warmup.as_secs(),
        opts.clients
    ));
    out.push_str("### Q1–Q5\n\n");
    let mut order: Vec<&Row> = Vec::new();
    for (name, _) in MIX {
        order.extend(mix.iter().filter(|r| r.query == name));
    }
    table(&mut out, &order);
    out.push_str("\n### Ratios on PostgreSQL (same data, same run)\n\n");
    out.push_str("| query | runledger / PostGraphile req/s | runledger / floor | runledger p99 / PostGraphile p99 |\n|---|---|---|---|\n");
    let find = |system: &str, query: &str| {
        mix.iter()
            .find(|r| r.system == system && r.query == query)
            .map(|r| &r.load)
    };
    for (name, _) in MIX {
        let ours = find("runledger postgres", name);
        let peer = find("PostGraphile", name);
        let base = find("floor (pgbench)", name);
        let ratio = |a: Option<&Load>, b: Option<&Load>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}", a.per_second() / b.per_second()),
            _ => "–".into(),
        };
        let p99 = match (ours, peer) {
            (Some(a), Some(b)) => {
                format!("{:.2}", a.p99.as_secs_f64() / b.p99.as_secs_f64())
            }
            _ => "–".into(),
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {p99} |\n",
            ratio(ours, peer),
            ratio(ours, base)
        ));
    }
    out.push_str(
        "\n### Peak memory (resident set, whole process life)\n\n| server | peak MB |\n|---|---|\n",
    );
    for (name, bytes) in memory {
        out.push_str(&format!("| {name} | {:.0} |\n", *bytes as f64 / 1048576.0));
    }
    out.push_str("\n### Scaling: Q1–Q3 on a 10,000-run and a 1,000,000-run tenant\n\n");
    let rows: Vec<&Row> = scaling.iter().collect();
    table(&mut out, &rows);
    out
}

/// Puts `report` into BENCHMARKS.md between its markers (appended the first time).
pub fn write_report(report: &str) -> Result<(), String> {
    write_section("queries", report)
}

/// Replaces the section between `<!-- name:begin … -->` and `<!-- name:end -->` of
/// BENCHMARKS.md with `report` (appending it when missing).
pub fn write_section(name: &str, report: &str) -> Result<(), String> {
    let begin = format!("<!-- {name}:begin (written by runledger-bench {name}) -->");
    let end = format!("<!-- {name}:end -->");
    let path = repo_root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let section = format!("{begin}\n{report}{end}");
    let updated = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &text[..b], &text[e + end.len()..])
        }
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(&path, updated).map_err(|e| e.to_string())
}
