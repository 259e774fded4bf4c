//! Nested fields under a list are batched: the number of SQL statements of a request does not
//! grow with the page size. Also checks seeded data against SQL computed independently.

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestApp};

const NESTED: &str = r#"query($n: Int) { llmRuns(first: $n) { totalCount nodes {
    runId metadata { policyIds incidentIds exportId }
    trace { steps { stepIndex status } }
    governance { events { decision } }
    replay { events { source recordId } }
    wide: replay(windowSeconds: 600) { events { recordId } }
    export { bundleChecksum exports { status } }
    envelope { checksum record { runId } }
    system {
        events { events { recordId } } telemetry { status } snapshot { found }
        replay { events { recordId } } attribution(windowSeconds: 120) { total }
    }
} } }"#;

async fn statement_count_does_not_grow_with_page_size(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.seeded_auditor("load", 80, 6, 50, 7).await;

    // The first request fills the server's caches (the tenant record is read once per
    // server); the two measured requests differ only in their page size.
    app.query(&key, NESTED, json!({"n": 1})).await;
    let mut counts = Vec::new();
    for n in [5, 50] {
        let before = app.statement_count();
        let d = app.query(&key, NESTED, json!({"n": n})).await;
        counts.push(app.statement_count() - before);
        assert_eq!(d["llmRuns"]["nodes"].as_array().unwrap().len(), n);
        // Every run's steps come back, as SQL counts them.
        for node in d["llmRuns"]["nodes"].as_array().unwrap() {
            assert_eq!(node["trace"]["steps"].as_array().unwrap().len(), 6);
        }
    }
    eprintln!(
        "statements per request: first 5 -> {}, first 50 -> {}",
        counts[0], counts[1]
    );
    assert_eq!(
        counts[0], counts[1],
        "statements must not grow with the page size"
    );

    // Seeded data, checked against SQL.
    let d = app
        .query(&key, "{ failed: llmRuns(filter: {executionStatus: [FAILED]}) { totalCount } all: llmRuns { totalCount } }", json!({}))
        .await;
    let failed = app.store.query_i64("SELECT COUNT(*) FROM llm_runs WHERE tenant_id = 'load' AND execution_status = 'FAILED'").await;
    assert_eq!(d["failed"]["totalCount"], json!(failed[0]));
    assert_eq!(d["all"]["totalCount"], json!(80));
    let d = app
        .query(
            &key,
            "{ audit { integrity { hashChainValid fromSeq entriesChecked } } }",
            json!({}),
        )
        .await;
    let entries = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'load'")
        .await;
    // The seeder's exports signed checkpoints: the verification starts after the newest.
    let covered = app
        .store
        .query_i64("SELECT MAX(tree_size) FROM ledger_checkpoints WHERE tenant_id = 'load'")
        .await;
    let from = d["audit"]["integrity"]["fromSeq"].as_i64().unwrap();
    assert_eq!(from, covered[0] + 1, "{d}");
    assert_eq!(
        d["audit"]["integrity"],
        // The verification read every entry from there on, then recorded itself, and the
        // request its authorization and access (written before the response was sent).
        json!({"hashChainValid": true, "fromSeq": from, "entriesChecked": entries[0] - from + 1 - 3})
    );
    let categories = app
        .store
        .query_strings(
            "SELECT DISTINCT category FROM audit_ledger WHERE tenant_id = 'load' ORDER BY category",
        )
        .await;
    assert_eq!(
        categories,
        vec![
            "ACCESS",
            "ANCHOR",
            "AUTHORIZATION",
            "EXPORT",
            "GOVERNANCE",
            "IDENTITY",
            // The verification above.
            "INTEGRITY"
        ]
    );
}
both!(statement_count_does_not_grow_with_page_size);

/// Views of one run that show few columns share the reads of the views that need every
/// column: a trace and a governance view beside replay and export cost no statement of their
/// own, and show the same steps and events.
async fn views_of_one_run_share_their_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.seeded_auditor("share", 10, 6, 0, 11).await;
    let d = app
        .query(&key, "{ llmRuns(first: 2) { nodes { runId } } }", json!({}))
        .await;
    let run = d["llmRuns"]["nodes"][1]["runId"].clone();

    let replay_and_export = "query($id: String!) { llmRun(runId: $id) { \
        replay { events { source recordId } } export { bundleChecksum } } }";
    let with_views = "query($id: String!) { llmRun(runId: $id) { \
        trace { steps { stepIndex } } governance { events { eventId } } \
        replay { events { source recordId } } export { bundleChecksum } } }";
    // The first request fills the server's caches (the tenant record).
    app.query(&key, replay_and_export, json!({"id": run})).await;
    let mut counts = Vec::new();
    let mut answers = Vec::new();
    for query in [replay_and_export, with_views] {
        let before = app.statement_count();
        answers.push(app.query(&key, query, json!({"id": run})).await);
        counts.push(app.statement_count() - before);
    }
    assert_eq!(
        counts[0], counts[1],
        "trace and governance views beside replay and export read nothing more"
    );
    // The views show every step and policy event of the run, as SQL counts them.
    let view = &answers[1]["llmRun"];
    let steps = app
        .store
        .query_i64(&format!(
            "SELECT COUNT(*) FROM trace_steps s JOIN llm_runs r ON r.trace_id = s.trace_id \
             AND r.tenant_id = s.tenant_id WHERE r.run_id = '{}'",
            run.as_str().unwrap()
        ))
        .await;
    assert_eq!(
        view["trace"]["steps"].as_array().unwrap().len() as i64,
        steps[0]
    );
    let events = app
        .store
        .query_i64(&format!(
            "SELECT COUNT(*) FROM governance_events WHERE tenant_id = 'share' AND run_id = '{}'",
            run.as_str().unwrap()
        ))
        .await;
    assert_eq!(
        view["governance"]["events"].as_array().unwrap().len() as i64,
        events[0]
    );
}

both!(views_of_one_run_share_their_reads);
