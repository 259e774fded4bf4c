//! Writing evidence over GraphQL: every mutation, read back through the read API; every
//! validation rule (a bad item is named and nothing of its batch is stored); idempotent retry;
//! conflicts; roles.

use serde_json::{Value, json};

use crate::both;
use crate::fixture::{self, Keys};
use crate::helpers::{Backend, TestApp, merkle_root};

const INGEST_RUNS: &str = r#"mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) {
    storedCount alreadyPresentCount merkleRoot
    stored { kind key checksum } alreadyPresent { kind key }
    ledgerEntries { category eventType afterState }
    metadata { tenantId systemId checksum }
} }"#;

fn run(run_id: &str) -> Value {
    json!({
        "runId": run_id, "traceId": format!("trace-{run_id}"), "provider": "openai", "model": "gpt-4o",
        "inputTokens": 1200, "outputTokens": 300, "costCents": 9, "executionStatus": "FAILED",
        "startedAt": "2026-05-01T10:00:00Z", "completedAt": "2026-05-01T10:00:20.5Z",
        "agentId": "agent-7",
        "steps": [
            {"stepIndex": 0, "timestamp": "2026-05-01T10:00:01Z", "skillName": "plan", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS", "costCents": 4, "durationMs": 800},
            {"stepIndex": 1, "timestamp": "2026-05-01T10:00:09.25Z", "skillName": "tool:sql_query", "status": "FAILED", "outcomeCategory": "TOOL_ERROR", "costCents": 5, "durationMs": 1200}
        ],
        "governanceEvents": [
            {"eventId": format!("gov-{run_id}"), "timestamp": "2026-05-01T10:00:05Z", "eventType": "POLICY_EVALUATED", "policyId": "pol-sql", "ruleId": "no-ddl", "decision": "WARN", "entityType": "step", "entityId": "1", "reason": "DDL keyword in tool input"}
        ]
    })
}

async fn setup(backend: Backend) -> (TestApp, Keys) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let keys = fixture::load(&app).await;
    (app, keys)
}

async fn runs_are_stored_read_back_and_retries_are_idempotent(backend: Backend) {
    let (app, keys) = setup(backend).await;
    let d = app
        .query(
            &keys.alpha_ingest,
            INGEST_RUNS,
            json!({"runs": [run("w1")]}),
        )
        .await;
    let r = &d["ingestRuns"];
    assert_eq!(
        r["storedCount"],
        json!(4),
        "1 run, 2 steps, 1 governance event"
    );
    assert_eq!(r["alreadyPresentCount"], json!(0));
    let keys_stored: Vec<(String, String)> = r["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().into(),
                s["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys_stored,
        vec![
            ("llm_runs".into(), "w1".into()),
            ("trace_steps".into(), "trace-w1#0".into()),
            ("trace_steps".into(), "trace-w1#1".into()),
            ("governance_events".into(), "gov-w1".into()),
        ]
    );
    // The anchor commits to the Merkle root of exactly these records.
    // The anchor commits to the records as stored: their hashes read from the database, in the
    // documented leaf order (runs, steps, governance events).
    let mut hashes = app
        .store
        .query_strings(
            "SELECT record_hash FROM llm_runs WHERE tenant_id = 'alpha' AND run_id = 'w1'",
        )
        .await;
    hashes.extend(app.store.query_strings("SELECT record_hash FROM trace_steps WHERE tenant_id = 'alpha' AND trace_id = 'trace-w1' ORDER BY step_index").await);
    hashes.extend(app.store.query_strings("SELECT record_hash FROM governance_events WHERE tenant_id = 'alpha' AND id = 'gov-w1'").await);
    let stored_checksums: Vec<&str> = r["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["checksum"].as_str().unwrap())
        .collect();
    assert_eq!(
        stored_checksums,
        hashes.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Leaves: per table (runs, steps, governance events), the hashes in ascending byte order.
    let mut leaves: Vec<[u8; 32]> = hashes
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect();
    leaves[1..3].sort();
    let root = hex::encode(merkle_root(&leaves));
    assert_eq!(r["merkleRoot"], json!(root));
    assert_eq!(r["metadata"]["checksum"], json!(root));
    assert_eq!(r["metadata"]["tenantId"], json!("alpha"));
    let anchor = &r["ledgerEntries"][0];
    assert_eq!(
        (anchor["category"].clone(), anchor["eventType"].clone()),
        (json!("ANCHOR"), json!("EVIDENCE_BATCH_ANCHORED"))
    );
    assert_eq!(anchor["afterState"]["merkle_root"], json!(root));

    // Read back through the read API.
    let q = r#"{ llmRun(runId: "w1") {
        provider model inputTokens costCents executionStatus startedAt completedAt isSynthetic source
        metadata { origin agentId }
        envelope { checksum checksumMatchesStored }
        trace { steps { stepIndex skillName status timestamp costCents durationMs } }
        governance { events { eventId decision policyId ruleId reason } }
        replay { inflection { reason timestamp } }
    } }"#;
    let d = app.query(&keys.alpha_viewer, q, json!({})).await;
    let w = &d["llmRun"];
    assert_eq!(w["completedAt"], json!("2026-05-01T10:00:20.500000Z"));
    assert_eq!(w["source"], json!("api"), "default source");
    assert_eq!(
        w["metadata"]["origin"],
        json!("AGENT"),
        "origin derived from the agent"
    );
    assert_eq!(w["envelope"]["checksum"], r["stored"][0]["checksum"]);
    assert_eq!(w["envelope"]["checksumMatchesStored"], json!(true));
    assert_eq!(
        w["trace"]["steps"][1],
        json!({"stepIndex": 1, "skillName": "tool:sql_query", "status": "FAILED", "timestamp": "2026-05-01T10:00:09.250000Z", "costCents": 5, "durationMs": 1200})
    );
    assert_eq!(
        w["governance"]["events"],
        json!([{"eventId": "gov-w1", "decision": "WARN", "policyId": "pol-sql", "ruleId": "no-ddl", "reason": "DDL keyword in tool input"}])
    );
    assert_eq!(
        w["replay"]["inflection"],
        json!({"reason": "FIRST_FAILED_STEP", "timestamp": "2026-05-01T10:00:09.250000Z"})
    );

    // The same request again: a success that writes nothing new, not even a ledger entry.
    let entries_before = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'alpha'")
        .await;
    let d = app
        .query(
            &keys.alpha_ingest,
            INGEST_RUNS,
            json!({"runs": [run("w1")]}),
        )
        .await;
    let r = &d["ingestRuns"];
    assert_eq!(
        (r["storedCount"].clone(), r["alreadyPresentCount"].clone()),
        (json!(0), json!(4))
    );
    assert_eq!(r["merkleRoot"], Value::Null);
    assert_eq!(r["ledgerEntries"], json!([]));
    let entries_after = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'alpha'")
        .await;
    assert_eq!(entries_before, entries_after);
    // A retry mixed with new records writes only the new ones.
    let d = app
        .query(
            &keys.alpha_ingest,
            INGEST_RUNS,
            json!({"runs": [run("w1"), run("w2")]}),
        )
        .await;
    assert_eq!(
        (
            d["ingestRuns"]["storedCount"].clone(),
            d["ingestRuns"]["alreadyPresentCount"].clone()
        ),
        (json!(4), json!(4))
    );

    // Another tenant may use the same run id; each sees its own.
    let d = app
        .query(
            &keys.alpha_ingest,
            INGEST_RUNS,
            json!({"runs": [run("rb1")]}),
        )
        .await;
    assert_eq!(d["ingestRuns"]["storedCount"], json!(4));
    let d = app
        .query(
            &keys.beta_auditor,
            r#"{ llmRun(runId: "rb1") { model executionStatus } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        d["llmRun"],
        json!({"model": "gpt-4o", "executionStatus": "SUCCEEDED"})
    );

    // The ledger still verifies with the anchors in it.
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ audit { integrity { hashChainValid } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["audit"]["integrity"]["hashChainValid"], json!(true));
}
both!(runs_are_stored_read_back_and_retries_are_idempotent);

async fn conflicts_name_the_key_and_change_nothing(backend: Backend) {
    let (app, keys) = setup(backend).await;
    app.query(
        &keys.alpha_ingest,
        INGEST_RUNS,
        json!({"runs": [run("w1")]}),
    )
    .await;
    let runs_before = app.store.query_i64("SELECT COUNT(*) FROM llm_runs").await;
    let ledger_before = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger")
        .await;

    let mut changed = run("w1");
    changed["model"] = json!("gpt-4o-mini");
    let (code, message) = app
        .query_error(
            Some(&keys.alpha_ingest),
            INGEST_RUNS,
            json!({"runs": [run("w-new"), changed]}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("run `w1`"), "{message}");
    let mut step_changed = run("w1");
    step_changed["steps"][1]["status"] = json!("SUCCEEDED");
    let (code, message) = app
        .query_error(
            Some(&keys.alpha_ingest),
            INGEST_RUNS,
            json!({"runs": [step_changed]}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("trace step `trace-w1#1`"), "{message}");
    // Two different records under one key in one batch.
    let mut twin = run("w-twin");
    twin["provider"] = json!("anthropic");
    let (code, message) = app
        .query_error(
            Some(&keys.alpha_ingest),
            INGEST_RUNS,
            json!({"runs": [run("w-twin"), twin]}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(
        message.contains("w-twin") && message.contains("twice"),
        "{message}"
    );

    // Nothing of the refused batches was written, and the stored record is untouched.
    assert_eq!(
        app.store.query_i64("SELECT COUNT(*) FROM llm_runs").await,
        runs_before
    );
    assert_eq!(
        app.store
            .query_i64("SELECT COUNT(*) FROM audit_ledger")
            .await,
        ledger_before
    );
    let d = app
        .query(
            &keys.alpha_viewer,
            r#"{ llmRun(runId: "w1") { model trace { steps { status } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(d["llmRun"]["model"], json!("gpt-4o"));
    assert_eq!(d["llmRun"]["trace"]["steps"][1]["status"], json!("FAILED"));
}
both!(conflicts_name_the_key_and_change_nothing);

async fn every_validation_rule_names_the_item_and_stores_nothing(backend: Backend) {
    let (app, keys) = setup(backend).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut runs = json!([run("v0"), run("v1")]);
        f(&mut runs);
        json!({"runs": runs})
    };
    let long = "x".repeat(257);
    let mut deep = json!(1);
    for _ in 0..11 {
        deep = json!([deep]);
    }
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            INGEST_RUNS,
            with(&|r| r[1]["inputTokens"] = json!(-1)),
            "runs[1].inputTokens: must not be negative",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[0]["costCents"] = json!(-5)),
            "runs[0].costCents",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["completedAt"] = json!("2026-05-01T09:59:59Z")),
            "runs[1].completedAt",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[0]["startedAt"] = json!("2999-01-01T00:00:00Z")),
            "runs[0].startedAt: 2999-01-01T00:00:00.000000Z is more than 300 s in the future",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["provider"] = json!("  ")),
            "runs[1].provider: must not be empty",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["model"] = json!(long.clone())),
            "runs[1].model: is 257 characters long",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[0]["runId"] = json!("bad\nid")),
            "runs[0].runId: must not contain control characters",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["traceId"] = Value::Null),
            "runs[1].traceId: is required when steps are nested",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["steps"][0]["traceId"] = json!("other")),
            "runs[1].steps[0].traceId",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[0]["steps"][1]["stepIndex"] = json!(-2)),
            "runs[0].steps[1].stepIndex",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[0]["steps"][0]["durationMs"] = json!(-3)),
            "runs[0].steps[0].durationMs",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["governanceEvents"][0]["eventId"] = json!("")),
            "runs[1].governanceEvents[0].eventId",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[1]["executionStatus"] = json!("EXPLODED")),
            "EXPLODED",
        ),
        (
            INGEST_RUNS,
            with(&|r| r[0]["startedAt"] = json!("yesterday")),
            "yesterday",
        ),
        (
            INGEST_RUNS,
            json!({"runs": []}),
            "runs: must hold at least one item",
        ),
        (
            INGEST_RUNS,
            json!({"runs": (0..1001).map(|i| json!({"runId": format!("m{i}"), "provider": "p", "model": "m", "inputTokens": 0, "outputTokens": 0, "costCents": 0, "executionStatus": "SUCCEEDED", "startedAt": "2026-05-01T10:00:00Z"})).collect::<Vec<_>>()}),
            "runs: holds 1001 items; at most 1000",
        ),
        (
            "mutation($r: [SystemRecordInput!]!) { ingestSystemRecords(records: $r) { storedCount } }",
            json!({"r": [{"recordId": "s-ok", "component": "c", "eventType": "E", "severity": "INFO", "summary": "s", "occurredAt": "2026-05-01T10:00:00Z"},
                         {"recordId": "s-deep", "component": "c", "eventType": "E", "severity": "INFO", "summary": "s", "occurredAt": "2026-05-01T10:00:00Z", "details": deep}]}),
            "records[1].details: nests 11 levels deep",
        ),
        (
            "mutation($r: [SystemRecordInput!]!) { ingestSystemRecords(records: $r) { storedCount } }",
            json!({"r": [{"recordId": "s-big", "component": "c", "eventType": "E", "severity": "INFO", "summary": "s", "occurredAt": "2026-05-01T10:00:00Z", "details": {"blob": "y".repeat(20_000)}}]}),
            "records[0].details: is 20011 bytes",
        ),
        (
            "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }",
            json!({"s": [{"stepIndex": 0, "timestamp": "2026-05-01T10:00:00Z", "skillName": "plan", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"}]}),
            "steps[0].traceId: is required",
        ),
        (
            "mutation($e: [AuditEventInput!]!) { recordAuditEvents(events: $e) { storedCount } }",
            json!({"e": [{"eventId": "ev-bad", "eventType": "LIMIT_CHANGED", "entityType": "limit", "entityId": "", "actorType": "HUMAN", "occurredAt": "2026-05-01T10:00:00Z"}]}),
            "events[0].entityId: must not be empty",
        ),
    ];
    let runs_before = app.store.query_i64("SELECT COUNT(*) FROM llm_runs").await;
    let others_before = app.store.query_i64("SELECT (SELECT COUNT(*) FROM trace_steps) + (SELECT COUNT(*) FROM system_records) + (SELECT COUNT(*) FROM audit_ledger)").await;
    for (mutation, vars, needle) in cases {
        let (code, message) = app
            .query_error(Some(&keys.alpha_ingest), mutation, vars)
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{needle}: {message}");
        assert!(
            message.contains(needle),
            "message `{message}` should contain `{needle}`"
        );
    }
    assert_eq!(
        app.store.query_i64("SELECT COUNT(*) FROM llm_runs").await,
        runs_before
    );
    assert_eq!(
        app.store.query_i64("SELECT (SELECT COUNT(*) FROM trace_steps) + (SELECT COUNT(*) FROM system_records) + (SELECT COUNT(*) FROM audit_ledger)").await,
        others_before
    );
}
both!(every_validation_rule_names_the_item_and_stores_nothing);

async fn steps_system_records_telemetry_and_audit_events(backend: Backend) {
    let (app, keys) = setup(backend).await;
    let k = &keys.alpha_ingest;
    // Steps first, their run afterwards.
    let d = app
        .query(k, "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount stored { key } } }",
            json!({"s": [{"traceId": "late-trace", "stepIndex": 0, "timestamp": "2026-05-02T08:00:01Z", "skillName": "plan", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"}]}))
        .await;
    assert_eq!(
        d["ingestTraceSteps"]["stored"],
        json!([{"key": "late-trace#0"}])
    );
    let mut late = run("late");
    late["traceId"] = json!("late-trace");
    late["steps"] = json!([]);
    late["startedAt"] = json!("2026-05-02T08:00:00Z");
    late["completedAt"] = json!("2026-05-02T08:00:30Z");
    app.query(k, INGEST_RUNS, json!({"runs": [late]})).await;

    let d = app
        .query(k, "mutation($r: [SystemRecordInput!]!) { ingestSystemRecords(records: $r) { storedCount metadata { sourceDomain } } }",
            json!({"r": [{"recordId": "sys-late-1", "component": "worker-pool", "eventType": "WORKER_RESTART", "severity": "ERROR",
                          "summary": "worker w-3 restarted", "details": {"worker": "w-3", "exit": 137}, "causedBy": "oom-killer",
                          "correlationId": "late", "occurredAt": "2026-05-02T08:00:10Z"}]}))
        .await;
    assert_eq!(
        d["ingestSystemRecords"],
        json!({"storedCount": 1, "metadata": {"sourceDomain": "SYSTEM"}})
    );
    let d = app
        .query(k, "mutation($t: [TelemetrySampleInput!]!) { ingestTelemetry(samples: $t) { storedCount } }",
            json!({"t": [
                {"sampleId": "t1", "runId": "late", "sampledAt": "2026-05-02T08:00:05Z", "metric": "latency_ms", "value": 120.5, "unit": "ms"},
                {"sampleId": "t2", "runId": "late", "sampledAt": "2026-05-02T08:00:06Z", "metric": "latency_ms", "value": 79.5, "unit": "ms"}
            ]}))
        .await;
    assert_eq!(d["ingestTelemetry"]["storedCount"], json!(2));
    let record = "mutation($e: [AuditEventInput!]!) { recordAuditEvents(events: $e) { storedCount ledgerEntries { category eventType beforeState afterState actorId } alreadyPresent { kind } } }";
    let event = json!({"eventId": "ev-limit-1", "eventType": "LIMIT_CHANGED", "entityType": "limit", "entityId": "daily-cost", "actorType": "HUMAN", "actorId": "ops@acme",
                       "actionReason": "Q3 budget", "beforeState": {"cents": 5000}, "afterState": {"cents": 8000}, "occurredAt": "2026-05-02T09:00:00Z"});
    let d = app.query(k, record, json!({"e": [event.clone()]})).await;
    assert_eq!(d["recordAuditEvents"]["storedCount"], json!(0));
    assert_eq!(
        d["recordAuditEvents"]["ledgerEntries"],
        json!([{"category": "GOVERNANCE", "eventType": "LIMIT_CHANGED", "beforeState": {"cents": 5000}, "afterState": {"cents": 8000}, "actorId": "ops@acme"}])
    );
    // Re-sent: recognised by its id, not appended again. Changed under the same id: a conflict.
    let d = app.query(k, record, json!({"e": [event.clone()]})).await;
    assert_eq!(d["recordAuditEvents"]["ledgerEntries"], json!([]));
    assert_eq!(
        d["recordAuditEvents"]["alreadyPresent"],
        json!([{"kind": "audit_ledger"}])
    );
    let mut changed = event.clone();
    changed["afterState"] = json!({"cents": 9000});
    let (code, message) = app
        .query_error(Some(k), record, json!({"e": [changed]}))
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("audit event"), "{message}");

    // Everything reads back through the read API.
    let d = app
        .query(
            &keys.alpha_auditor,
            r#"{
            llmRun(runId: "late") { trace { steps { stepIndex } } system {
                events { events { recordId details causedBy } }
                telemetry { status metrics { metric count min max mean } }
                attribution { causes { causedBy } } } }
            auditEntries(filter: {eventType: "LIMIT_CHANGED"}) { totalCount }
            audit { integrity { hashChainValid } }
        }"#,
            json!({}),
        )
        .await;
    let late = &d["llmRun"];
    assert_eq!(late["trace"]["steps"], json!([{"stepIndex": 0}]));
    assert_eq!(
        late["system"]["events"]["events"],
        json!([{"recordId": "sys-late-1", "details": {"exit": 137, "worker": "w-3"}, "causedBy": "oom-killer"}])
    );
    assert_eq!(
        late["system"]["telemetry"],
        json!({"status": "COLLECTED", "metrics": [{"metric": "latency_ms", "count": 2, "min": 79.5, "max": 120.5, "mean": 100.0}]})
    );
    assert_eq!(
        late["system"]["attribution"]["causes"],
        json!([{"causedBy": "oom-killer"}])
    );
    assert_eq!(d["auditEntries"]["totalCount"], json!(1));
    assert_eq!(d["audit"]["integrity"]["hashChainValid"], json!(true));
}
both!(steps_system_records_telemetry_and_audit_events);

async fn only_ingest_keys_write(backend: Backend) {
    let (app, keys) = setup(backend).await;
    for key in [&keys.alpha_viewer, &keys.alpha_auditor] {
        let (code, message) = app
            .query_error(Some(key), INGEST_RUNS, json!({"runs": [run("nope")]}))
            .await;
        assert_eq!(code, "FORBIDDEN");
        assert!(message.contains("write:evidence"), "{message}");
    }
    let (code, _) = app
        .query_error(None, INGEST_RUNS, json!({"runs": [run("nope")]}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(
        app.store
            .query_i64("SELECT COUNT(*) FROM llm_runs WHERE run_id = 'nope'")
            .await,
        vec![0]
    );
}
both!(only_ingest_keys_write);

async fn concurrent_writers_of_one_tenant_never_collide(backend: Backend) {
    let (app, keys) = setup(backend).await;
    // The same batch from four clients at once: one stores it, the others find it present.
    let body = json!({"query": INGEST_RUNS, "variables": {"runs": [run("c1")]}});
    let sends = (0..4).map(|_| app.post(Some(&keys.alpha_ingest), &body));
    let answers = futures_util::future::join_all(sends).await;
    let mut stored = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        stored += body["data"]["ingestRuns"]["storedCount"].as_i64().unwrap();
    }
    assert_eq!(
        stored, 4,
        "the run, its two steps and its event are stored exactly once"
    );

    // Steps of one trace sent on their own by four clients at once get distinct indices.
    let step = |i: usize| {
        json!({"query": "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }",
        "variables": {"s": [{"traceId": "shared", "stepIndex": i, "timestamp": "2026-05-01T10:00:00Z", "skillName": format!("s{i}"), "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"}]}})
    };
    let bodies: Vec<Value> = (0..4).map(step).collect();
    let sends = bodies.iter().map(|b| app.post(Some(&keys.alpha_ingest), b));
    let answers = futures_util::future::join_all(sends).await;
    for (status, body) in &answers {
        assert_eq!(
            (*status, body.get("errors").is_none()),
            (200, true),
            "{body}"
        );
    }
    assert_eq!(
        app.store
            .query_i64("SELECT COUNT(*) FROM trace_steps WHERE trace_id = 'shared'")
            .await,
        vec![4]
    );
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ audit { integrity { hashChainValid anomaliesDetected } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["audit"]["integrity"],
        json!({"hashChainValid": true, "anomaliesDetected": 0})
    );
}
both!(concurrent_writers_of_one_tenant_never_collide);
