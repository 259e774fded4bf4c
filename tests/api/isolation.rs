//! Tenant isolation: a key of tenant alpha gets nothing of tenant beta, through every root
//! field and through `node(id)` with ids of beta's objects.

use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

async fn a_key_never_sees_another_tenant(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let keys = fixture::load(&app).await;
    let alpha = &keys.alpha_auditor;
    let beta = &keys.beta_auditor;

    // Ids of beta's objects, read with beta's key.
    let d = app
        .query(
            beta,
            r#"{
            llmRun(runId: "rb1") { id governance { events { id } } export { exports { id } } }
            systemRecords(filter: {scope: TENANT}) { nodes { id recordId } }
            auditEntries(first: 100) { nodes { id entryId } }
        }"#,
            json!({}),
        )
        .await;
    let beta_ids: Vec<String> = [
        d["llmRun"]["id"].clone(),
        d["llmRun"]["governance"]["events"][0]["id"].clone(),
        d["llmRun"]["export"]["exports"][0]["id"].clone(),
        d["systemRecords"]["nodes"][0]["id"].clone(),
        d["auditEntries"]["nodes"][0]["id"].clone(),
    ]
    .iter()
    .map(|v| v.as_str().expect("beta id").to_string())
    .collect();
    let beta_entry = d["auditEntries"]["nodes"][0]["entryId"]
        .as_str()
        .unwrap()
        .to_string();
    for id in &beta_ids {
        let d = app
            .query(
                alpha,
                "query($id: ID!) { node(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(d["node"], Value::Null, "alpha resolved beta's node {id}");
    }
    // Ids carry no tenant: beta's id for trace step tr1#0 names alpha's own step for alpha.
    let step = app
        .query(
            beta,
            r#"{ llmRun(runId: "r1") { provider trace { steps { id skillName } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(step["llmRun"]["provider"], json!("beta-provider"));
    let step_id = step["llmRun"]["trace"]["steps"][0]["id"].clone();
    let d = app
        .query(
            alpha,
            "query($id: ID!) { node(id: $id) { ... on TraceStep { skillName } } }",
            json!({"id": step_id}),
        )
        .await;
    assert_eq!(d["node"]["skillName"], json!("plan"));

    // Root fields that name one of beta's objects answer NOT_FOUND.
    for (query, vars) in [
        (r#"{ llmRun(runId: "rb1") { runId } }"#, json!({})),
        (r#"{ systemRun(runId: "rb1") { runId } }"#, json!({})),
        (r#"{ systemAudit(runId: "rb1") { total } }"#, json!({})),
        (
            "query($id: String!) { auditEntry(id: $id) { computedHash } }",
            json!({"id": beta_entry}),
        ),
    ] {
        let (code, _) = app.query_error(Some(alpha), query, vars).await;
        assert_eq!(code, "NOT_FOUND", "{query}");
    }
    let d = app
        .query(alpha, r#"{ llmRun(runId: "r1") { provider } }"#, json!({}))
        .await;
    assert_eq!(d["llmRun"]["provider"], json!("openai"));

    let d = app
        .query(
            alpha,
            r#"{
            viewer { tenantId tenantName role complianceFrameworks }
            llmRuns(first: 100) { totalCount nodes { runId } metadata { tenantId } }
            systemRecords(first: 100) { totalCount nodes { tenantId } }
            auditEntries(first: 100) { totalCount nodes { entityId } }
            audit {
                identity { nodes { entityId } }
                access { nodes { entityId } }
                exports { totalCount nodes { runId } }
                integrity { entriesChecked }
            }
        }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        d["viewer"],
        json!({"tenantId": "alpha", "tenantName": "Alpha Corp", "role": "AUDITOR", "complianceFrameworks": ["SOC2"]})
    );
    let text = d.to_string();
    for beta_thing in ["rb1", "beta", "sb1", "gb1", "expb1"] {
        assert!(!text.contains(beta_thing), "alpha saw {beta_thing}: {text}");
    }
    assert_eq!(
        d["llmRuns"]["totalCount"],
        json!(fixture::alpha_runs().len())
    );
    assert_eq!(d["llmRuns"]["metadata"]["tenantId"], json!("alpha"));
    // Global records are visible to every tenant, beta's own never.
    for n in d["systemRecords"]["nodes"].as_array().unwrap() {
        assert!(n["tenantId"] == json!("alpha") || n["tenantId"].is_null());
    }
    let beta_entries = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'alpha'")
        .await;
    // The verification read every entry, then recorded itself as one more.
    assert_eq!(
        d["audit"]["integrity"]["entriesChecked"],
        json!(beta_entries[0] - 1)
    );
}
both!(a_key_never_sees_another_tenant);
