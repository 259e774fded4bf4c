//! The system-logs topic: the record list (tenant and global), and per run the snapshot,
//! telemetry, correlated events, replay window and attribution.

use serde_json::{Value, json};

use crate::both;
use crate::fixture::{self, Keep, SystemSpec, at, iso, system_specs};
use crate::helpers::{Backend, TestApp};

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n["recordId"].as_str().unwrap().to_string())
        .collect()
}

async fn list_and_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = &keys.alpha_viewer;
    let specs = system_specs();
    // Visible to alpha: its own and the global ones, newest first.
    let expect = |keep: &dyn Fn(&SystemSpec) -> bool| {
        let mut v: Vec<_> = specs
            .iter()
            .filter(|s| s.1 != Some("beta"))
            .filter(|s| keep(s))
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse((s.2, s.0)));
        v.iter().map(|s| s.0.to_string()).collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Keep<SystemSpec>)> = vec![
        ("", Box::new(|_| true)),
        ("filter: {scope: GLOBAL}", Box::new(|s| s.1.is_none())),
        ("filter: {scope: TENANT}", Box::new(|s| s.1.is_some())),
        (
            r#"filter: {component: "worker-pool"}"#,
            Box::new(|s| s.3 == "worker-pool"),
        ),
        (
            r#"filter: {eventType: "WORKER_RESTART"}"#,
            Box::new(|s| s.4 == "WORKER_RESTART"),
        ),
        (
            "filter: {severity: [ERROR, WARNING]}",
            Box::new(|s| s.5 == "ERROR" || s.5 == "WARNING"),
        ),
        (
            r#"filter: {correlationId: "r2"}"#,
            Box::new(|s| s.6 == Some("r2")),
        ),
        (
            r#"filter: {causedBy: "autoscaler"}"#,
            Box::new(|s| s.7 == Some("autoscaler")),
        ),
        (
            r#"filter: {occurredAfter: "2026-03-01T12:01:10Z", occurredBefore: "2026-03-01T12:10:00Z"}"#,
            Box::new(|s| s.2 >= 70 && s.2 <= 600),
        ),
    ];
    for (args, keep) in cases {
        let q = format!(
            "{{ systemRecords(first: 50 {}{args}) {{ totalCount filtersApplied nodes {{ recordId }} }} }}",
            if args.is_empty() { "" } else { ", " }
        );
        let d = app.query(k, &q, json!({})).await;
        let expected = expect(&*keep);
        assert_eq!(ids(&d["systemRecords"]["nodes"]), expected, "{args}");
        assert_eq!(
            d["systemRecords"]["totalCount"],
            json!(expected.len()),
            "{args}"
        );
    }

    // Fields of one record; a global record has no tenant.
    let d = app
        .query(k, r#"{ systemRecords(first: 50, filter: {scope: GLOBAL}) { nodes { recordId tenantId isGlobal severity occurredAt recordedAt causedBy summary } } }"#, json!({}))
        .await;
    assert_eq!(
        d["systemRecords"]["nodes"][1],
        json!({"recordId": "g-sys1", "tenantId": null, "isGlobal": true, "severity": "WARNING",
               "occurredAt": iso(at(75)), "recordedAt": iso(at(76)), "causedBy": "autoscaler",
               "summary": "HEALTH_TRANSITION on gateway"})
    );

    // Paging backward through the system list gives the same rows.
    let all = expect(&|_| true);
    let d = app
        .query(
            k,
            "{ systemRecords(last: 2) { nodes { recordId } pageInfo { hasPreviousPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ids(&d["systemRecords"]["nodes"]),
        all[all.len() - 2..].to_vec()
    );
    assert_eq!(
        d["systemRecords"]["pageInfo"]["hasPreviousPage"],
        json!(true)
    );
}
both!(list_and_filters);

/// Walking the whole list page by page, forward and backward, gives the tenant's and the
/// global records interleaved by time exactly once each, in SQL's order.
async fn pages_interleave_tenant_and_global_records(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.seeded_auditor("walk", 30, 2, 0, 5).await;
    let expected = app
        .store
        .query_strings(
            "SELECT id FROM system_records WHERE tenant_id = 'walk' OR tenant_id IS NULL \
             ORDER BY occurred_at DESC, id DESC",
        )
        .await;
    let global = app
        .store
        .query_i64("SELECT COUNT(*) FROM system_records WHERE tenant_id IS NULL")
        .await[0];
    assert!(
        global > 0 && (global as usize) < expected.len(),
        "both owners hold records"
    );
    assert!(expected.len() > 3 * 7, "several pages: {}", expected.len());

    let walk = |forward: bool| {
        let (app, key, expected) = (&app, &key, &expected);
        async move {
            let mut seen: Vec<String> = Vec::new();
            let mut cursor = Value::Null;
            for _ in 0..expected.len() / 7 + 2 {
                let q = if forward {
                    "query($c: String) { systemRecords(first: 7, after: $c) { nodes { recordId } \
                     pageInfo { hasNextPage endCursor } } }"
                } else {
                    "query($c: String) { systemRecords(last: 7, before: $c) { nodes { recordId } \
                     pageInfo { hasPreviousPage startCursor } } }"
                };
                let d = app.query(key, q, json!({"c": cursor})).await;
                let page = &d["systemRecords"];
                let mut page_ids = ids(&page["nodes"]);
                let info = &page["pageInfo"];
                if forward {
                    seen.append(&mut page_ids);
                    if info["hasNextPage"] != json!(true) {
                        return seen;
                    }
                    cursor = info["endCursor"].clone();
                } else {
                    page_ids.append(&mut seen);
                    seen = page_ids;
                    if info["hasPreviousPage"] != json!(true) {
                        return seen;
                    }
                    cursor = info["startCursor"].clone();
                }
            }
            panic!(
                "the walk did not end after {} pages",
                expected.len() / 7 + 2
            );
        }
    };
    assert_eq!(walk(true).await, expected, "forward");
    assert_eq!(walk(false).await, expected, "backward");
}
both!(pages_interleave_tenant_and_global_records);

async fn depth_views_of_a_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = &keys.alpha_viewer;
    let q = r#"query($id: String!) { systemRun(runId: $id) {
        runId
        snapshot { found record { recordId details } metadata { runId checksum sourceDomain } }
        telemetry { status reason availableMetrics metrics { metric unit count min max mean } samples { value } metadata { checksum occurredAt } }
        events { totalEvents events { recordId } metadata { incidentIds sourceDomain correlationId } }
        replay { inflection { reason } windowStart windowEnd events { source recordId } }
        attribution { total items { recordId } causes { causedBy eventCount components maxSeverity } }
    } }"#;
    let d = app.query(k, q, json!({"id": "r2"})).await;
    let s = &d["systemRun"];
    assert_eq!(s["snapshot"]["found"], json!(true));
    assert_eq!(s["snapshot"]["record"]["recordId"], json!("s0"));
    assert_eq!(
        s["snapshot"]["record"]["details"],
        json!({"region": "eu-west-1", "worker": "w-7"})
    );
    assert_eq!(s["snapshot"]["metadata"]["runId"], json!("r2"));
    assert!(
        s["snapshot"]["metadata"]["checksum"]
            .as_str()
            .is_some_and(|c| c.len() == 64)
    );

    // r2 has no telemetry: an honest answer, not a stub.
    assert_eq!(s["telemetry"]["status"], json!("NOT_COLLECTED"));
    assert!(s["telemetry"]["reason"].as_str().unwrap().contains("r2"));
    assert_eq!(s["telemetry"]["samples"], json!([]));
    assert_eq!(s["telemetry"]["metadata"]["occurredAt"], Value::Null);

    assert_eq!(s["events"]["totalEvents"], json!(2));
    assert_eq!(ids(&s["events"]["events"]), vec!["s0", "s1"]);
    assert_eq!(s["events"]["metadata"]["incidentIds"], json!(["s1"]));
    assert_eq!(s["events"]["metadata"]["sourceDomain"], json!("INCIDENTS"));
    assert_eq!(s["events"]["metadata"]["correlationId"], json!("r2"));

    // Replay: system events (own and global) in [t+40, t+100]; beta's sb1 at t+70 never.
    assert_eq!(
        s["replay"]["inflection"]["reason"],
        json!("FIRST_FAILED_STEP")
    );
    assert_eq!(s["replay"]["windowStart"], json!(iso(at(40))));
    let replay: Vec<&str> = s["replay"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recordId"].as_str().unwrap())
        .collect();
    assert_eq!(replay, vec!["s0", "s1", "g-sys1"]);

    // Attribution: events with a cause, correlated or in the window, grouped by cause.
    assert_eq!(s["attribution"]["total"], json!(2));
    assert_eq!(ids(&s["attribution"]["items"]), vec!["s1", "g-sys1"]);
    assert_eq!(
        s["attribution"]["causes"],
        json!([
            {"causedBy": "autoscaler", "eventCount": 1, "components": ["gateway"], "maxSeverity": "WARNING"},
            {"causedBy": "deploy:v1", "eventCount": 1, "components": ["worker-pool"], "maxSeverity": "ERROR"}
        ])
    );
    // The root-level systemAudit answers the same.
    let d = app
        .query(
            k,
            r#"{ systemAudit(runId: "r2") { total causes { causedBy } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(d["systemAudit"]["total"], json!(2));

    // r4 has telemetry: latency 100, 200, 300.
    let d = app.query(k, q, json!({"id": "r4"})).await;
    let t = &d["systemRun"]["telemetry"];
    assert_eq!(t["status"], json!("COLLECTED"));
    assert_eq!(t["reason"], Value::Null);
    assert_eq!(t["availableMetrics"], json!(["latency_ms"]));
    assert_eq!(
        t["metrics"],
        json!([{"metric": "latency_ms", "unit": "ms", "count": 3, "min": 100.0, "max": 300.0, "mean": 200.0}])
    );
    assert_eq!(t["metadata"]["occurredAt"], json!(iso(at(603))));
    // r4 has no correlated records: the snapshot says so.
    assert_eq!(d["systemRun"]["snapshot"]["found"], json!(false));
    assert_eq!(d["systemRun"]["snapshot"]["record"], Value::Null);
}
both!(depth_views_of_a_run);
