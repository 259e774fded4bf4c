//! Identity, authorization and access as they happen: the role matrix cell by cell, every
//! decision and every read recorded in the ledger (and the chain still verifying), the key
//! lifecycle over GraphQL, and the hardened endpoint refusing abuse cheaply with its code.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};
use runledger::auth;
use runledger::domain::Role;
use runledger::http::HttpSettings;

/// The public id of a key `rl_<id>_<secret>`.
fn key_id(key: &str) -> &str {
    &key[3..15]
}

/// One operation per permission, and what it needs.
const OPERATIONS: [(&str, &str); 4] = [
    ("read:evidence", "{ llmRuns(first: 1) { totalCount } }"),
    ("read:audit", "{ auditEntries(first: 1) { totalCount } }"),
    (
        "write:evidence",
        r#"mutation { ingestRuns(runs: [{runId: "m-RUN", provider: "openai", model: "gpt-4o",
            inputTokens: 1, outputTokens: 1, costCents: 0, executionStatus: SUCCEEDED,
            startedAt: "2026-05-01T10:00:00Z"}]) { storedCount } }"#,
    ),
    ("manage:keys", "{ apiKeys { keyId } }"),
];

/// The matrix as the README states it, written out independently of the code.
fn allowed(role: &str, permission: &str) -> bool {
    matches!(
        (role, permission),
        ("viewer", "read:evidence")
            | ("auditor", "read:evidence" | "read:audit")
            | ("ingest", "write:evidence")
            | ("admin", "read:evidence" | "read:audit" | "manage:keys")
    )
}

async fn role_matrix_cell_by_cell_and_every_decision_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let db = app.db();
    let mut role_keys = Vec::new();
    for (name, role) in [
        ("viewer", Role::Viewer),
        ("auditor", Role::Auditor),
        ("ingest", Role::Ingest),
        ("admin", Role::Admin),
    ] {
        let (key, _) = auth::create_key(db, "alpha", role, None, None)
            .await
            .unwrap();
        role_keys.push((name, key));
    }
    for (role, key) in &role_keys {
        for (permission, op) in OPERATIONS {
            let op = op.replace("RUN", role);
            let (status, body) = app.post(Some(key), &json!({"query": op})).await;
            if allowed(role, permission) {
                assert!(
                    body.get("errors").is_none(),
                    "{role} may use {permission}: {body}"
                );
            } else {
                assert_eq!(
                    body["errors"][0]["extensions"]["code"],
                    json!("FORBIDDEN"),
                    "{role} may not use {permission} (status {status}): {body}"
                );
            }
        }
    }
    // Every decision is in the ledger: the denied ones with their reason.
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ audit { authorization(first: 100) { nodes { decision entityId actorId actionReason afterState } } } }",
            json!({}),
        )
        .await;
    let nodes = d["audit"]["authorization"]["nodes"].as_array().unwrap();
    for (role, key) in &role_keys {
        for (permission, _) in OPERATIONS {
            let expected = if allowed(role, permission) {
                "ALLOW"
            } else {
                "DENY"
            };
            let actor = format!("key:{}", key_id(key));
            let found = nodes.iter().find(|n| {
                n["actorId"] == json!(actor)
                    && n["entityId"] == json!(permission)
                    && n["decision"] == json!(expected)
            });
            let found = found
                .unwrap_or_else(|| panic!("no {expected} of {permission} for {role} in {nodes:?}"));
            let role_name = role.to_uppercase();
            assert_eq!(found["afterState"]["role"], json!(role_name));
            if expected == "DENY" {
                assert_eq!(
                    found["actionReason"],
                    json!(format!("role {role_name} does not grant {permission}"))
                );
            }
        }
    }
    // Everything recorded is part of a chain that verifies.
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ audit { integrity(mode: FULL) { status hashChainValid anomaliesDetected } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["audit"]["integrity"]["hashChainValid"], json!(true));
    assert_eq!(d["audit"]["integrity"]["anomaliesDetected"], json!(0));
}
both!(role_matrix_cell_by_cell_and_every_decision_recorded);

/// The access entries of alpha's ledger, newest first.
async fn access_entries(app: &TestApp, auditor: &str) -> Vec<Value> {
    let d = app
        .query(
            auditor,
            "{ audit { access(first: 100) { nodes { eventType entityType entityId actorId actionReason afterState } } } }",
            json!({}),
        )
        .await;
    d["audit"]["access"]["nodes"].as_array().unwrap().clone()
}

async fn reads_are_recorded_with_caller_and_evidence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let viewer = &keys.alpha_viewer;
    let actor = json!(format!("key:{}", key_id(viewer)));
    // One run, with two of its views, under an operation name.
    let (_, body) = app
        .post(
            Some(viewer),
            &json!({"query": r#"query RunPage { llmRun(runId: "r1") { runId trace { steps { stepIndex } } governance { events { eventId } } } }"#,
                    "operationName": "RunPage"}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let entries = access_entries(&app, &keys.alpha_auditor).await;
    let run = entries
        .iter()
        .find(|e| e["entityType"] == "llm_run" && e["entityId"] == "r1" && e["actorId"] == actor)
        .unwrap_or_else(|| panic!("no access entry for r1 in {entries:?}"));
    assert_eq!(run["eventType"], json!("EVIDENCE_READ"));
    assert_eq!(run["actionReason"], json!("RunPage"));
    assert_eq!(run["afterState"]["topic"], json!("runs"));
    assert_eq!(
        run["afterState"]["views"],
        json!(["run", "trace", "governance"])
    );

    // A filtered list: its filters, rows and the ids it returned; nested views join it.
    let d = app
        .query(
            viewer,
            "{ llmRuns(first: 3, filter: {executionStatus: [FAILED]}) { nodes { runId envelope { checksum } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<Value> = d["llmRuns"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["runId"].clone())
        .collect();
    assert!(!ids.is_empty());
    let entries = access_entries(&app, &keys.alpha_auditor).await;
    let list = entries
        .iter()
        .find(|e| e["entityType"] == "llm_run_list" && e["actorId"] == actor)
        .unwrap_or_else(|| panic!("no list entry in {entries:?}"));
    assert_eq!(list["entityId"], json!("llmRuns"));
    assert_eq!(list["afterState"]["ids"], json!(ids));
    assert_eq!(list["afterState"]["rows"], json!(ids.len()));
    assert_eq!(
        list["afterState"]["filters"]["executionStatus"],
        json!(["FAILED"])
    );
    assert_eq!(list["afterState"]["views"], json!(["llmRuns", "envelope"]));
    // A refused read returns no evidence and records no access.
    let before = access_entries(&app, &keys.alpha_auditor).await.len();
    let (code, _) = app
        .query_error(
            Some(&keys.alpha_ingest),
            "{ llmRuns { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let after = access_entries(&app, &keys.alpha_auditor).await;
    // Only the auditor's own previous read was added.
    assert_eq!(after.len(), before + 1);
    assert!(
        after
            .iter()
            .all(|e| e["actorId"] != json!(format!("key:{}", key_id(&keys.alpha_ingest))))
    );
}
both!(reads_are_recorded_with_caller_and_evidence);

const IDENTITY: &str =
    "{ audit { identity(first: 100) { nodes { eventType entityId actorId actionReason } } } }";

async fn key_lifecycle_over_graphql(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let (admin, _) = auth::create_key(app.db(), "alpha", Role::Admin, None, None)
        .await
        .unwrap();
    let admin_actor = json!(format!("key:{}", key_id(&admin)));
    let d = app
        .query(
            &admin,
            r#"mutation { createApiKey(role: VIEWER, label: "dashboard") { key apiKey { keyId role label active } } }"#,
            json!({}),
        )
        .await;
    let created = &d["createApiKey"];
    let new_key = created["key"].as_str().unwrap().to_string();
    let new_id = key_id(&new_key).to_string();
    assert_eq!(
        created["apiKey"],
        json!({"keyId": new_id, "role": "VIEWER", "label": "dashboard", "active": true})
    );
    let d = app
        .query(&new_key, "{ viewer { role tenantId } }", json!({}))
        .await;
    assert_eq!(d["viewer"], json!({"role": "VIEWER", "tenantId": "alpha"}));

    // Rotation: the new key works, the old one is refused.
    let d = app
        .query(
            &admin,
            "mutation($id: String!) { rotateApiKey(keyId: $id) { key apiKey { keyId role label } } }",
            json!({"id": new_id}),
        )
        .await;
    let rotated = d["rotateApiKey"]["key"].as_str().unwrap().to_string();
    let rotated_id = key_id(&rotated).to_string();
    assert_eq!(d["rotateApiKey"]["apiKey"]["label"], json!("dashboard"));
    let (code, _) = app
        .query_error(Some(&new_key), "{ viewer { role } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
    app.query(&rotated, "{ viewer { role } }", json!({})).await;

    // Revocation.
    let d = app
        .query(
            &admin,
            "mutation($id: String!) { revokeApiKey(keyId: $id) { keyId active revokedAt } }",
            json!({"id": rotated_id}),
        )
        .await;
    assert_eq!(d["revokeApiKey"]["active"], json!(false));
    let (code, msg) = app
        .query_error(Some(&rotated), "{ viewer { role } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
    // The client learns that the key is refused, not why (the ledger records the reason).
    assert_eq!(msg, "invalid or revoked API key");
    // Revoking twice, or another tenant's key, is refused with a code.
    let (code, _) = app
        .query_error(
            Some(&admin),
            "mutation($id: String!) { revokeApiKey(keyId: $id) { keyId } }",
            json!({"id": rotated_id}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    let beta_key_id = key_id(&keys.beta_auditor).to_string();
    let (code, _) = app
        .query_error(
            Some(&admin),
            "mutation($id: String!) { revokeApiKey(keyId: $id) { keyId } }",
            json!({"id": beta_key_id}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    // Non-admins may not manage keys.
    let (code, _) = app
        .query_error(
            Some(&keys.alpha_auditor),
            "mutation { createApiKey(role: ADMIN) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");

    // A wrong secret for a known key id is a failed authentication in that tenant's ledger.
    let forged = format!("rl_{}_{}", key_id(&keys.alpha_viewer), "0".repeat(64));
    let (code, _) = app
        .query_error(Some(&forged), "{ viewer { role } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");

    let d = app.query(&keys.alpha_auditor, IDENTITY, json!({})).await;
    let nodes = d["audit"]["identity"]["nodes"].as_array().unwrap();
    let find = |event: &str, id: &str| {
        nodes
            .iter()
            .find(|n| n["eventType"] == json!(event) && n["entityId"] == json!(id))
            .unwrap_or_else(|| panic!("no {event} of {id} in {nodes:?}"))
            .clone()
    };
    assert_eq!(find("KEY_CREATED", &new_id)["actorId"], admin_actor);
    assert_eq!(find("KEY_ROTATED", &new_id)["actorId"], admin_actor);
    assert_eq!(find("KEY_REVOKED", &rotated_id)["actorId"], admin_actor);
    // The revoked key's later attempts were recorded too.
    assert_eq!(
        find("AUTHENTICATION_FAILED", &rotated_id)["actionReason"],
        json!("revoked key")
    );
    assert_eq!(
        find("AUTHENTICATION_FAILED", key_id(&keys.alpha_viewer))["actionReason"],
        json!("wrong secret")
    );
    // An unknown key id is recorded in the platform ledger, not in a tenant's.
    let unknown = format!("rl_{}_{}", "f".repeat(12), "0".repeat(64));
    app.query_error(Some(&unknown), "{ viewer { role } }", json!({}))
        .await;
    let platform = app
        .store
        .query_strings(
            "SELECT action_reason FROM audit_ledger WHERE tenant_id = '_platform' AND event_type = 'AUTHENTICATION_FAILED'",
        )
        .await;
    assert_eq!(platform, vec!["unknown key id"]);
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ audit { integrity(mode: FULL) { hashChainValid anomaliesDetected } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["audit"]["integrity"],
        json!({"hashChainValid": true, "anomaliesDetected": 0})
    );
}
both!(key_lifecycle_over_graphql);

/// Whether `key` is refused within `limit`, asking again until it is (a revocation made by
/// another process reaches a PostgreSQL server as a notification, a moment after its commit).
async fn refused_within(app: &TestApp, key: &str, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let (_, body) = app
            .post(Some(key), &json!({"query": "{ viewer { role } }"}))
            .await;
        if body["errors"][0]["extensions"]["code"] == json!("UNAUTHENTICATED") {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A key revoked outside this server (by another instance, or by plain SQL) stops
/// authenticating here too. On PostgreSQL the server keeps keys in memory, so a known key costs
/// no statement; on SQLite it is read on every request.
async fn a_key_revoked_elsewhere_is_refused(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let auditor = app.seeded_auditor("t", 1, 1, 0, 1).await;
    app.query(&auditor, "{ viewer { role } }", json!({})).await;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let (key, _) = auth::create_key(app.db(), "t", Role::Viewer, None, None)
            .await
            .unwrap();
        viewers.push(key);
    }
    for key in &viewers {
        let d = app.query(key, "{ viewer { role } }", json!({})).await;
        assert_eq!(d["viewer"]["role"], json!("VIEWER"));
    }
    let key_reads = statements_of_a_known_key(&app, &viewers[0]).await;
    let expected = match backend {
        Backend::Postgres => 0,
        Backend::Sqlite => 1,
    };
    assert_eq!(
        key_reads, expected,
        "statements to authenticate a known key"
    );

    // Another instance (its own connection pool) revokes the first key.
    let other = runledger::db::Db::connect(&app.store.url, 2).await.unwrap();
    auth::revoke_key(&other, "t", key_id(&viewers[0]), None)
        .await
        .unwrap();
    assert!(refused_within(&app, &viewers[0], Duration::from_secs(10)).await);
    // An operator revokes the second by hand.
    app.store
        .exec(&format!(
            "UPDATE api_keys SET revoked_at = created_at WHERE id = '{}'",
            key_id(&viewers[1])
        ))
        .await
        .unwrap();
    assert!(refused_within(&app, &viewers[1], Duration::from_secs(10)).await);
    // Other keys are still served.
    let d = app.query(&auditor, "{ viewer { role } }", json!({})).await;
    assert_eq!(d["viewer"]["role"], json!("AUDITOR"));
}
both!(a_key_revoked_elsewhere_is_refused);

/// Statements one request with a known key costs, beyond the first (which may read the key).
async fn statements_of_a_known_key(app: &TestApp, key: &str) -> u64 {
    app.query(key, "{ viewer { role } }", json!({})).await;
    let before = app.statement_count();
    app.query(key, "{ viewer { role } }", json!({})).await;
    app.statement_count() - before
}

/// On PostgreSQL, a server whose key-change subscription is cut reads keys on every request
/// until it has subscribed again, so a revocation made meanwhile, whose notification nobody
/// received, is not missed; then it keeps keys in memory again.
async fn a_lost_key_subscription_is_noticed(backend: Backend) {
    if backend != Backend::Postgres {
        return;
    }
    let app = TestApp::spawn_unrecorded(backend).await;
    let auditor = app.seeded_auditor("t", 1, 1, 0, 1).await;
    let (viewer, _) = auth::create_key(app.db(), "t", Role::Viewer, None, None)
        .await
        .unwrap();
    assert_eq!(statements_of_a_known_key(&app, &viewer).await, 0);
    assert_eq!(statements_of_a_known_key(&app, &auditor).await, 0);

    // The listening connection is cut, then the key revoked by hand at once.
    let listening = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() \
         AND (query LIKE 'LISTEN%runledger_api_keys%' OR query LIKE '%pg_notify%')";
    let pids = app.store.query_column::<i32>(listening).await;
    assert_eq!(pids.len(), 1, "one listening connection");
    app.store
        .exec(&format!("SELECT pg_terminate_backend({})", pids[0]))
        .await
        .unwrap();
    app.store
        .exec(&format!(
            "UPDATE api_keys SET revoked_at = created_at WHERE id = '{}'",
            key_id(&viewer)
        ))
        .await
        .unwrap();
    assert!(refused_within(&app, &viewer, Duration::from_millis(900)).await);

    // Subscribed again (a second after the loss), keys are kept in memory again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while statements_of_a_known_key(&app, &auditor).await != 0 {
        assert!(std::time::Instant::now() < deadline, "subscribed again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.store.query_column::<i32>(listening).await.len(), 1);
}
both!(a_lost_key_subscription_is_noticed);

/// Each kind of abuse is refused with its code, and the server keeps serving.
async fn abuse_is_refused_cheaply(backend: Backend) {
    let settings = HttpSettings {
        max_body_bytes: 16 * 1024,
        max_batch: 5,
        max_aliases: 20,
        rate_limit: Some((0.5, 40)),
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let keys = fixture::load(&app).await;
    let k = Some(keys.alpha_viewer.as_str());
    let code_of = |body: &Value| body["errors"][0]["extensions"]["code"].clone();

    // A huge page size.
    let (_, body) = app
        .post(
            k,
            &json!({"query": "{ llmRuns(first: 1000000) { totalCount } }"}),
        )
        .await;
    assert_eq!(code_of(&body), json!("BAD_USER_INPUT"), "{body}");
    // Alias fan-out.
    let fan: String = (0..25)
        .map(|i| format!("a{i}: viewer {{ role }} "))
        .collect();
    let (_, body) = app.post(k, &json!({"query": format!("{{ {fan} }}")})).await;
    assert_eq!(code_of(&body), json!("QUERY_TOO_COMPLEX"), "{body}");
    assert!(body.get("data").is_none(), "{body}");
    // A batch of many operations.
    let batch: Vec<Value> = (0..6)
        .map(|_| json!({"query": "{ viewer { role } }"}))
        .collect();
    let (status, body) = app.post(k, &Value::Array(batch)).await;
    assert_eq!(status, 400);
    assert_eq!(code_of(&body), json!("BAD_USER_INPUT"), "{body}");
    // An oversized body.
    let big = json!({"query": format!("{{ viewer {{ role }} }} #{}", "x".repeat(32 * 1024))});
    let (status, _) = app.post(k, &big).await;
    assert_eq!(status, 413);
    // Depth and complexity.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {}  }} }} }} }}",
        "{ ofType ".repeat(20) + "{ name }" + &" }".repeat(20)
    );
    let (_, body) = app.post(k, &json!({"query": deep})).await;
    assert_eq!(code_of(&body), json!("QUERY_TOO_COMPLEX"), "{body}");
    // Still serving.
    app.query(&keys.alpha_viewer, "{ viewer { role } }", json!({}))
        .await;
    // Rate limit: the burst is spent, then RATE_LIMITED with a retry hint; other keys go on.
    let mut limited = None;
    for _ in 0..60 {
        let resp = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&keys.alpha_viewer)
            .json(&json!({"query": "{ viewer { role } }"}))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("the key is limited within 60 requests");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code_of(&body), json!("RATE_LIMITED"));
    assert_eq!(
        body["errors"][0]["extensions"]["retryAfterSeconds"],
        json!(retry)
    );
    app.query(&keys.alpha_auditor, "{ viewer { role } }", json!({}))
        .await;
}
both!(abuse_is_refused_cheaply);

/// A request past the time limit is cancelled with the code TIMEOUT and leaves nothing behind;
/// the server goes on answering. The slow request is a full verification of a ledger of
/// 30,000 entries against a 100 ms limit.
async fn slow_requests_time_out(backend: Backend) {
    use runledger::ledger::vocabulary::{self, EntityType, EvidenceRead};
    use runledger::ledger::{NewEntry, append};
    let settings = HttpSettings {
        request_timeout: Duration::from_millis(100),
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let keys = fixture::load(&app).await;
    let tx = app.db().begin_write().await.unwrap();
    let entries: Vec<NewEntry> = (0..30_000)
        .map(|i| {
            let read = EvidenceRead {
                key_id: "bulk",
                operation: "(anonymous)",
                topic: "runs",
                entity_type: EntityType::LlmRun,
                entity_id: format!("run-{i}"),
                views: vec!["run"],
                filters: None,
                rows: 1,
                ids: vec![format!("run-{i}")],
            };
            vocabulary::evidence_read(read, chrono::Utc::now())
        })
        .collect();
    append(&tx.txn, "alpha", entries).await.unwrap();
    tx.commit().await.unwrap();
    let entries_before = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger")
        .await;
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&keys.alpha_auditor)
        .json(&json!({"query": "{ audit { integrity(mode: FULL) { status } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], json!("TIMEOUT"));
    // Others are still served.
    app.query(&keys.alpha_viewer, "{ viewer { role } }", json!({}))
        .await;
    // The cancelled request recorded nothing: no verification, no access.
    let verified = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE event_type = 'LEDGER_VERIFIED'")
        .await;
    assert_eq!(verified, vec![0]);
    assert!(
        app.store
            .query_i64("SELECT COUNT(*) FROM audit_ledger")
            .await[0]
            >= entries_before[0]
    );
}
both!(slow_requests_time_out);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_configured_origins_only() {
    let settings = HttpSettings {
        cors_allowed_origins: vec!["https://dash.example".into()],
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, settings).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://dash.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
