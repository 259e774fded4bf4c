//! The ledger's vocabulary as stored: a database seeded the way `runledger seed` and `serve
//! --demo` seed one, then read by a client, holds only (category, event type, entity type)
//! triples the server itself writes. The expected set is written out here, from the server's
//! documented behaviour (docs/ledger.md, "Vocabulary"), not taken from the code.

use chrono::Utc;
use runledger::domain::{ActorType, LedgerCategory};
use runledger::ledger::{self, NewEntry};
use runledger::seed::{self, SeedOptions};
use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestApp};

/// Every triple a seeded and used database may hold, and who writes it.
const WRITTEN_BY_THE_SERVER: &[(&str, &str, &str)] = &[
    // Tenants and keys (`tenants create`, `keys …`, the key mutations), refused keys.
    ("IDENTITY", "TENANT_CREATED", "tenant"),
    ("IDENTITY", "KEY_CREATED", "api_key"),
    ("IDENTITY", "KEY_ROTATED", "api_key"),
    ("IDENTITY", "KEY_REVOKED", "api_key"),
    ("IDENTITY", "AUTHENTICATION_FAILED", "api_key"),
    ("IDENTITY", "SIGNING_KEY_ROTATED", "signing_key"),
    ("IDENTITY", "TENANT_SETTINGS_CHANGED", "tenant"),
    // A request's permission checks.
    ("AUTHORIZATION", "PERMISSION_GRANTED", "permission"),
    ("AUTHORIZATION", "PERMISSION_DENIED", "permission"),
    // The evidence a request returned, by what was read.
    ("ACCESS", "EVIDENCE_READ", "llm_run"),
    ("ACCESS", "EVIDENCE_READ", "llm_run_list"),
    ("ACCESS", "EVIDENCE_READ", "llm_session"),
    ("ACCESS", "EVIDENCE_READ", "open_trace_list"),
    ("ACCESS", "EVIDENCE_READ", "trace_step"),
    ("ACCESS", "EVIDENCE_READ", "governance_event"),
    ("ACCESS", "EVIDENCE_READ", "system_record"),
    ("ACCESS", "EVIDENCE_READ", "global_system_record"),
    ("ACCESS", "EVIDENCE_READ", "system_record_list"),
    ("ACCESS", "EVIDENCE_READ", "audit_entry"),
    ("ACCESS", "EVIDENCE_READ", "audit_entry_list"),
    ("ACCESS", "EVIDENCE_READ", "audit_ledger"),
    ("ACCESS", "EVIDENCE_READ", "export"),
    ("ACCESS", "EVIDENCE_READ", "export_list"),
    ("ACCESS", "EVIDENCE_READ", "llm_run_stats"),
    ("ACCESS", "EVIDENCE_READ", "system_record_stats"),
    ("ACCESS", "EVIDENCE_READ", "audit_stats"),
    // Compliance exports.
    ("EXPORT", "EXPORT_REQUESTED", "log_export"),
    ("EXPORT", "EXPORT_COMPLETED", "log_export"),
    ("EXPORT", "EXPORT_FAILED", "log_export"),
    // Verifications and anchors.
    ("INTEGRITY", "LEDGER_VERIFIED", "audit_ledger"),
    ("ANCHOR", "EVIDENCE_BATCH_ANCHORED", "evidence_batch"),
];

/// What producers report through `ingestAuditEvents` (their own words, in GOVERNANCE only):
/// the seeder reports the policy changes a producer would.
const SUBMITTED_BY_PRODUCERS: &[(&str, &str, &str)] =
    &[("GOVERNANCE", "POLICY_RULE_CHANGED", "policy")];

/// The distinct triples of every ledger, as `category event_type entity_type`.
async fn stored_triples(app: &TestApp) -> Vec<String> {
    app.store
        .query_strings(
            "SELECT DISTINCT category || ' ' || event_type || ' ' || entity_type \
             FROM audit_ledger ORDER BY 1",
        )
        .await
}

/// The stored triples that neither the server nor a producer writes.
fn unknown(stored: &[String]) -> Vec<String> {
    let known: Vec<String> = WRITTEN_BY_THE_SERVER
        .iter()
        .chain(SUBMITTED_BY_PRODUCERS)
        .map(|(c, e, t)| format!("{c} {e} {t}"))
        .collect();
    stored
        .iter()
        .filter(|t| !known.contains(t))
        .cloned()
        .collect()
}

async fn seeded_ledgers_hold_only_what_the_server_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // `runledger seed`: several tenants (global records in the platform ledger) …
    let opts = SeedOptions {
        tenants: 2,
        runs: 120,
        steps_per_run: 4,
        telemetry_percent: 10,
        seed: 5,
    };
    let tenants = seed::seed(app.db(), &opts, app.seed_exports())
        .await
        .unwrap();
    // … and `serve --demo`: one named tenant with the default mix.
    let demo = SeedOptions {
        runs: 60,
        ..SeedOptions::default()
    };
    seed::seed_tenant(
        app.db(),
        "demo",
        "Demo Agents Inc.",
        &demo,
        app.seed_exports(),
    )
    .await
    .unwrap();

    let seeded = stored_triples(&app).await;
    assert_eq!(unknown(&seeded), Vec::<String>::new(), "seeded: {seeded:?}");
    // Every kind of entry the audit views show is there to be shown.
    for category in [
        "IDENTITY",
        "AUTHORIZATION",
        "ACCESS",
        "GOVERNANCE",
        "EXPORT",
        "ANCHOR",
    ] {
        assert!(
            seeded
                .iter()
                .any(|t| t.starts_with(&format!("{category} "))),
            "{category} missing from {seeded:?}"
        );
    }
    for event in [
        "PERMISSION_DENIED",
        "AUTHENTICATION_FAILED",
        "KEY_ROTATED",
        "EVIDENCE_READ",
    ] {
        assert!(
            seeded.iter().any(|t| t.contains(&format!(" {event} "))),
            "{event} missing from {seeded:?}"
        );
    }

    // Then used: reads, a verification, a refused key; still nothing else.
    let role = runledger::domain::Role::Auditor;
    let (auditor, _) = runledger::auth::create_key(app.db(), &tenants[0], role, None, None)
        .await
        .unwrap();
    app.query(
        &auditor,
        "{ llmRuns(first: 2) { nodes { runId envelope { checksum } } }
           systemRecords(first: 2) { nodes { recordId } }
           auditEntries(first: 2) { nodes { seq } }
           audit { integrity { status } exports(first: 2) { nodes { exportId } } } }",
        json!({}),
    )
    .await;
    let (status, _) = app
        .post(Some("rl_not-a-key"), &json!({"query": "{ __typename }"}))
        .await;
    assert_eq!(status, 401);
    let used = stored_triples(&app).await;
    assert_eq!(unknown(&used), Vec::<String>::new(), "after use: {used:?}");
    assert!(
        used.iter()
            .any(|t| t == "INTEGRITY LEDGER_VERIFIED audit_ledger")
    );

    // The check itself: an entry of the old seeder's private vocabulary is caught.
    let made_up = NewEntry {
        id: None,
        category: LedgerCategory::Authorization,
        event_type: "ACCESS_DECISION".into(),
        entity_type: "operation".into(),
        entity_id: "llmRuns".into(),
        actor_type: ActorType::Human,
        actor_id: None,
        action_reason: None,
        decision: None,
        before_state: None,
        after_state: None,
        correlation_id: None,
        occurred_at: Utc::now(),
    };
    let tx = app.db().begin_write().await.unwrap();
    ledger::append(&tx.txn, "demo", vec![made_up])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        unknown(&stored_triples(&app).await),
        vec!["AUTHORIZATION ACCESS_DECISION operation".to_string()]
    );
}
both!(seeded_ledgers_hold_only_what_the_server_writes);
