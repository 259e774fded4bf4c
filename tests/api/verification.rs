//! What verification covers beyond the chain (issue 14): the list of ledgers comes from the
//! ledgers themselves, so deleting a tenant's row (and keys) cannot make its ledger vanish from
//! `runledger verify` (`MISSING_TENANT`); an unknown `--tenant` is an error; export records are
//! checked against their chained EXPORT entries (`EXPORT_MISMATCH`); `tenants` and `api_keys`
//! refuse changes in the database while revocation and rotation still work; and the server's
//! background full verification shows in `audit { integrity { latestFullVerification } }`.

use std::process::Command;
use std::time::{Duration, Instant};

use runledger::auth;
use runledger::domain::Role;
use runledger::ingest::{self, EvidenceBatch};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::both;
use crate::fixture::{at, export_entries, insert_export_rows};
use crate::helpers::{Backend, TestApp};
use entity::log_exports;

const FULL: &str =
    "{ audit { integrity(mode: FULL) { status anomalies { kind seq record detail } } } }";

/// A tenant with an auditor, an ingest and an admin key, one run ingested over GraphQL, and a
/// checkpoint over all of it.
struct Tenant {
    auditor: String,
    admin: String,
}

async fn tenant(app: &TestApp, id: &str) -> Tenant {
    auth::ensure_tenant(app.db(), id, id, &[]).await.unwrap();
    let key = |role| async move {
        auth::create_key(app.db(), id, role, None, None)
            .await
            .unwrap()
            .0
    };
    let t = Tenant {
        auditor: key(Role::Auditor).await,
        admin: key(Role::Admin).await,
    };
    let ingest_key = key(Role::Ingest).await;
    let run = json!({
        "runId": format!("{id}-run"), "provider": "openai", "model": "gpt-4o",
        "inputTokens": 10, "outputTokens": 5, "costCents": 1, "executionStatus": "SUCCEEDED",
        "startedAt": "2026-05-01T10:00:00Z", "completedAt": "2026-05-01T10:00:02Z",
        "traceId": format!("{id}-trace")
    });
    app.query(
        &ingest_key,
        "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }",
        json!({"runs": [run]}),
    )
    .await;
    app.checkpoint(id).await;
    t
}

/// `runledger verify --public-key <the test server's key> ARGS`: exit code, report, stderr.
fn verify(app: &TestApp, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runledger"))
        .args(["verify", "--database-url", &app.store.url, "--public-key"])
        .arg(app.keys.signer.verifier_key())
        .args(args)
        .output()
        .expect("run runledger verify");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The report of one ledger in a `runledger verify` output.
fn ledger<'a>(report: &'a Value, tenant: &str) -> &'a Value {
    report["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tenantId"] == json!(tenant))
        .unwrap_or_else(|| panic!("no report for ledger `{tenant}` in {report}"))
}

fn kinds(anomalies: &Value) -> Vec<String> {
    anomalies
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

/// What an attacker with database rights does first: switch the refusals of `tables` off
/// (PostgreSQL: every trigger, the foreign keys' included).
async fn drop_protection(app: &TestApp, backend: Backend, tables: &[&str]) {
    for t in tables {
        match backend {
            Backend::Sqlite => {
                for trigger in [
                    format!("{t}_refuse_update"),
                    format!("{t}_refuse_delete"),
                    format!("{t}_forward_only"),
                ] {
                    app.store
                        .exec(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                        .await
                        .unwrap();
                }
            }
            Backend::Postgres => {
                app.store
                    .exec(&format!("ALTER TABLE {t} DISABLE TRIGGER ALL"))
                    .await
                    .unwrap();
            }
        }
    }
}

/// Runs SQL with foreign keys off (SQLite checks them per connection: on a connection of its
/// own; on PostgreSQL `drop_protection` already disabled them).
async fn exec_unchecked(app: &TestApp, backend: Backend, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let mut opts = ConnectOptions::new(app.store.url.clone());
            opts.max_connections(1).min_connections(1);
            let conn = Database::connect(opts).await.unwrap();
            for s in ["PRAGMA foreign_keys = OFF", sql] {
                conn.execute_raw(Statement::from_string(conn.get_database_backend(), s))
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            app.store.exec(sql).await.unwrap();
        }
    }
}

/// A tenant row deleted behind the ledger's back (its keys kept, so the tenant can still
/// authenticate): `runledger verify` still verifies the ledger and exits 1 naming
/// MISSING_TENANT, and so does FULL integrity; the other tenant's ledger is untouched.
async fn a_deleted_tenant_row_is_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = tenant(&app, "acme").await;
    tenant(&app, "other").await;
    let (code, report, _) = verify(&app, &[]);
    assert_ne!(code, 1, "a clean database: {report}");
    assert_eq!(ledger(&report, "acme")["anomalies"], json!([]));

    drop_protection(&app, backend, &["tenants"]).await;
    exec_unchecked(&app, backend, "DELETE FROM tenants WHERE id = 'acme'").await;
    assert_eq!(
        app.store
            .query_i64("SELECT COUNT(*) FROM tenants WHERE id = 'acme'")
            .await,
        vec![0]
    );

    let (code, report, _) = verify(&app, &[]);
    assert_eq!(code, 1, "{report}");
    let acme_report = ledger(&report, "acme");
    assert_eq!(acme_report["status"], json!("BROKEN"));
    assert_eq!(kinds(&acme_report["anomalies"]), vec!["MISSING_TENANT"]);
    assert_eq!(ledger(&report, "other")["anomalies"], json!([]));
    let (code, report, _) = verify(&app, &["--tenant", "acme"]);
    assert_eq!(code, 1, "{report}");

    let i = &app.query(&acme.auditor, FULL, json!({})).await["audit"]["integrity"];
    assert_eq!(i["status"], json!("BROKEN"), "{i}");
    assert_eq!(kinds(&i["anomalies"]), vec!["MISSING_TENANT"], "{i}");
}
both!(a_deleted_tenant_row_is_reported);

/// The attack of issue 14: edit a tenant's run, delete its keys and its tenant row. Its ledger
/// is still verified: MISSING_TENANT and the edited record's ANCHOR_MISMATCH, exit 1.
async fn a_deleted_tenant_with_edited_evidence_is_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tenant(&app, "acme").await;
    tenant(&app, "other").await;
    drop_protection(&app, backend, &["llm_runs", "api_keys", "tenants"]).await;
    app.store
        .exec("UPDATE llm_runs SET model = 'gpt-3.5' WHERE tenant_id = 'acme'")
        .await
        .unwrap();
    app.store
        .exec("DELETE FROM api_keys WHERE tenant_id = 'acme'")
        .await
        .unwrap();
    app.store
        .exec("DELETE FROM tenants WHERE id = 'acme'")
        .await
        .unwrap();

    let (code, report, _) = verify(&app, &[]);
    assert_eq!(code, 1, "{report}");
    let acme_report = ledger(&report, "acme");
    let found = kinds(&acme_report["anomalies"]);
    assert!(
        found.contains(&"MISSING_TENANT".to_string()),
        "{acme_report}"
    );
    assert!(
        found.contains(&"ANCHOR_MISMATCH".to_string()),
        "{acme_report}"
    );
    let edited = acme_report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == json!("ANCHOR_MISMATCH"))
        .unwrap();
    assert_eq!(edited["record"], json!("llm_runs:acme-run"));
    assert_eq!(ledger(&report, "other")["anomalies"], json!([]));
}
both!(a_deleted_tenant_with_edited_evidence_is_reported);

/// `verify --tenant` with a name nothing is known of exits 2 and names it; a known tenant
/// verifies.
async fn verify_of_an_unknown_tenant_is_an_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tenant(&app, "acme").await;
    let (code, report, stderr) = verify(&app, &["--tenant", "acme-typo"]);
    assert_eq!(code, 2, "{report} {stderr}");
    assert!(stderr.contains("unknown tenant `acme-typo`"), "{stderr}");
    assert_eq!(report, Value::Null, "no report for an unknown tenant");
    let (code, report, _) = verify(&app, &["--tenant", "acme"]);
    assert_eq!(code, 0, "{report}");
}
both!(verify_of_an_unknown_tenant_is_an_error);

/// An export record with its chained entries verifies; its stored
/// checksum rewritten is EXPORT_MISMATCH at the seq of the EXPORT_COMPLETED entry that holds
/// the original, and an export row inserted without entries is one too.
async fn an_edited_export_is_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = tenant(&app, "acme").await;
    let export = log_exports::Model {
        tenant_id: "acme".into(),
        id: "exp-1".into(),
        run_id: Some("acme-run".into()),
        scope: "run:acme-run".into(),
        format: "JSON".into(),
        requested_by: "alice".into(),
        status: "COMPLETED".into(),
        checksum: Some("ab".repeat(32)),
        requested_at: at(10),
        delivered_at: Some(at(12)),
    };
    let batch = EvidenceBatch {
        ledger_entries: export_entries(&export),
        ..Default::default()
    };
    ingest::store(app.db(), "acme", batch).await.unwrap();
    insert_export_rows(app.db(), vec![export]).await;
    let (code, report, _) = verify(&app, &["--tenant", "acme"]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(ledger(&report, "acme")["anomalies"], json!([]));
    assert_eq!(ledger(&report, "acme")["exportsChecked"], json!(1));
    let completed_seq = app
        .store
        .query_i64(
            "SELECT seq FROM audit_ledger WHERE tenant_id = 'acme' \
             AND event_type = 'EXPORT_COMPLETED' AND entity_id = 'exp-1'",
        )
        .await[0];

    drop_protection(&app, backend, &["log_exports"]).await;
    app.store
        .exec(&format!(
            "UPDATE log_exports SET checksum = '{}' WHERE id = 'exp-1'",
            "cd".repeat(32)
        ))
        .await
        .unwrap();
    let (code, report, _) = verify(&app, &["--tenant", "acme"]);
    assert_eq!(code, 1, "{report}");
    let anomalies = &ledger(&report, "acme")["anomalies"];
    assert_eq!(kinds(anomalies), vec!["EXPORT_MISMATCH"], "{anomalies}");
    assert_eq!(anomalies[0]["seq"], json!(completed_seq));
    assert_eq!(anomalies[0]["record"], json!("log_exports:exp-1"));
    let detail = anomalies[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&"ab".repeat(32)) && detail.contains(&"cd".repeat(32)),
        "{detail}"
    );

    let i = &app.query(&acme.auditor, FULL, json!({})).await["audit"]["integrity"];
    assert_eq!(i["status"], json!("BROKEN"));
    assert_eq!(kinds(&i["anomalies"]), vec!["EXPORT_MISMATCH"], "{i}");
    assert_eq!(i["anomalies"][0]["seq"], json!(completed_seq));

    // A row no entry records (INSERT needs no trigger switched off).
    app.store
        .exec(
            "INSERT INTO log_exports (tenant_id, id, run_id, scope, format, requested_by, status, \
             checksum, requested_at, delivered_at) VALUES ('acme', 'exp-forged', NULL, 'tenant', \
             'JSON', 'mallory', 'PENDING', NULL, '2026-03-01T12:00:00Z', NULL)",
        )
        .await
        .unwrap();
    let (code, report, _) = verify(&app, &["--tenant", "acme"]);
    assert_eq!(code, 1, "{report}");
    let forged: Vec<&Value> = ledger(&report, "acme")["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["record"] == json!("log_exports:exp-forged"))
        .collect();
    assert_eq!(forged.len(), 1, "{report}");
    assert_eq!(forged[0]["kind"], json!("EXPORT_MISMATCH"));
    assert_eq!(forged[0]["seq"], Value::Null);
}
both!(an_edited_export_is_reported);

/// `tenants` refuses UPDATE, DELETE (and TRUNCATE); `api_keys` refuses DELETE, TRUNCATE and
/// every UPDATE but a revocation; revoking and rotating over GraphQL still work.
async fn tenants_and_keys_refuse_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = tenant(&app, "acme").await;
    // A tenant without keys, so that no foreign key stands in for the refusal.
    auth::ensure_tenant(app.db(), "other", "other", &[])
        .await
        .unwrap();
    let refused = [
        "UPDATE tenants SET name = 'renamed' WHERE id = 'acme'",
        "DELETE FROM tenants WHERE id = 'other'",
        "DELETE FROM api_keys",
        "UPDATE api_keys SET role = 'admin'",
        "UPDATE api_keys SET secret_hash = 'x'",
        "UPDATE api_keys SET label = 'renamed'",
        "UPDATE api_keys SET tenant_id = 'other'",
        // A revocation that changes something else too.
        "UPDATE api_keys SET revoked_at = created_at, role = 'admin'",
    ];
    for sql in refused {
        assert!(app.store.exec(sql).await.is_err(), "{sql} must be refused");
    }
    if backend == Backend::Postgres {
        for sql in ["TRUNCATE api_keys", "TRUNCATE tenants CASCADE"] {
            assert!(app.store.exec(sql).await.is_err(), "{sql} must be refused");
        }
    }
    // Revocation and rotation, the lifecycle's forward steps, still work.
    let (viewer, _) = auth::create_key(app.db(), "acme", Role::Viewer, None, None)
        .await
        .unwrap();
    let (dashboard, _) =
        auth::create_key(app.db(), "acme", Role::Viewer, Some("dash".into()), None)
            .await
            .unwrap();
    let d = app
        .query(
            &acme.admin,
            "mutation($id: String!) { revokeApiKey(keyId: $id) { active } }",
            json!({"id": &viewer[3..15]}),
        )
        .await;
    assert_eq!(d["revokeApiKey"]["active"], json!(false));
    let d = app
        .query(
            &acme.admin,
            "mutation($id: String!) { rotateApiKey(keyId: $id) { key apiKey { label } } }",
            json!({"id": &dashboard[3..15]}),
        )
        .await;
    assert_eq!(d["rotateApiKey"]["apiKey"]["label"], json!("dash"));
    let rotated = d["rotateApiKey"]["key"].as_str().unwrap().to_string();
    let d = app.query(&rotated, "{ viewer { role } }", json!({})).await;
    assert_eq!(d["viewer"]["role"], json!("VIEWER"));
    for old in [&viewer, &dashboard] {
        let (status, _) = app
            .post(Some(old), &json!({"query": "{ viewer { role } }"}))
            .await;
        assert_eq!(status, 401);
    }
    // A revoked key is never revived nor revoked again; an operator may revoke one by hand.
    let revived = format!(
        "UPDATE api_keys SET revoked_at = NULL WHERE id = '{}'",
        &viewer[3..15]
    );
    assert!(app.store.exec(&revived).await.is_err());
    let again = format!(
        "UPDATE api_keys SET revoked_at = created_at WHERE id = '{}'",
        &viewer[3..15]
    );
    assert!(app.store.exec(&again).await.is_err());
    let by_hand = format!(
        "UPDATE api_keys SET revoked_at = created_at WHERE id = '{}'",
        &rotated[3..15]
    );
    assert_eq!(app.store.exec(&by_hand).await.unwrap(), 1);
    assert_eq!(
        app.store
            .query_i64("SELECT COUNT(*) FROM tenants WHERE id IN ('acme', 'other')")
            .await,
        vec![2]
    );
}
both!(tenants_and_keys_refuse_changes);

const VIEW: &str = "{ audit { integrity { status mode latestFullVerification { verifiedAt status \
    entriesChecked anomaliesDetected anomalies { kind seq record } seq recordedBy \
    recordedAs { eventType afterState } } } } }";

/// Polls `audit { integrity }` until `done` holds of it (at most 20 s).
async fn poll(app: &TestApp, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = app.query(key, VIEW, json!({})).await["audit"]["integrity"].clone();
        if done(&i) {
            return i;
        }
        assert!(Instant::now() < deadline, "not seen in time: {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's background full verification, recorded in the ledger, shows next to the
/// incremental view: after an edit under a checkpoint, the incremental view (which trusts the
/// checkpoint) still says verified, the newest full verification says BROKEN and names it.
async fn background_full_verification_shows_in_integrity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = tenant(&app, "acme").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let verifier = tokio::spawn(
        runledger::ledger::background::run_full_verification_periodically(
            app.db().clone(),
            app.keys.clone(),
            Duration::from_millis(300),
            async move {
                let _ = stopped.await;
            },
        ),
    );

    let i = poll(&app, &acme.auditor, |i| {
        !i["latestFullVerification"].is_null()
    })
    .await;
    let full = &i["latestFullVerification"];
    assert_eq!(full["recordedBy"], json!("runledger-full-verifier"));
    assert!(
        ["VERIFIED", "VERIFIED_UNANCHORED_TAIL"].contains(&full["status"].as_str().unwrap()),
        "{full}"
    );
    assert_eq!(full["anomaliesDetected"], json!(0));
    assert_eq!(full["recordedAs"]["eventType"], json!("LEDGER_VERIFIED"));
    assert_eq!(full["recordedAs"]["afterState"]["mode"], json!("FULL"));
    // The entry it names is the background verifier's, and it walked the entries before it.
    let seq = full["seq"].as_i64().unwrap();
    let recorded = app
        .store
        .query_i64(&format!(
            "SELECT seq FROM audit_ledger WHERE tenant_id = 'acme' AND seq = {seq} \
             AND event_type = 'LEDGER_VERIFIED' AND actor_id = 'runledger-full-verifier'"
        ))
        .await;
    assert_eq!(recorded, vec![seq]);
    let checked = full["entriesChecked"].as_i64().unwrap();
    assert!(checked >= 1 && checked < seq, "{full}");

    // An edit under the checkpoint.
    app.checkpoint("acme").await;
    drop_protection(&app, backend, &["llm_runs"]).await;
    app.store
        .exec("UPDATE llm_runs SET cost_cents = 0 WHERE tenant_id = 'acme'")
        .await
        .unwrap();
    let i = poll(&app, &acme.auditor, |i| {
        i["latestFullVerification"]["status"] == json!("BROKEN")
    })
    .await;
    assert_eq!(i["mode"], json!("INCREMENTAL"));
    assert_ne!(i["status"], json!("BROKEN"), "{i}");
    let full = &i["latestFullVerification"];
    assert_eq!(full["anomaliesDetected"], json!(1), "{full}");
    assert_eq!(
        full["anomalies"],
        json!([{"kind": "ANCHOR_MISMATCH", "seq": anchor_seq(&app).await, "record": "llm_runs:acme-run"}])
    );
    assert!(full["seq"].as_i64().unwrap() > seq);

    let _ = stop.send(());
    verifier.await.unwrap();
}
both!(background_full_verification_shows_in_integrity);

/// The seq of acme's one anchor entry.
async fn anchor_seq(app: &TestApp) -> i64 {
    app.store
        .query_i64("SELECT seq FROM audit_ledger WHERE tenant_id = 'acme' AND category = 'ANCHOR'")
        .await[0]
}

/// An entry renumbered far past the head (a gap longer than one read range) is still read,
/// once, and reported: the reader skips the empty ranges instead of losing what follows them.
async fn an_entry_moved_far_away_is_still_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tenant(&app, "acme").await;
    let count = app
        .store
        .query_i64("SELECT COUNT(*) FROM audit_ledger WHERE tenant_id = 'acme'")
        .await[0];
    drop_protection(&app, backend, &["audit_ledger"]).await;
    app.store
        .exec(&format!(
            "UPDATE audit_ledger SET seq = 1000000 WHERE tenant_id = 'acme' AND seq = {}",
            count - 1
        ))
        .await
        .unwrap();
    let (code, report, _) = verify(&app, &["--tenant", "acme"]);
    assert_eq!(code, 1, "{report}");
    let acme = ledger(&report, "acme");
    assert_eq!(acme["entriesChecked"], json!(count), "{acme}");
    assert_eq!(acme["head"]["seq"], json!(1000000), "{acme}");
    let found = kinds(&acme["anomalies"]);
    assert!(found.contains(&"SEQ_GAP".to_string()), "{acme}");
}
both!(an_entry_moved_far_away_is_still_read);
