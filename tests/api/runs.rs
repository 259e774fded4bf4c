//! The LLM-runs topic: list, filters, ordering, pagination, and the five depth views of a run,
//! against the fixture's known values.

use std::collections::HashSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both;
use crate::fixture::{self, alpha_runs, at, iso};
use crate::helpers::{Backend, TestApp};

const RUN_FIELDS: &str = "runId traceId provider model inputTokens outputTokens costCents executionStatus startedAt completedAt durationMs source isSynthetic recordedAt";

async fn run_ids(app: &TestApp, key: &str, args: &str) -> Vec<String> {
    let q = format!("{{ llmRuns({args}) {{ nodes {{ runId }} }} }}");
    let data = app.query(key, &q, json!({})).await;
    data["llmRuns"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["runId"].as_str().unwrap().to_string())
        .collect()
}

/// Alpha's run ids sorted the way the list sorts them by default (started_at desc).
fn expected_default_order() -> Vec<String> {
    let mut runs = alpha_runs();
    runs.sort_by_key(|r| std::cmp::Reverse((r.started, r.run_id)));
    runs.iter().map(|r| r.run_id.to_string()).collect()
}

async fn list_filters_and_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = &keys.alpha_viewer;

    // Default: every alpha run (none of beta's), newest start first.
    assert_eq!(
        run_ids(&app, k, "first: 50").await,
        expected_default_order()
    );

    // Every filter against values computed from the fixture.
    let cases: Vec<(&str, fixture::Keep<fixture::RunSpec>)> = vec![
        (
            r#"filter: {provider: "openai"}"#,
            Box::new(|r| r.provider == "openai"),
        ),
        (
            r#"filter: {model: "gpt-4o"}"#,
            Box::new(|r| r.model == "gpt-4o"),
        ),
        (r#"filter: {runId: "r3"}"#, Box::new(|r| r.run_id == "r3")),
        (
            r#"filter: {traceId: "tr2"}"#,
            Box::new(|r| r.trace == Some("tr2")),
        ),
        (
            r#"filter: {executionStatus: [FAILED, BLOCKED]}"#,
            Box::new(|r| r.status == "FAILED" || r.status == "BLOCKED"),
        ),
        (
            r#"filter: {source: "otel"}"#,
            Box::new(|r| r.source == "otel"),
        ),
        (r#"filter: {isSynthetic: true}"#, Box::new(|r| r.synthetic)),
        (
            r#"filter: {isSynthetic: false}"#,
            Box::new(|r| !r.synthetic),
        ),
        (
            r#"filter: {agentId: "agent-1"}"#,
            Box::new(|r| r.agent == Some("agent-1")),
        ),
        (
            r#"filter: {humanActorId: "h-1"}"#,
            Box::new(|r| r.human == Some("h-1")),
        ),
        (
            r#"filter: {startedAfter: "2026-03-01T12:05:00Z"}"#,
            Box::new(|r| r.started >= 300),
        ),
        (
            r#"filter: {startedBefore: "2026-03-01T12:05:00Z"}"#,
            Box::new(|r| r.started <= 300),
        ),
        (
            r#"filter: {provider: "openai", startedAfter: "2026-03-01T12:01:00Z", startedBefore: "2026-03-01T12:15:00Z"}"#,
            Box::new(|r| r.provider == "openai" && r.started >= 60 && r.started <= 900),
        ),
    ];
    for (args, keep) in cases {
        let expected: Vec<String> = expected_default_order()
            .into_iter()
            .filter(|id| alpha_runs().iter().any(|r| r.run_id == id && keep(r)))
            .collect();
        let q = format!(
            "{{ llmRuns(first: 50, {args}) {{ totalCount filtersApplied nodes {{ runId }} }} }}"
        );
        let data = app.query(k, &q, json!({})).await;
        let got: Vec<String> = data["llmRuns"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["runId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, expected, "{args}");
        assert_eq!(
            data["llmRuns"]["totalCount"],
            json!(expected.len()),
            "{args}"
        );
        assert!(
            data["llmRuns"]["filtersApplied"]
                .as_object()
                .is_some_and(|m| !m.is_empty()),
            "{args}"
        );
    }

    // Ascending by start, and by recorded time.
    let mut asc = expected_default_order();
    asc.reverse();
    assert_eq!(
        run_ids(
            &app,
            k,
            "first: 50, orderBy: {field: STARTED_AT, direction: ASC}"
        )
        .await,
        asc
    );
    assert_eq!(
        run_ids(
            &app,
            k,
            "first: 50, orderBy: {field: RECORDED_AT, direction: ASC}"
        )
        .await,
        asc
    );

    // The fields of one run are the stored values.
    let q = format!(
        "{{ llmRuns(first: 1, filter: {{runId: \"r2\"}}) {{ nodes {{ {RUN_FIELDS} }} }} }}"
    );
    let data = app.query(k, &q, json!({})).await;
    let r2 = &data["llmRuns"]["nodes"][0];
    assert_eq!(
        r2,
        &json!({
            "runId": "r2", "traceId": "tr2", "provider": "anthropic", "model": "claude-sonnet-4",
            "inputTokens": 400, "outputTokens": 120, "costCents": 40, "executionStatus": "FAILED",
            "startedAt": iso(at(60)), "completedAt": iso(at(90)), "durationMs": 30000,
            "source": "sdk", "isSynthetic": false, "recordedAt": iso(at(80))
        })
    );
}
both!(list_filters_and_order);

/// Writes one more alpha run (no steps) starting at `t0 + started` seconds.
async fn insert_run(app: &TestApp, run_id: &'static str, started: i64) {
    let spec = fixture::RunSpec {
        run_id,
        started,
        completed: None,
        trace: None,
        ..alpha_runs().remove(0)
    };
    let batch = runledger::ingest::EvidenceBatch {
        runs: vec![fixture::run_model("alpha", &spec)],
        ..Default::default()
    };
    runledger::ingest::store(app.db(), "alpha", batch)
        .await
        .unwrap();
}

async fn pagination_forward_and_backward_while_inserting(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = &keys.alpha_viewer;
    let page = r#"query($first: Int, $after: String, $last: Int, $before: String) {
        llmRuns(first: $first, after: $after, last: $last, before: $before) {
            edges { cursor node { runId } }
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        } }"#;

    // Forward in pages of 2, inserting a newer and an older run between pages.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut inserted = 0;
    loop {
        let data = app
            .query(k, page, json!({"first": 2, "after": after}))
            .await;
        let conn = &data["llmRuns"];
        for e in conn["edges"].as_array().unwrap() {
            seen.push(e["node"]["runId"].as_str().unwrap().to_string());
        }
        if inserted < 2 {
            // One run newer than everything (lands before the pages already read), one older
            // than everything (lands at the end): neither may make a row repeat or vanish.
            let (id, started) = if inserted == 0 {
                ("new-top", 99_999)
            } else {
                ("new-bottom", -99_999)
            };
            insert_run(&app, id, started).await;
            inserted += 1;
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    let mut expected = expected_default_order();
    expected.push("new-bottom".into());
    assert_eq!(seen, expected, "each original row exactly once, in order");

    // Backward from the end in pages of 4: the same rows, new-top included, none twice.
    let mut back = Vec::new();
    let mut before: Option<String> = None;
    let mut inserted_while_backward = false;
    loop {
        let data = app
            .query(k, page, json!({"last": 4, "before": before}))
            .await;
        let conn = &data["llmRuns"];
        let ids: Vec<String> = conn["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["runId"].as_str().unwrap().to_string())
            .collect();
        back.splice(0..0, ids);
        if !inserted_while_backward {
            // A run newer than everything arrives while paging backward: it lands in the page
            // read last, and no row already read moves.
            insert_run(&app, "new-top-2", 199_999).await;
            inserted_while_backward = true;
        }
        if !conn["pageInfo"]["hasPreviousPage"].as_bool().unwrap() {
            break;
        }
        before = conn["pageInfo"]["startCursor"].as_str().map(String::from);
    }
    let mut all = vec!["new-top-2".to_string(), "new-top".to_string()];
    all.extend(expected);
    assert_eq!(back, all);
    let unique: HashSet<&String> = back.iter().collect();
    assert_eq!(unique.len(), back.len());
}
both!(pagination_forward_and_backward_while_inserting);

fn sha256_of_sorted_json(v: &Value) -> String {
    // serde_json (without preserve_order) keeps object keys sorted; the fixture's keys are ASCII
    // and its numbers integers, so its compact form is the RFC 8785 form.
    hex::encode(Sha256::digest(serde_json::to_string(v).unwrap().as_bytes()))
}

fn ts(seconds: i64) -> Value {
    json!(at(seconds).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// The canonical bundle of r2 (DESIGN: O5 export), written out from the fixture's values.
fn expected_bundle_of_r2() -> Value {
    let step = |index: i64, seconds: i64, skill: &str, status: &str| {
        json!({
            "kind": "trace_step", "tenant_id": "alpha", "trace_id": "tr2", "step_index": index,
            "occurred_at": ts(seconds), "skill_name": skill, "status": status,
            "outcome_category": if status == "SUCCEEDED" { "SUCCESS" } else { "ERROR" },
            "cost_cents": 3 + index, "duration_ms": 250 * (index + 1), "span_id": null,
            "recorded_at": ts(seconds + 1),
        })
    };
    json!({
        "kind": "llm_run_bundle",
        "format_version": 1,
        "run": {
            "kind": "llm_run", "tenant_id": "alpha", "run_id": "r2", "trace_id": "tr2",
            "provider": "anthropic", "model": "claude-sonnet-4", "input_tokens": 400,
            "output_tokens": 120, "cost_cents": 40, "execution_status": "FAILED",
            "started_at": ts(60), "completed_at": ts(90), "source": "sdk", "is_synthetic": false,
            "human_actor_id": "h-1", "agent_id": "agent-1", "system_id": "agent-runtime",
            "origin": "HUMAN", "recorded_at": ts(80),
        },
        "steps": [
            step(0, 61, "plan", "SUCCEEDED"),
            step(1, 70, "tool:sql_query", "FAILED"),
            step(2, 71, "respond", "SKIPPED"),
        ],
        "governance_events": [{
            "kind": "governance_event", "tenant_id": "alpha", "id": "g2", "run_id": "r2",
            "occurred_at": ts(65), "event_type": "POLICY_EVALUATED", "policy_id": "pol-b",
            "rule_id": "pol-b-rule-1", "decision": "WARN", "entity_type": "run", "entity_id": "r2",
            "reason": "pol-b decided WARN", "recorded_at": ts(66),
        }],
    })
}

async fn depth_views_of_a_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = &keys.alpha_viewer;
    let q = r#"query($id: String!) { llmRun(runId: $id) {
        runId
        envelope { canonicalJson checksum checksumMatchesStored record { runId } metadata { runId checksum tenantId } }
        trace { runId traceId totalSteps totalCostCents steps { stepIndex skillName status timestamp } metadata { occurredAt recordedAt checksum } }
        governance { totalEvents events { eventId decision policyId timestamp } metadata { policyIds sourceDomain } }
        replay { inflection { reason timestamp stepIndex } windowStart windowEnd events { source timestamp stepIndex action outcome recordId } }
        export { availableFormats bundleChecksum bundle checksum latestExportMatchesBundle complianceTags exports { exportId status } metadata { checksum } }
    } }"#;

    // r2: failed at step 1 (t+70): the window is [t+40, t+100].
    let d = app.query(k, q, json!({"id": "r2"})).await;
    let run = &d["llmRun"];
    let canonical = run["envelope"]["canonicalJson"].as_str().unwrap();
    let expected_checksum = hex::encode(Sha256::digest(canonical.as_bytes()));
    assert_eq!(run["envelope"]["checksum"], json!(expected_checksum));
    assert_eq!(
        run["envelope"]["metadata"]["checksum"],
        json!(expected_checksum)
    );
    assert_eq!(run["envelope"]["checksumMatchesStored"], json!(true));
    let parsed: Value = serde_json::from_str(canonical).unwrap();
    assert_eq!(parsed["run_id"], json!("r2"));
    assert_eq!(parsed["tenant_id"], json!("alpha"));
    assert_eq!(parsed["started_at"], json!("2026-03-01T12:01:00.000000Z"));
    // Canonical JSON: keys sorted, no whitespace.
    assert_eq!(serde_json::to_string(&parsed).unwrap(), canonical);

    let steps = run["trace"]["steps"].as_array().unwrap();
    assert_eq!(run["trace"]["totalSteps"], json!(3));
    assert_eq!(
        steps
            .iter()
            .map(|s| (
                s["stepIndex"].as_i64().unwrap(),
                s["status"].as_str().unwrap().to_string()
            ))
            .collect::<Vec<_>>(),
        vec![
            (0, "SUCCEEDED".into()),
            (1, "FAILED".into()),
            (2, "SKIPPED".into())
        ]
    );
    assert_eq!(run["trace"]["totalCostCents"], json!(3 + 4 + 5));
    assert_eq!(run["trace"]["metadata"]["occurredAt"], json!(iso(at(71))));
    assert_eq!(run["trace"]["metadata"]["recordedAt"], json!(iso(at(72))));

    // Governance of r2 only (g2), never other runs' events.
    assert_eq!(run["governance"]["totalEvents"], json!(1));
    assert_eq!(run["governance"]["events"][0]["eventId"], json!("g2"));
    assert_eq!(run["governance"]["events"][0]["decision"], json!("WARN"));
    assert_eq!(run["governance"]["metadata"]["policyIds"], json!(["pol-b"]));
    assert_eq!(
        run["governance"]["metadata"]["sourceDomain"],
        json!("POLICY")
    );

    let replay = &run["replay"];
    assert_eq!(
        replay["inflection"],
        json!({"reason": "FIRST_FAILED_STEP", "timestamp": iso(at(70)), "stepIndex": 1})
    );
    assert_eq!(replay["windowStart"], json!(iso(at(40))));
    assert_eq!(replay["windowEnd"], json!(iso(at(100))));
    let timeline: Vec<(String, String)> = replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_string(),
                e["recordId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // s0@60 STEP tr2#0@61 g2@65 s1@69 tr2#1@70 tr2#2@71 g-sys1@75; g-sys2@200 and beta's sb1 excluded.
    let expected: Vec<(String, String)> = [
        ("SYSTEM", "s0"),
        ("STEP", "tr2#0"),
        ("POLICY", "g2"),
        ("SYSTEM", "s1"),
        ("STEP", "tr2#1"),
        ("STEP", "tr2#2"),
        ("SYSTEM", "g-sys1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(timeline, expected);

    // A narrower window keeps only what lies within ±5 s of t+70.
    let d5 = app
        .query(
            k,
            r#"{ llmRun(runId: "r2") { replay(windowSeconds: 5) { events { recordId } } } }"#,
            json!({}),
        )
        .await;
    let ids: Vec<&str> = d5["llmRun"]["replay"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recordId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["g2", "s1", "tr2#1", "tr2#2", "g-sys1"]);

    // Export: the bundle is the canonical evidence of the run, built here from the fixture.
    let export = &run["export"];
    assert_eq!(export["bundle"], expected_bundle_of_r2());
    assert_eq!(
        export["bundleChecksum"],
        json!(sha256_of_sorted_json(&export["bundle"]))
    );
    assert_eq!(export["metadata"]["checksum"], export["bundleChecksum"]);
    assert_eq!(
        export["availableFormats"],
        json!(["BUNDLE", "OTLP_JSON", "CSV"])
    );
    assert_eq!(export["bundle"]["steps"].as_array().unwrap().len(), 3);
    assert_eq!(
        export["bundle"]["governance_events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(export["checksum"], Value::Null);
    assert_eq!(export["latestExportMatchesBundle"], Value::Null);
    assert_eq!(
        export["complianceTags"],
        json!([
            "HUMAN_ATTRIBUTED",
            "INCIDENT_CORRELATED",
            "POLICY_GOVERNED",
            "SOC2"
        ])
    );

    // Inflection rules on the other runs.
    let inflections = [
        (
            "r1",
            json!({"reason": "RUN_COMPLETED", "timestamp": iso(at(10)), "stepIndex": null}),
        ),
        (
            "r3",
            json!({"reason": "FIRST_BLOCKED_STEP", "timestamp": iso(at(302)), "stepIndex": 1}),
        ),
        (
            "r4",
            json!({"reason": "POLICY_WARN", "timestamp": iso(at(610)), "stepIndex": null}),
        ),
        (
            "r5",
            json!({"reason": "RUN_STARTED", "timestamp": iso(at(900)), "stepIndex": null}),
        ),
    ];
    for (id, expected) in inflections {
        let d = app
            .query(k, r#"query($id: String!) { llmRun(runId: $id) { replay { inflection { reason timestamp stepIndex } } } }"#, json!({"id": id}))
            .await;
        assert_eq!(d["llmRun"]["replay"]["inflection"], expected, "{id}");
    }

    // r6 has a completed export whose checksum no longer matches the bundle.
    let d6 = app
        .query(k, r#"{ llmRun(runId: "r6") { export { checksum latestExportMatchesBundle exports { exportId status } metadata { exportId } } } }"#, json!({}))
        .await;
    let e6 = &d6["llmRun"]["export"];
    assert_eq!(e6["checksum"], json!("0".repeat(64)));
    assert_eq!(e6["latestExportMatchesBundle"], json!(false));
    assert_eq!(
        e6["exports"],
        json!([{"exportId": "exp1", "status": "COMPLETED"}])
    );
    assert_eq!(e6["metadata"]["exportId"], json!("exp1"));
}
both!(depth_views_of_a_run);

async fn run_metadata_is_derived_from_the_records(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let q = r#"{ llmRun(runId: "r2") { metadata {
        tenantId runId actorType humanActorId agentId systemId occurredAt recordedAt timezone
        traceId policyIds incidentIds exportId correlationId sourceDomain sourceComponent origin checksum immutable
    } } }"#;
    let d = app.query(&keys.alpha_viewer, q, json!({})).await;
    let m = &d["llmRun"]["metadata"];
    assert_eq!(m["tenantId"], json!("alpha"));
    assert_eq!(m["runId"], json!("r2"));
    // Human beats agent beats system.
    assert_eq!(m["actorType"], json!("HUMAN"));
    assert_eq!(m["humanActorId"], json!("h-1"));
    assert_eq!(m["agentId"], json!("agent-1"));
    assert_eq!(m["systemId"], json!("agent-runtime"));
    assert_eq!(m["occurredAt"], json!(iso(at(60))));
    assert_eq!(m["recordedAt"], json!(iso(at(80))));
    assert_eq!(m["timezone"], json!("UTC"));
    assert_eq!(m["traceId"], json!("tr2"));
    assert_eq!(m["policyIds"], json!(["pol-b"]));
    // s1 is an ERROR correlated to r2; s0 is INFO.
    assert_eq!(m["incidentIds"], json!(["s1"]));
    assert_eq!(m["exportId"], Value::Null);
    assert_eq!(m["correlationId"], json!("r2"));
    assert_eq!(m["sourceDomain"], json!("ACTIVITY"));
    assert_eq!(m["sourceComponent"], json!("llm_runs"));
    assert_eq!(m["origin"], json!("HUMAN"));
    assert_eq!(m["immutable"], json!(true));

    // An empty list says so: no invented timestamps.
    let d = app
        .query(&keys.alpha_viewer, r#"{ llmRuns(filter: {provider: "nobody"}) { totalCount metadata { occurredAt recordedAt origin tenantId } } }"#, json!({}))
        .await;
    assert_eq!(d["llmRuns"]["totalCount"], json!(0));
    assert_eq!(
        d["llmRuns"]["metadata"],
        json!({"occurredAt": null, "recordedAt": null, "origin": null, "tenantId": "alpha"})
    );
}
both!(run_metadata_is_derived_from_the_records);
