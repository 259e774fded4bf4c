//! The audit topic: ledger entries (list, filters, one entry), the identity, authorization,
//! access, integrity and export views, verification against an independent re-implementation
//! of the entry hash and Merkle root, and tamper detection.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

/// Alpha's ledger after the fixture: TENANT_CREATED, 3 × KEY_CREATED, then the ingest batch's
/// 5 producer entries, its exports' entries and its anchor.
const ALPHA_ENTRIES: usize = 1 + fixture::ALPHA_KEYS + 5 + fixture::ALPHA_EXPORT_ENTRIES + 1;

const ENTRY_FIELDS: &str = "entryId seq category eventType entityType entityId actorType actorId actionReason decision beforeState afterState correlationId occurredAt recordedAt prevHash entryHash";

async fn all_entries(app: &TestApp, key: &str) -> Vec<Value> {
    let q = format!("{{ auditEntries(first: 100) {{ totalCount nodes {{ {ENTRY_FIELDS} }} }} }}");
    let d = app.query(key, &q, json!({})).await;
    d["auditEntries"]["nodes"].as_array().unwrap().clone()
}

async fn entries_and_views(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let keys = fixture::load(&app).await;
    let k = &keys.alpha_auditor;
    let entries = all_entries(&app, k).await;
    assert_eq!(entries.len(), ALPHA_ENTRIES);
    // Newest first, seq without gaps.
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=ALPHA_ENTRIES as i64).rev().collect::<Vec<_>>());
    assert_eq!(
        entries.last().unwrap()["eventType"],
        json!("TENANT_CREATED")
    );
    assert_eq!(entries.last().unwrap()["prevHash"], json!("0".repeat(64)));
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["entryHash"], pair[0]["prevHash"], "chain links");
    }

    let count = |cat: &str| {
        entries
            .iter()
            .filter(|e| e["category"] == json!(cat))
            .count()
    };
    let views = r#"{ audit {
        identity(first: 50) { totalCount nodes { eventType entityType } }
        authorization(first: 50) { totalCount nodes { decision entityId actionReason } }
        denied: authorization(decision: DENY) { totalCount nodes { entityId } }
        access(first: 50) { totalCount nodes { eventType entityType entityId actorId } }
        exports(first: 50) { totalCount nodes { exportId status checksum runId } metadata { immutable } }
    } }"#;
    let d = app.query(k, views, json!({})).await;
    let a = &d["audit"];
    assert_eq!(a["identity"]["totalCount"], json!(count("IDENTITY")));
    assert_eq!(count("IDENTITY"), 1 + fixture::ALPHA_KEYS);
    assert_eq!(
        a["identity"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["eventType"] == json!("KEY_CREATED"))
            .count(),
        fixture::ALPHA_KEYS
    );
    // The decisions as stored: one allow, one deny (never a constant).
    assert_eq!(a["authorization"]["totalCount"], json!(2));
    let decisions: Vec<&Value> = a["authorization"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["decision"])
        .collect();
    assert_eq!(decisions, vec![&json!("DENY"), &json!("ALLOW")]);
    assert_eq!(
        a["denied"],
        json!({"totalCount": 1, "nodes": [{"entityId": "read:audit"}]})
    );
    assert_eq!(a["access"]["totalCount"], json!(2));
    assert_eq!(
        a["access"]["nodes"][0],
        json!({"eventType": "EVIDENCE_READ", "entityType": "llm_run", "entityId": "r6", "actorId": format!("key:{}", fixture::key_id(&keys.alpha_viewer))})
    );
    assert_eq!(
        a["exports"]["nodes"],
        json!([
            {"exportId": "exp2", "status": "PENDING", "checksum": null, "runId": "r1"},
            {"exportId": "exp1", "status": "COMPLETED", "checksum": "0".repeat(64), "runId": "r6"}
        ])
    );
    assert_eq!(a["exports"]["totalCount"], json!(2));
    assert_eq!(a["exports"]["metadata"]["immutable"], json!(false));

    // Filters of the list.
    let governance = app
        .query(k, r#"{ auditEntries(filter: {category: [GOVERNANCE]}) { totalCount nodes { beforeState afterState eventType } } }"#, json!({}))
        .await;
    assert_eq!(
        governance["auditEntries"],
        json!({"totalCount": 1, "nodes": [{"beforeState": {"limit": 500}, "afterState": {"limit": 800}, "eventType": "POLICY_RULE_CHANGED"}]})
    );
    for (filter, keep) in [
        (
            r#"{entityId: "r1"}"#,
            Box::new(|e: &Value| e["entityId"] == json!("r1")) as Box<dyn Fn(&Value) -> bool>,
        ),
        (
            r#"{actorType: SYSTEM}"#,
            Box::new(|e: &Value| e["actorType"] == json!("SYSTEM")),
        ),
        (
            r#"{eventType: "KEY_CREATED"}"#,
            Box::new(|e: &Value| e["eventType"] == json!("KEY_CREATED")),
        ),
        (
            r#"{category: [ACCESS, ANCHOR]}"#,
            Box::new(|e: &Value| {
                e["category"] == json!("ACCESS") || e["category"] == json!("ANCHOR")
            }),
        ),
        (
            r#"{decision: ALLOW}"#,
            Box::new(|e: &Value| e["decision"] == json!("ALLOW")),
        ),
        (
            r#"{actorId: "h-1", entityType: "llm_run"}"#,
            Box::new(|e: &Value| {
                e["actorId"] == json!("h-1") && e["entityType"] == json!("llm_run")
            }),
        ),
    ] {
        let q = format!(
            "{{ auditEntries(first: 100, filter: {filter}) {{ totalCount nodes {{ seq }} }} }}"
        );
        let d = app.query(k, &q, json!({})).await;
        let expected: Vec<Value> = entries
            .iter()
            .filter(|e| keep(e))
            .map(|e| json!({"seq": e["seq"]}))
            .collect();
        assert_eq!(d["auditEntries"]["nodes"], json!(expected), "{filter}");
        assert_eq!(
            d["auditEntries"]["totalCount"],
            json!(expected.len()),
            "{filter}"
        );
    }

    // One entry in detail.
    let some = &entries[3];
    let d = app
        .query(k, r#"query($id: String!) { auditEntry(id: $id) { entry { seq entryHash } computedHash hashMatches metadata { checksum tenantId } } }"#, json!({"id": some["entryId"]}))
        .await;
    assert_eq!(d["auditEntry"]["entry"]["seq"], some["seq"]);
    assert_eq!(d["auditEntry"]["computedHash"], some["entryHash"]);
    assert_eq!(d["auditEntry"]["hashMatches"], json!(true));
    assert_eq!(d["auditEntry"]["metadata"]["tenantId"], json!("alpha"));

    // Paging the ledger backward and forward meets in the middle without overlap.
    let d = app
        .query(
            k,
            "{ first: auditEntries(first: 4) { nodes { seq } pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = d["first"]["pageInfo"]["endCursor"].clone();
    let d2 = app
        .query(
            k,
            "query($c: String) { auditEntries(first: 100, after: $c) { nodes { seq } } }",
            json!({"c": cursor}),
        )
        .await;
    let rest: Vec<i64> = d2["auditEntries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        rest,
        (1..=ALPHA_ENTRIES as i64 - 4).rev().collect::<Vec<_>>()
    );
}
both!(entries_and_views);

/// The entry encoding of docs/ledger.md, re-implemented from the document.
pub fn leaf_hash_from_spec(tenant: &str, e: &Value) -> String {
    fn field(out: &mut Vec<u8>, v: Option<&str>) {
        match v {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    let text = |k: &str| e[k].as_str().map(String::from);
    // JSON states are hashed in canonical form: sorted keys, no whitespace.
    let state = |k: &str| (!e[k].is_null()).then(|| serde_json::to_string(&e[k]).unwrap());
    let mut out = Vec::new();
    let seq = e["seq"].as_i64().unwrap().to_string();
    for v in [
        Some("runledger.ledger.v1".to_string()),
        Some(tenant.to_string()),
        Some(seq),
        text("prevHash"),
        text("entryId"),
        text("category"),
        text("eventType"),
        text("entityType"),
        text("entityId"),
        text("actorType"),
        text("actorId"),
        text("actionReason"),
        text("decision"),
        state("beforeState"),
        state("afterState"),
        text("correlationId"),
        text("occurredAt"),
        text("recordedAt"),
    ] {
        field(&mut out, v.as_deref());
    }
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(&out);
    hex::encode(h.finalize())
}

/// The entries' hashes as Merkle leaves, in the order given.
pub fn leaves_of(entries: &[Value]) -> Vec<[u8; 32]> {
    entries
        .iter()
        .map(|e| {
            hex::decode(e["entryHash"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect()
}

async fn evidence_tables_refuse_update_and_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture::load(&app).await;
    for (table, column) in [
        ("llm_runs", "model"),
        ("trace_steps", "skill_name"),
        ("governance_events", "decision"),
        ("system_records", "summary"),
        ("telemetry_samples", "metric"),
        ("audit_ledger", "event_type"),
    ] {
        let update = app
            .store
            .exec(&format!("UPDATE {table} SET {column} = 'x'"))
            .await;
        assert!(update.is_err(), "UPDATE on {table} must be refused");
        let delete = app.store.exec(&format!("DELETE FROM {table}")).await;
        assert!(delete.is_err(), "DELETE on {table} must be refused");
        if backend == Backend::Postgres {
            let truncate = app.store.exec(&format!("TRUNCATE {table}")).await;
            assert!(truncate.is_err(), "TRUNCATE on {table} must be refused");
        }
    }
    // Exports move forward only.
    let ok = app
        .store
        .exec("UPDATE log_exports SET status = 'COMPLETED', checksum = 'abc' WHERE id = 'exp2'")
        .await;
    assert!(ok.is_ok(), "PENDING -> COMPLETED is allowed: {ok:?}");
    let back = app
        .store
        .exec("UPDATE log_exports SET status = 'PENDING' WHERE id = 'exp2'")
        .await;
    assert!(back.is_err(), "COMPLETED -> PENDING must be refused");
    let delete = app.store.exec("DELETE FROM log_exports").await;
    assert!(delete.is_err(), "DELETE on log_exports must be refused");
    let counts = app.store.query_i64("SELECT COUNT(*) FROM llm_runs").await;
    assert_eq!(counts, vec![fixture::alpha_runs().len() as i64 + 2]);
}
both!(evidence_tables_refuse_update_and_delete);
