//! Who owns a system record id, and which ledger anchors a system record: a tenant's ids are its
//! own (another tenant's ingest key neither learns nor blocks them), global records (written by
//! operators and the seeder) are anchored in the platform ledger `_platform`, and an edit of one
//! is reported there and in no tenant's ledger. Also the migration that re-keyed the table.

use std::collections::BTreeMap;
use std::process::Command;

use migration::{Migrator, MigratorTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both;
use crate::fixture::{self, Keys};
use crate::helpers::{Backend, TestApp};
use runledger::auth;
use runledger::domain::Role;

const INGEST: &str = "mutation($r: [SystemRecordInput!]!) { ingestSystemRecords(records: $r) { \
    storedCount alreadyPresentCount stored { kind key checksum } \
    alreadyPresent { kind key checksum } merkleRoot \
    ledgerEntries { category eventType entityType afterState } } }";

/// The fields of a system record as a reader sees them.
const FIELDS: &str = "id recordId tenantId isGlobal ledger anchorId summary recordedAt";

/// A system record of the component no fixture record uses.
fn record(id: &str, summary: &str) -> Value {
    json!({"recordId": id, "component": "edge-proxy", "eventType": "CERT_ROTATED",
           "severity": "INFO", "summary": summary, "causedBy": "cert-manager",
           "occurredAt": "2026-05-01T10:00:00Z", "details": {"serial": "01ab"},
           "origin": "SYSTEM"})
}

/// SHA-256 of the canonical JSON of a record sent as [`record`] (keys sorted, no whitespace),
/// written out from docs/ledger.md and `canonical::system_json`'s field list.
fn checksum_of(input: &Value, tenant: Option<&str>, recorded_at: &str) -> String {
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    m.insert("kind", json!("system_record"));
    m.insert("id", input["recordId"].clone());
    m.insert("tenant_id", json!(tenant));
    m.insert("component", input["component"].clone());
    m.insert("event_type", input["eventType"].clone());
    m.insert("severity", input["severity"].clone());
    m.insert("summary", input["summary"].clone());
    m.insert("details", input["details"].clone());
    m.insert("caused_by", input["causedBy"].clone());
    m.insert("correlation_id", Value::Null);
    m.insert("origin", input["origin"].clone());
    m.insert("occurred_at", json!("2026-05-01T10:00:00.000000Z"));
    m.insert("recorded_at", json!(recorded_at));
    hex::encode(Sha256::digest(
        serde_json::to_string(&m).unwrap().as_bytes(),
    ))
}

async fn write(app: &TestApp, key: &str, records: Value) -> Value {
    app.query(key, INGEST, json!({"r": records})).await["ingestSystemRecords"].clone()
}

/// An ingest answer with the id and everything derived from it (hashes, roots) blanked, so
/// two answers can be compared field by field.
fn without_id(mut answer: Value, id: &str) -> Value {
    for list in ["stored", "alreadyPresent"] {
        for r in answer[list].as_array_mut().unwrap() {
            assert_eq!(r["key"], json!(id), "{r}");
            r["key"] = json!("<id>");
            assert_eq!(r["checksum"].as_str().unwrap().len(), 64, "{r}");
            r["checksum"] = json!("<hash>");
        }
    }
    if !answer["merkleRoot"].is_null() {
        answer["merkleRoot"] = json!("<hash>");
    }
    for e in answer["ledgerEntries"].as_array_mut().unwrap() {
        for k in ["merkle_root", "first_record_hash", "last_record_hash"] {
            if e["afterState"].get(k).is_some() {
                e["afterState"][k] = json!("<hash>");
            }
        }
    }
    answer
}

/// The caller's records of component `edge-proxy` (`scope`: TENANT, GLOBAL or ALL), sorted by
/// record id, global before tenant.
async fn records(app: &TestApp, key: &str, scope: &str) -> Vec<Value> {
    let q = format!(
        "{{ systemRecords(first: 100, filter: {{scope: {scope}, component: \"edge-proxy\"}}) \
         {{ totalCount nodes {{ {FIELDS} }} }} }}"
    );
    let d = app.query(key, &q, json!({})).await;
    let mut nodes = d["systemRecords"]["nodes"].as_array().unwrap().clone();
    assert_eq!(d["systemRecords"]["totalCount"], json!(nodes.len()));
    // By record id, then the global record before the tenant's.
    nodes.sort_by_key(|n| {
        (
            n["recordId"].as_str().unwrap().to_string(),
            n["tenantId"].as_str().map(str::to_string),
        )
    });
    nodes
}

async fn node(app: &TestApp, key: &str, id: &Value) -> Value {
    let q = format!("query($id: ID!) {{ node(id: $id) {{ ... on SystemRecord {{ {FIELDS} }} }} }}");
    app.query(key, &q, json!({"id": id})).await["node"].clone()
}

async fn beta_ingest_key(app: &TestApp) -> String {
    auth::create_key(app.db(), "beta", Role::Ingest, None, None)
        .await
        .unwrap()
        .0
}

/// The anchor entry's (ledger, seq) for an anchor id, read with SQL.
async fn anchor_entry(app: &TestApp, anchor_id: &str) -> Vec<(String, i64)> {
    let sql = |col: &str| {
        format!(
            "SELECT {col} FROM audit_ledger WHERE category = 'ANCHOR' \
             AND event_type = 'EVIDENCE_BATCH_ANCHORED' AND entity_id = '{anchor_id}' \
             ORDER BY tenant_id"
        )
    };
    let ledgers = app.store.query_strings(&sql("tenant_id")).await;
    let seqs = app.store.query_i64(&sql("seq")).await;
    ledgers.into_iter().zip(seqs).collect()
}

fn runledger() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runledger"));
    c.env(
        "RUNLEDGER_SIGNING_KEY_FILE",
        std::env::temp_dir().join(format!("runledger_scope_{}.key", std::process::id())),
    );
    c
}

/// Writes global records as an operator does: `runledger ingest system-records --global`.
fn operator_writes_global(app: &TestApp, records: Value) {
    let file = std::env::temp_dir().join(format!(
        "runledger_scope_{}.json",
        runledger::ids::random_hex(6)
    ));
    std::fs::write(&file, records.to_string()).unwrap();
    let out = runledger()
        .args(["ingest", "system-records", "--database-url", &app.store.url])
        .args(["--file", &file.display().to_string(), "--global"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `runledger verify` of every ledger: exit code and the report of each ledger by name.
fn verify_all(app: &TestApp) -> (i32, BTreeMap<String, Value>) {
    let out = runledger()
        .args(["verify", "--database-url", &app.store.url])
        .args(["--public-key", &app.keys.signer.verifier_key()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let ledgers = report["ledgers"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {report}"))
        .iter()
        .map(|l| (l["tenantId"].as_str().unwrap().to_string(), l.clone()))
        .collect();
    (out.status.code().unwrap_or(-1), ledgers)
}

/// Tenant B's ingest key writes under an id tenant A uses, and takes an id before A does: B's
/// answers are those of an id nobody uses, A's later write succeeds, retries stay
/// `alreadyPresent` for their owner, and a different record under an id stays a CONFLICT for
/// that id's owner only.
async fn b_cannot_learn_or_block_a_system_record_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys: Keys = fixture::load(&app).await;
    let (a, b) = (keys.alpha_ingest.clone(), beta_ingest_key(&app).await);
    let a_dup = record("dup", "alpha's certificate rotated");
    let b_dup = record("dup", "beta's certificate rotated");

    let a_first = write(&app, &a, json!([a_dup])).await;
    assert_eq!(a_first["storedCount"], json!(1), "{a_first}");

    // B under A's id, and under an id nobody uses: the same answer, field by field.
    let b_answer = write(&app, &b, json!([b_dup])).await;
    let b_control = write(
        &app,
        &b,
        json!([record("nobody-uses", "beta's certificate rotated")]),
    )
    .await;
    assert_eq!(
        without_id(b_answer.clone(), "dup"),
        without_id(b_control, "nobody-uses")
    );
    assert_eq!(b_answer["storedCount"], json!(1));
    assert_eq!(b_answer["alreadyPresent"], json!([]));
    assert_eq!(
        b_answer["ledgerEntries"][0]["afterState"]["counts"]["system_records"],
        json!(1)
    );

    // B takes an id first; A's later write of it is A's own record.
    write(&app, &b, json!([record("early", "beta was first")])).await;
    let a_early = write(&app, &a, json!([record("early", "alpha came second")])).await;
    assert_eq!(a_early["storedCount"], json!(1), "{a_early}");
    assert_eq!(a_early["alreadyPresentCount"], json!(0));

    // Each owner's checksum is of its own record (its tenant is part of the hash).
    let (ra, rb) = (&keys.alpha_viewer, &keys.beta_auditor);
    let alpha = records(&app, ra, "TENANT").await;
    let beta = records(&app, rb, "TENANT").await;
    let summaries = |rs: &[Value]| -> Vec<(String, String, String)> {
        rs.iter()
            .map(|r| {
                (
                    r["recordId"].as_str().unwrap().to_string(),
                    r["tenantId"].as_str().unwrap().to_string(),
                    r["summary"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summaries(&alpha),
        vec![
            t("dup", "alpha", "alpha's certificate rotated"),
            t("early", "alpha", "alpha came second"),
        ]
    );
    assert_eq!(
        summaries(&beta),
        vec![
            t("dup", "beta", "beta's certificate rotated"),
            t("early", "beta", "beta was first"),
            t("nobody-uses", "beta", "beta's certificate rotated"),
        ]
    );
    let alpha_dup_hash = checksum_of(
        &a_dup,
        Some("alpha"),
        alpha[0]["recordedAt"].as_str().unwrap(),
    );
    let beta_dup_hash = checksum_of(
        &b_dup,
        Some("beta"),
        beta[0]["recordedAt"].as_str().unwrap(),
    );
    assert_eq!(a_first["stored"][0]["checksum"], json!(alpha_dup_hash));
    assert_eq!(b_answer["stored"][0]["checksum"], json!(beta_dup_hash));

    // Retries are each owner's own.
    for (key, input, hash) in [(&a, &a_dup, &alpha_dup_hash), (&b, &b_dup, &beta_dup_hash)] {
        let again = write(&app, key, json!([input])).await;
        assert_eq!(again["storedCount"], json!(0), "{again}");
        assert_eq!(
            again["alreadyPresent"],
            json!([{"kind": "system_records", "key": "dup", "checksum": hash}])
        );
        assert_eq!(again["ledgerEntries"], json!([]));
    }

    // A different record under an owner's id is that owner's conflict, naming nobody else.
    for (key, other) in [(&a, "beta"), (&b, "alpha")] {
        let (code, message) = app
            .query_error(
                Some(key),
                INGEST,
                json!({"r": [record("dup", "something else")]}),
            )
            .await;
        assert_eq!(code, "CONFLICT", "{message}");
        assert!(message.contains("`dup` already exists"), "{message}");
        assert!(!message.contains(other), "{message}");
    }

    // Node ids name the caller's own record: A's id read by B is B's record.
    for (key, own) in [(ra, &alpha), (rb, &beta)] {
        for r in own {
            assert_eq!(&node(&app, key, &r["id"]).await, r);
        }
    }
    assert_eq!(node(&app, rb, &alpha[0]["id"]).await, beta[0]);
    let in_db = app
        .store
        .query_i64("SELECT COUNT(*) FROM system_records WHERE id = 'dup'")
        .await;
    assert_eq!(in_db, vec![2]);
}
both!(b_cannot_learn_or_block_a_system_record_ids);

/// A tenant's record and a global record with the same id: each reader sees its own record and
/// the global one, told apart by their node ids and by the ledger that anchors them.
async fn records_of_both_owners_with_one_id_reach_the_right_readers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys: Keys = fixture::load(&app).await;
    let b = beta_ingest_key(&app).await;
    write(
        &app,
        &keys.alpha_ingest,
        json!([record("shared", "alpha's")]),
    )
    .await;
    operator_writes_global(&app, json!([record("shared", "the platform's")]));
    // Re-sending the global record is a retry of the global one, not a conflict with alpha's.
    operator_writes_global(&app, json!([record("shared", "the platform's")]));

    let alpha = records(&app, &keys.alpha_viewer, "ALL").await;
    assert_eq!(alpha.len(), 2, "{alpha:?}");
    let (own, global) = (&alpha[1], &alpha[0]);
    assert_eq!(
        (
            &own["tenantId"],
            &own["ledger"],
            &own["isGlobal"],
            &own["summary"]
        ),
        (
            &json!("alpha"),
            &json!("alpha"),
            &json!(false),
            &json!("alpha's")
        )
    );
    assert_eq!(
        (
            &global["tenantId"],
            &global["ledger"],
            &global["isGlobal"],
            &global["summary"]
        ),
        (
            &Value::Null,
            &json!("_platform"),
            &json!(true),
            &json!("the platform's")
        )
    );
    assert_ne!(own["id"], global["id"]);
    // Each record's anchor is an entry of the ledger it names.
    for r in [own, global] {
        let anchor = anchor_entry(&app, r["anchorId"].as_str().unwrap()).await;
        assert_eq!(anchor.len(), 1, "{anchor:?}");
        assert_eq!(json!(anchor[0].0), r["ledger"]);
    }

    // Beta (its own record under the id too) sees its own and the same global record.
    write(&app, &b, json!([record("shared", "beta's")])).await;
    let beta = records(&app, &keys.beta_auditor, "ALL").await;
    assert_eq!(beta.len(), 2, "{beta:?}");
    assert_eq!(&beta[0], global);
    assert_eq!(beta[1]["tenantId"], json!("beta"));
    assert_eq!(beta[1]["ledger"], json!("beta"));
    assert_eq!(
        records(&app, &keys.beta_auditor, "GLOBAL").await,
        vec![global.clone()]
    );

    // Node ids: the global one reaches the global record for everybody; the tenant form
    // reaches the caller's own.
    for key in [&keys.alpha_viewer, &keys.beta_auditor] {
        assert_eq!(&node(&app, key, &global["id"]).await, global);
    }
    assert_eq!(&node(&app, &keys.alpha_viewer, &own["id"]).await, own);
    assert_eq!(node(&app, &keys.beta_auditor, &own["id"]).await, beta[1]);
    // Alpha's access records say which of the two it read.
    let reads = app
        .store
        .query_strings(
            "SELECT entity_type FROM audit_ledger WHERE tenant_id = 'alpha' \
             AND event_type = 'EVIDENCE_READ' AND entity_id = 'shared' ORDER BY seq",
        )
        .await;
    assert_eq!(reads, vec!["global_system_record", "system_record"]);
}
both!(records_of_both_owners_with_one_id_reach_the_right_readers);

/// An attacker with database rights edits a global record (one the seeder wrote alongside a
/// tenant's runs, as `runledger seed` and `serve --demo` do): `runledger verify` reports the
/// broken anchor in the platform ledger's report, and the tenant's ledger stays clean.
async fn an_edited_global_record_is_reported_by_the_platform_ledger_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let auditor = app.seeded_auditor("acme", 120, 3, 0, 7).await;
    let id = app
        .store
        .query_strings("SELECT id FROM system_records WHERE tenant_id IS NULL ORDER BY id")
        .await[0]
        .clone();
    let anchor = app
        .store
        .query_strings(&format!(
            "SELECT anchor_id FROM system_records WHERE tenant_id IS NULL AND id = '{id}'"
        ))
        .await;
    let entry = anchor_entry(&app, &anchor[0]).await;
    assert_eq!(entry.len(), 1, "{entry:?}");
    assert_eq!(entry[0].0, "_platform");
    let (_, before) = verify_all(&app);
    for ledger in ["acme", "_platform"] {
        assert_eq!(before[ledger]["anomalies"], json!([]), "{before:?}");
    }

    match backend {
        Backend::Sqlite => app
            .store
            .exec("DROP TRIGGER system_records_refuse_update")
            .await
            .unwrap(),
        Backend::Postgres => app
            .store
            .exec("ALTER TABLE system_records DISABLE TRIGGER USER")
            .await
            .unwrap(),
    };
    let edited = app
        .store
        .exec(&format!(
            "UPDATE system_records SET summary = 'all is well' WHERE tenant_id IS NULL AND id = '{id}'"
        ))
        .await
        .unwrap();
    assert_eq!(edited, 1);

    let (code, after) = verify_all(&app);
    assert_eq!(code, 1, "{after:?}");
    assert_eq!(after["acme"]["anomalies"], json!([]), "{}", after["acme"]);
    let platform = &after["_platform"]["anomalies"];
    assert_eq!(platform.as_array().unwrap().len(), 1, "{platform}");
    assert_eq!(platform[0]["kind"], json!("ANCHOR_MISMATCH"));
    assert_eq!(platform[0]["seq"], json!(entry[0].1));
    assert_eq!(platform[0]["record"], json!(format!("system_records:{id}")));
    // The tenant's own integrity view is clean too.
    let full = app
        .query(
            &auditor,
            "{ audit { integrity(mode: FULL) { anomalies { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(full["audit"]["integrity"]["anomalies"], json!([]));
}
both!(an_edited_global_record_is_reported_by_the_platform_ledger_only);

/// The seeder writes global records alongside a tenant's runs: they are anchored in the
/// platform ledger, and the tenant's anchors cover only the tenant's records.
async fn seeded_global_records_are_anchored_in_the_platform_ledger(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seeded_auditor("acme", 120, 3, 0, 7).await;
    let count = |sql: &str| {
        let sql = sql.to_string();
        let app = &app;
        async move { app.store.query_i64(&sql).await[0] }
    };
    let globals = count("SELECT COUNT(*) FROM system_records WHERE tenant_id IS NULL").await;
    assert!(globals > 0);
    let in_platform = count(
        "SELECT COUNT(*) FROM system_records s WHERE s.tenant_id IS NULL AND EXISTS \
         (SELECT 1 FROM audit_ledger a WHERE a.tenant_id = '_platform' \
          AND a.category = 'ANCHOR' AND a.entity_id = s.anchor_id)",
    )
    .await;
    assert_eq!(in_platform, globals);
    let tenant_anchors_of_globals = count(
        "SELECT COUNT(*) FROM system_records s JOIN audit_ledger a \
         ON a.entity_id = s.anchor_id AND a.category = 'ANCHOR' \
         WHERE s.tenant_id IS NULL AND a.tenant_id <> '_platform'",
    )
    .await;
    assert_eq!(tenant_anchors_of_globals, 0);
    let (_, reports) = verify_all(&app);
    for ledger in ["acme", "_platform"] {
        assert_eq!(reports[ledger]["anomalies"], json!([]), "{:?}", reports);
    }
}
both!(seeded_global_records_are_anchored_in_the_platform_ledger);

/// A raw row of `system_records` with the given owner and id (unanchored).
fn insert_sql(tenant: Option<&str>, id: &str) -> String {
    let tenant = tenant.map_or("NULL".to_string(), |t| format!("'{t}'"));
    format!(
        "INSERT INTO system_records (id, tenant_id, component, event_type, severity, summary, \
         details, caused_by, correlation_id, origin, occurred_at, recorded_at, record_hash, \
         anchor_id) VALUES ('{id}', {tenant}, 'c', 'E', 'INFO', 's', NULL, NULL, NULL, \
         'SYSTEM', '2026-05-01T10:00:00Z', '2026-05-01T10:00:00Z', 'h', NULL)"
    )
}

/// Index names of `system_records`.
async fn indexes(app: &TestApp, backend: Backend) -> Vec<String> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'system_records' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT indexname FROM pg_indexes WHERE tablename = 'system_records' ORDER BY indexname"
        }
    };
    app.store.query_strings(sql).await
}

/// The migration keeps every row and the indexes the lists walk, recreates the append-only
/// refusals, and keys records by owner (reverting it restores the single key space).
async fn the_owner_key_migration_keeps_rows_indexes_and_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture::load(&app).await;
    let snapshot = "SELECT id || '|' || COALESCE(tenant_id, '-') || '|' || record_hash || '|' || \
        COALESCE(anchor_id, '-') || '|' || summary FROM system_records ORDER BY 1";
    let rows = app.store.query_strings(snapshot).await;
    assert!(rows.len() > 3);
    let conn = &app.db().conn;
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let mine = names
        .iter()
        .position(|n| n == "m20261201_000005_system_record_owner_keys")
        .unwrap();
    let later = (names.len() - mine) as u32;

    Migrator::down(conn, Some(later)).await.unwrap();
    assert_eq!(app.store.query_strings(snapshot).await, rows);
    // Before: one key space across owners.
    assert!(
        app.store
            .exec(&insert_sql(Some("beta"), "s0"))
            .await
            .is_err()
    );

    Migrator::up(conn, None).await.unwrap();
    assert_eq!(app.store.query_strings(snapshot).await, rows);
    let idx = indexes(&app, backend).await;
    for name in [
        "system_records_by_anchor",
        "system_records_correlation",
        "system_records_owner_id",
        "system_records_time",
    ] {
        assert!(idx.contains(&name.to_string()), "{name} missing: {idx:?}");
    }
    // After: keyed by owner, a NULL tenant counting as one owner.
    let global_id = app
        .store
        .query_strings("SELECT id FROM system_records WHERE tenant_id IS NULL ORDER BY id")
        .await[0]
        .clone();
    let tenant_id = app
        .store
        .query_strings("SELECT id FROM system_records WHERE tenant_id = 'alpha' ORDER BY id")
        .await[0]
        .clone();
    for (owner, id, ok) in [
        (Some("beta"), &tenant_id, true),
        (Some("beta"), &tenant_id, false),
        (Some("alpha"), &tenant_id, false),
        (Some("alpha"), &global_id, true),
        (None, &global_id, false),
        (None, &tenant_id, true),
        (None, &tenant_id, false),
    ] {
        let result = app.store.exec(&insert_sql(owner, id)).await;
        assert_eq!(result.is_ok(), ok, "{owner:?} {id}: {result:?}");
    }
    // Still append-only.
    for sql in [
        "UPDATE system_records SET summary = 'x'",
        "DELETE FROM system_records",
    ] {
        let refused = app.store.exec(sql).await.unwrap_err().to_string();
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }
}
both!(the_owner_key_migration_keeps_rows_indexes_and_refusals);

/// Ids of a walk over the caller's `edge-proxy` records, one record per page, forward (`first`
/// / `after`) or backward (`last` / `before`), as (record id, owner).
async fn walk(app: &TestApp, key: &str, backward: bool) -> Vec<(String, String)> {
    let (size, cursor, page_info) = if backward {
        ("last", "before", "hasPreviousPage startCursor")
    } else {
        ("first", "after", "hasNextPage endCursor")
    };
    let q = format!(
        "query($c: String) {{ systemRecords({size}: 1, {cursor}: $c, \
         filter: {{component: \"edge-proxy\"}}) {{ nodes {{ recordId tenantId }} \
         pageInfo {{ {page_info} }} }} }}"
    );
    let (more, next) = if backward {
        ("hasPreviousPage", "startCursor")
    } else {
        ("hasNextPage", "endCursor")
    };
    let mut out = Vec::new();
    let mut at = Value::Null;
    for _ in 0..20 {
        let d = app.query(key, &q, json!({"c": at})).await["systemRecords"].clone();
        for n in d["nodes"].as_array().unwrap() {
            let owner = n["tenantId"].as_str().unwrap_or("global");
            out.push((
                n["recordId"].as_str().unwrap().to_string(),
                owner.to_string(),
            ));
        }
        if d["pageInfo"][more] != json!(true) {
            break;
        }
        at = d["pageInfo"][next].clone();
    }
    if backward {
        out.reverse();
    }
    out
}

/// A tenant's record and a global record with the same id and the same time sit next to each
/// other in the list: walking it a record per page, both ways, meets each exactly once.
async fn pages_keep_both_owners_of_one_id_and_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys: Keys = fixture::load(&app).await;
    let at = |id: &str, time: &str| {
        let mut r = record(id, "rotated");
        r["occurredAt"] = json!(time);
        r
    };
    write(
        &app,
        &keys.alpha_ingest,
        json!([
            at("m", "2026-05-01T10:00:00Z"),
            at("z", "2026-05-01T10:00:00Z"),
            at("a", "2026-05-01T09:00:00Z")
        ]),
    )
    .await;
    operator_writes_global(
        &app,
        json!([
            at("m", "2026-05-01T10:00:00Z"),
            at("b", "2026-05-01T11:00:00Z")
        ]),
    );
    // Newest first; at one time by id, descending; at one time and id, the tenant's first.
    let o = |id: &str, owner: &str| (id.to_string(), owner.to_string());
    let expected = vec![
        o("b", "global"),
        o("z", "alpha"),
        o("m", "alpha"),
        o("m", "global"),
        o("a", "alpha"),
    ];
    assert_eq!(walk(&app, &keys.alpha_viewer, false).await, expected);
    assert_eq!(walk(&app, &keys.alpha_viewer, true).await, expected);
}
both!(pages_keep_both_owners_of_one_id_and_time);
