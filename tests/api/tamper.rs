//! The tamper suite: an attacker with write access to the database switches the refusals off
//! (drops the SQLite triggers, disables them on PostgreSQL) and edits, deletes, reorders,
//! forges and truncates; a full verification names the anomaly and the first broken seq.
//!
//! Layout of alpha's ledger in every test: the fixture's entries (the last one anchors the
//! fixture's evidence) covered by checkpoint `s1`; two ingest requests (each an anchor, then
//! the request's authorization record) covered by checkpoint `s2`; one more ingest request
//! after it (the unanchored tail, its anchor at `s2 + 1`).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::audit::{leaf_hash_from_spec, leaves_of};
use crate::both;
use crate::fixture::{self, Keys};
use crate::helpers::{Backend, TestApp, merkle_root};
use runledger::ledger::note::{self, NoteSigner};

pub const FULL: &str = "{ audit { integrity(mode: FULL) { status mode hashChainValid firstBrokenSeq \
    entriesChecked unanchoredEntries fromSeq anchorsChecked recordsChecked \
    anomalies { kind seq seqEnd record detail } } } }";

/// A ledger with two checkpoints and an unanchored tail.
pub struct Ledger {
    pub app: TestApp,
    pub keys: Keys,
    /// Size of the first checkpoint (the fixture's entries).
    pub s1: i64,
    /// Size of the second.
    pub s2: i64,
    /// The head after setup.
    pub head: i64,
    pub backend: Backend,
}

/// Ingests one run through GraphQL (one anchored batch: one ledger entry).
pub async fn ingest(app: &TestApp, keys: &Keys, run_id: &str) {
    let run = json!({
        "runId": run_id, "provider": "openai", "model": "gpt-4o",
        "inputTokens": 10, "outputTokens": 5, "costCents": 1, "executionStatus": "SUCCEEDED",
        "startedAt": "2026-05-01T10:00:00Z", "completedAt": "2026-05-01T10:00:02Z",
        "traceId": format!("trace-{run_id}"),
        "steps": [{"stepIndex": 0, "timestamp": "2026-05-01T10:00:01Z", "skillName": "plan",
                   "status": "SUCCEEDED", "outcomeCategory": "SUCCESS", "costCents": 1, "durationMs": 5}]
    });
    app.query(
        &keys.alpha_ingest,
        "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }",
        json!({"runs": [run]}),
    )
    .await;
}

pub async fn setup(backend: Backend) -> Ledger {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let s1 = app.checkpoint("alpha").await;
    ingest(&app, &keys, "x1").await;
    ingest(&app, &keys, "x2").await;
    let s2 = app.checkpoint("alpha").await;
    ingest(&app, &keys, "x3").await;
    let head = head_seq(&app).await;
    Ledger {
        app,
        keys,
        s1,
        s2,
        head,
        backend,
    }
}

/// Alpha's newest seq, read with SQL.
pub async fn head_seq(app: &TestApp) -> i64 {
    app.store
        .query_i64("SELECT MAX(seq) FROM audit_ledger WHERE tenant_id = 'alpha'")
        .await[0]
}

impl Ledger {
    /// Runs a full verification as alpha's auditor.
    pub async fn verify(&self) -> Value {
        self.app
            .query(&self.keys.alpha_auditor, FULL, json!({}))
            .await["audit"]["integrity"]
            .clone()
    }

    /// What an attacker with database access does first: switch every refusal off.
    pub async fn attacker(&self) {
        let tables = [
            "audit_ledger",
            "ledger_checkpoints",
            "llm_runs",
            "trace_steps",
        ];
        for t in tables {
            match self.backend {
                Backend::Sqlite => {
                    for op in ["update", "delete"] {
                        self.sql(&format!("DROP TRIGGER IF EXISTS {t}_refuse_{op}"))
                            .await;
                    }
                }
                Backend::Postgres => {
                    self.sql(&format!("ALTER TABLE {t} DISABLE TRIGGER USER"))
                        .await
                }
            }
        }
    }

    pub async fn sql(&self, sql: &str) {
        self.app
            .store
            .exec(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Alpha's entries as the API returns them, in seq order.
    pub async fn entries(&self) -> Vec<Value> {
        let d = self
            .app
            .query(
                &self.keys.alpha_auditor,
                "{ auditEntries(first: 100) { edges { node { seq entryId category eventType \
                 entityType entityId actorType actorId actionReason decision beforeState \
                 afterState correlationId occurredAt recordedAt prevHash entryHash } } } }",
                json!({}),
            )
            .await;
        let mut v: Vec<Value> = d["auditEntries"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .collect();
        v.reverse();
        v
    }

    /// Renumbers entries with seq > `after` by `delta`, without tripping the primary key.
    async fn shift(&self, after: i64, delta: i64) {
        self.sql(&format!(
            "UPDATE audit_ledger SET seq = -(seq + {delta}) WHERE tenant_id = 'alpha' AND seq > {after}"
        ))
        .await;
        self.sql("UPDATE audit_ledger SET seq = -seq WHERE tenant_id = 'alpha' AND seq < 0")
            .await;
    }
}

/// (kind, seq) of every anomaly.
fn kinds(i: &Value) -> Vec<(String, Option<i64>)> {
    i["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["kind"].as_str().unwrap().to_string(), a["seq"].as_i64()))
        .collect()
}

fn has(i: &Value, kind: &str, seq: i64) -> bool {
    kinds(i).contains(&(kind.to_string(), Some(seq)))
}

fn sql_text(v: &Value) -> String {
    match v.as_str() {
        Some(s) => format!("'{}'", s.replace('\'', "''")),
        None => "NULL".into(),
    }
}

async fn untouched_ledger_verifies_clean(backend: Backend) {
    let l = setup(backend).await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("VERIFIED_UNANCHORED_TAIL"), "{i}");
    assert_eq!(i["mode"], json!("FULL"));
    assert_eq!(i["hashChainValid"], json!(true));
    assert_eq!(i["anomalies"], json!([]));
    assert_eq!(i["entriesChecked"], json!(l.head));
    assert_eq!(i["unanchoredEntries"], json!(l.head - l.s2));
    // Four anchored batches: the fixture's and x1..x3 (each run with one step).
    assert_eq!(i["anchorsChecked"], json!(4));

    // The verification itself is in the ledger; a checkpoint covers it and the tail.
    let entries = l.entries().await;
    let verified: Vec<&Value> = entries
        .iter()
        .filter(|e| e["eventType"] == "LEDGER_VERIFIED")
        .collect();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["category"], json!("INTEGRITY"));
    assert_eq!(
        verified[0]["afterState"]["status"],
        json!("VERIFIED_UNANCHORED_TAIL")
    );
    assert_eq!(verified[0]["afterState"]["entries_checked"], json!(l.head));
    let size = l.app.checkpoint("alpha").await;
    assert_eq!(size, head_seq(&l.app).await);
    let i = l.verify().await;
    assert_eq!(i["status"], json!("VERIFIED"), "{i}");
    assert_eq!(i["unanchoredEntries"], json!(0));

    // Incremental: starts after the newest checkpoint and reads what came since (the last
    // verification's own entry and that request's authorization and access records).
    let since = head_seq(&l.app).await - size;
    let d = l
        .app
        .query(
            &l.keys.alpha_auditor,
            "{ audit { integrity { mode status fromSeq entriesChecked } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["audit"]["integrity"],
        json!({"mode": "INCREMENTAL", "status": "VERIFIED_UNANCHORED_TAIL",
               "fromSeq": size + 1, "entriesChecked": since})
    );
}
both!(untouched_ledger_verifies_clean);

async fn flipped_byte_in_an_entry(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql("UPDATE audit_ledger SET entity_type = 'X' || substr(entity_type, 2) WHERE tenant_id = 'alpha' AND seq = 3").await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("BROKEN"));
    assert_eq!(i["hashChainValid"], json!(false));
    assert_eq!(i["firstBrokenSeq"], json!(3));
    assert_eq!(
        kinds(&i),
        vec![("ENTRY_HASH_MISMATCH".to_string(), Some(3))]
    );
}
both!(flipped_byte_in_an_entry);

async fn edited_entry_with_its_hash_updated(backend: Backend) {
    let l = setup(backend).await;
    let mut entries = l.entries().await;
    l.attacker().await;
    let e = &mut entries[2];
    e["actionReason"] = json!("approved by nobody");
    let hash = leaf_hash_from_spec("alpha", e);
    l.sql(&format!(
        "UPDATE audit_ledger SET action_reason = 'approved by nobody', entry_hash = '{hash}' \
         WHERE tenant_id = 'alpha' AND seq = 3"
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["firstBrokenSeq"], json!(4), "{i}");
    assert_eq!(
        kinds(&i),
        vec![
            ("BROKEN_PREV_LINK".to_string(), Some(4)),
            ("CHECKPOINT_ROOT_MISMATCH".to_string(), Some(l.s1)),
            ("CHECKPOINT_ROOT_MISMATCH".to_string(), Some(l.s2)),
        ]
    );
}
both!(edited_entry_with_its_hash_updated);

async fn rechained_history(backend: Backend) {
    let l = setup(backend).await;
    // The attacker knows the algorithm: every entry from seq 3 to the head is rewritten with
    // recomputed links and hashes.
    let mut entries = entity::audit_ledger::Entity::find()
        .filter(entity::audit_ledger::Column::TenantId.eq("alpha"))
        .order_by_asc(entity::audit_ledger::Column::Seq)
        .all(&l.app.db().conn)
        .await
        .unwrap();
    l.attacker().await;
    entries[2].action_reason = Some("rewritten".into());
    let mut prev = entries[1].entry_hash.clone();
    for e in entries.iter_mut().skip(2) {
        e.prev_hash = prev.clone();
        e.entry_hash = runledger::ledger::entry_hash(e);
        l.sql(&format!(
            "UPDATE audit_ledger SET action_reason = {}, prev_hash = '{}', entry_hash = '{}' \
             WHERE tenant_id = 'alpha' AND seq = {}",
            sql_text(&json!(e.action_reason)),
            e.prev_hash,
            e.entry_hash,
            e.seq
        ))
        .await;
        prev = e.entry_hash.clone();
    }
    let i = l.verify().await;
    assert_eq!(i["firstBrokenSeq"], json!(l.s1), "{i}");
    assert_eq!(i["hashChainValid"], json!(false));
    assert_eq!(
        kinds(&i),
        vec![
            ("CHECKPOINT_ROOT_MISMATCH".to_string(), Some(l.s1)),
            ("CHECKPOINT_ROOT_MISMATCH".to_string(), Some(l.s2)),
        ]
    );
}
both!(rechained_history);

async fn deleted_middle_entry(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql("DELETE FROM audit_ledger WHERE tenant_id = 'alpha' AND seq = 5")
        .await;
    let i = l.verify().await;
    assert_eq!(i["firstBrokenSeq"], json!(5), "{i}");
    assert_eq!(
        kinds(&i),
        vec![
            ("SEQ_GAP".to_string(), Some(5)),
            ("BROKEN_PREV_LINK".to_string(), Some(6)),
            ("CHECKPOINT_ROOT_MISMATCH".to_string(), Some(l.s1)),
            ("CHECKPOINT_ROOT_MISMATCH".to_string(), Some(l.s2)),
        ]
    );
    assert_eq!(i["anomalies"][0]["seqEnd"], json!(5));
}
both!(deleted_middle_entry);

async fn deleted_middle_entry_with_renumbering(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql("DELETE FROM audit_ledger WHERE tenant_id = 'alpha' AND seq = 5")
        .await;
    l.shift(5, -1).await;
    let i = l.verify().await;
    assert_eq!(i["firstBrokenSeq"], json!(5), "{i}");
    assert!(has(&i, "BROKEN_PREV_LINK", 5), "{i}");
    assert!(has(&i, "ENTRY_HASH_MISMATCH", 5), "{i}");
    assert!(has(&i, "CHECKPOINT_ROOT_MISMATCH", l.s1), "{i}");
    assert!(!kinds(&i).iter().any(|(k, _)| k == "SEQ_GAP"), "{i}");
}
both!(deleted_middle_entry_with_renumbering);

async fn tail_truncated_across_a_checkpoint(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql(&format!(
        "DELETE FROM audit_ledger WHERE tenant_id = 'alpha' AND seq >= {}",
        l.s1
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("BROKEN"));
    assert_eq!(i["firstBrokenSeq"], json!(l.s1), "{i}");
    assert_eq!(i["entriesChecked"], json!(l.s1 - 1));
    assert!(has(&i, "TRUNCATED", l.s1), "{i}");
    let truncated: Vec<&Value> = i["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "TRUNCATED" && a["seqEnd"] == json!(l.s2))
        .collect();
    assert_eq!(truncated.len(), 1, "{i}");
    // The evidence the removed anchors covered is now anchored nowhere.
    assert!(
        kinds(&i).contains(&("UNANCHORED_RECORD".to_string(), None)),
        "{i}"
    );
}
both!(tail_truncated_across_a_checkpoint);

async fn tail_truncated_after_the_last_checkpoint(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql(&format!(
        "DELETE FROM audit_ledger WHERE tenant_id = 'alpha' AND seq > {}",
        l.s2
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("BROKEN"));
    assert_eq!(i["firstBrokenSeq"], json!(l.s2 + 1), "{i}");
    assert!(has(&i, "TRUNCATED", l.s2 + 1), "{i}");
    let records: Vec<&str> = i["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "UNANCHORED_RECORD")
        .map(|a| a["record"].as_str().unwrap())
        .collect();
    assert_eq!(records, vec!["llm_runs:x3", "trace_steps:trace-x3#0"]);
}
both!(tail_truncated_after_the_last_checkpoint);

async fn two_swapped_entries(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql("UPDATE audit_ledger SET seq = -1 WHERE tenant_id = 'alpha' AND seq = 3")
        .await;
    l.sql("UPDATE audit_ledger SET seq = 3 WHERE tenant_id = 'alpha' AND seq = 4")
        .await;
    l.sql("UPDATE audit_ledger SET seq = 4 WHERE tenant_id = 'alpha' AND seq = -1")
        .await;
    let i = l.verify().await;
    assert_eq!(i["firstBrokenSeq"], json!(3), "{i}");
    assert!(has(&i, "REORDERED_SEQ", 3), "{i}");
    assert!(has(&i, "CHECKPOINT_ROOT_MISMATCH", l.s1), "{i}");
}
both!(two_swapped_entries);

async fn forged_inserted_entry(backend: Backend) {
    let l = setup(backend).await;
    let entries = l.entries().await;
    l.attacker().await;
    // A forged entry at seq 5 with a correct hash, linked to entry 4; later entries move up.
    l.shift(4, 1).await;
    let mut forged = entries[3].clone();
    forged["seq"] = json!(5);
    forged["entryId"] = json!("le_forged");
    forged["actionReason"] = json!("forged");
    forged["prevHash"] = entries[3]["entryHash"].clone();
    let hash = leaf_hash_from_spec("alpha", &forged);
    l.sql(&format!(
        "INSERT INTO audit_ledger (tenant_id, seq, id, category, event_type, entity_type, entity_id, \
         actor_type, actor_id, action_reason, decision, before_state, after_state, correlation_id, \
         occurred_at, recorded_at, prev_hash, entry_hash) \
         SELECT tenant_id, 5, 'le_forged', category, event_type, entity_type, entity_id, actor_type, \
         actor_id, 'forged', decision, before_state, after_state, correlation_id, occurred_at, \
         recorded_at, '{}', '{hash}' FROM audit_ledger WHERE tenant_id = 'alpha' AND seq = 4",
        entries[3]["entryHash"].as_str().unwrap()
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("BROKEN"));
    // The forged entry verifies on its own; the next one shows that it was slipped in.
    assert_eq!(i["firstBrokenSeq"], json!(5), "{i}");
    let reordered = i["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "REORDERED_SEQ")
        .unwrap();
    assert_eq!(
        (reordered["seq"].clone(), reordered["seqEnd"].clone()),
        (json!(5), json!(5))
    );
    assert!(has(&i, "CHECKPOINT_ROOT_MISMATCH", l.s1), "{i}");
}
both!(forged_inserted_entry);

/// An entry forged at the end with a correct hash is never reported clean: no signed
/// checkpoint covers it.
async fn forged_entry_at_the_tail_is_not_clean(backend: Backend) {
    let l = setup(backend).await;
    let entries = l.entries().await;
    // A copy of a producer entry (seq 5), appended after the head (read with SQL: reading the
    // entries was itself recorded).
    let seq = head_seq(&l.app).await + 1;
    let prev = l
        .app
        .store
        .query_strings(&format!(
            "SELECT entry_hash FROM audit_ledger WHERE tenant_id = 'alpha' AND seq = {}",
            seq - 1
        ))
        .await
        .remove(0);
    let mut forged = entries[4].clone();
    forged["seq"] = json!(seq);
    forged["entryId"] = json!("le_forged");
    forged["prevHash"] = json!(prev);
    let hash = leaf_hash_from_spec("alpha", &forged);
    l.sql(&format!(
        "INSERT INTO audit_ledger (tenant_id, seq, id, category, event_type, entity_type, entity_id, \
         actor_type, actor_id, action_reason, decision, before_state, after_state, correlation_id, \
         occurred_at, recorded_at, prev_hash, entry_hash) \
         SELECT tenant_id, {seq}, 'le_forged', category, event_type, entity_type, entity_id, actor_type, \
         actor_id, action_reason, decision, before_state, after_state, correlation_id, occurred_at, \
         recorded_at, '{prev}', '{hash}' FROM audit_ledger WHERE tenant_id = 'alpha' AND seq = 5"
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("VERIFIED_UNANCHORED_TAIL"), "{i}");
    assert_eq!(i["unanchoredEntries"], json!(seq - l.s2));
}
both!(forged_entry_at_the_tail_is_not_clean);

async fn checkpoint_note(l: &Ledger, size: i64) -> String {
    l.app
        .store
        .query_strings(&format!(
            "SELECT signed_note FROM ledger_checkpoints WHERE tenant_id = 'alpha' AND tree_size = {size}"
        ))
        .await
        .remove(0)
}

async fn checkpoint_signature_flipped(backend: Backend) {
    let l = setup(backend).await;
    let note_text = checkpoint_note(&l, l.s1).await;
    l.attacker().await;
    // Flip one bit of the last signature byte's base64 character.
    let sig_start = note_text.rfind(' ').unwrap() + 1;
    let mut bytes = note_text.into_bytes();
    let pos = sig_start + 20;
    bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    l.sql(&format!(
        "UPDATE ledger_checkpoints SET signed_note = {} WHERE tenant_id = 'alpha' AND tree_size = {}",
        sql_text(&json!(flipped)),
        l.s1
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["status"], json!("BROKEN"));
    assert_eq!(i["firstBrokenSeq"], json!(l.s1), "{i}");
    assert_eq!(kinds(&i), vec![("BAD_SIGNATURE".to_string(), Some(l.s1))]);
    // The chain itself is intact.
    assert_eq!(i["hashChainValid"], json!(true));
}
both!(checkpoint_signature_flipped);

async fn checkpoint_signed_by_another_key(backend: Backend) {
    let l = setup(backend).await;
    let root = l
        .app
        .store
        .query_strings(&format!(
            "SELECT root_hash FROM ledger_checkpoints WHERE tenant_id = 'alpha' AND tree_size = {}",
            l.s2
        ))
        .await
        .remove(0);
    let root: [u8; 32] = hex::decode(root).unwrap().try_into().unwrap();
    let other = NoteSigner::generate("runledger").unwrap();
    let forged = other.sign(&note::checkpoint_body(
        "runledger/alpha",
        l.s2 as u64,
        &root,
    ));
    l.attacker().await;
    l.sql(&format!(
        "UPDATE ledger_checkpoints SET signed_note = {} WHERE tenant_id = 'alpha' AND tree_size = {}",
        sql_text(&json!(forged)),
        l.s2
    ))
    .await;
    let i = l.verify().await;
    assert_eq!(i["firstBrokenSeq"], json!(l.s2), "{i}");
    assert_eq!(
        kinds(&i),
        vec![("UNKNOWN_KEY_SIGNATURE".to_string(), Some(l.s2))]
    );
}
both!(checkpoint_signed_by_another_key);

async fn edited_anchored_run(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql("UPDATE llm_runs SET cost_cents = cost_cents + 1 WHERE tenant_id = 'alpha' AND run_id = 'r1'")
        .await;
    let i = l.verify().await;
    // The fixture's evidence is anchored by the last fixture entry: seq s1.
    assert_eq!(i["firstBrokenSeq"], json!(l.s1), "{i}");
    assert_eq!(kinds(&i), vec![("ANCHOR_MISMATCH".to_string(), Some(l.s1))]);
    assert_eq!(i["anomalies"][0]["record"], json!("llm_runs:r1"));
    assert_eq!(i["hashChainValid"], json!(true));
}
both!(edited_anchored_run);

/// Even with the step's stored record hash recomputed, the anchor's Merkle root gives it away.
async fn edited_anchored_trace_step(backend: Backend) {
    let l = setup(backend).await;
    let mut step = entity::trace_steps::Entity::find()
        .filter(entity::trace_steps::Column::TenantId.eq("alpha"))
        .filter(entity::trace_steps::Column::TraceId.eq("trace-x1"))
        .one(&l.app.db().conn)
        .await
        .unwrap()
        .unwrap();
    step.skill_name = "nothing-happened".into();
    let hash = runledger::canonical::hash_json(&runledger::canonical::step_json(&step));
    l.attacker().await;
    l.sql(&format!(
        "UPDATE trace_steps SET skill_name = 'nothing-happened', record_hash = '{hash}' \
         WHERE tenant_id = 'alpha' AND trace_id = 'trace-x1'"
    ))
    .await;
    let i = l.verify().await;
    // x1's anchor is the first entry after s1.
    assert_eq!(i["firstBrokenSeq"], json!(l.s1 + 1), "{i}");
    assert_eq!(
        kinds(&i),
        vec![("ANCHOR_MISMATCH".to_string(), Some(l.s1 + 1))]
    );
}
both!(edited_anchored_trace_step);

/// Inclusion and consistency proofs served over GraphQL verify against the roots computed
/// here from the entries (RFC 6962 §2.1.1 / §2.1.2, verified as in RFC 9162).
async fn proofs_verify_against_independent_roots(backend: Backend) {
    let l = setup(backend).await;
    let entries = l.entries().await;
    let leaves = leaves_of(&entries);
    let d = l
        .app
        .query(
            &l.keys.alpha_auditor,
            "query($seq: Int!, $size: Int!, $from: Int!) { audit {
                inclusionProof(seq: $seq, treeSize: $size) { leafIndex treeSize leafHash rootHash hashes signedNote }
                consistencyProof(fromSize: $from, toSize: $size) { fromRoot toRoot hashes }
                signingKey { verifierKey origin algorithm }
             } }",
            json!({"seq": 3, "size": l.s2, "from": l.s1}),
        )
        .await;
    let a = &d["audit"];
    let n = l.s2 as usize;
    let root = merkle_root(&leaves[..n]);
    let p = &a["inclusionProof"];
    assert_eq!(p["rootHash"], json!(hex::encode(root)));
    assert_eq!(p["leafHash"], json!(hex::encode(leaves[2])));
    let path: Vec<[u8; 32]> = p["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    assert!(runledger::ledger::proof::verify_inclusion(
        &leaves[2], 2, n as u64, &path, &root
    ));
    // The signed checkpoint of that size comes with it and opens with the published key.
    let verifier =
        note::NoteVerifier::parse(a["signingKey"]["verifierKey"].as_str().unwrap()).unwrap();
    let cp = note::open_checkpoint(p["signedNote"].as_str().unwrap(), &[verifier]).unwrap();
    assert_eq!((cp.tree_size, cp.root), (n as u64, root));
    assert_eq!(cp.origin, "runledger/alpha");
    assert_eq!(a["signingKey"]["origin"], json!("runledger/alpha"));

    let c = &a["consistencyProof"];
    let old_root = merkle_root(&leaves[..l.s1 as usize]);
    assert_eq!(c["fromRoot"], json!(hex::encode(old_root)));
    assert_eq!(c["toRoot"], json!(hex::encode(root)));
    let proof: Vec<[u8; 32]> = c["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    assert!(runledger::ledger::proof::verify_consistency(
        l.s1 as u64,
        n as u64,
        &old_root,
        &root,
        &proof
    ));

    // The public key is also served at a well-known URL, without authentication.
    let text = l
        .app
        .client
        .get(format!(
            "{}/.well-known/runledger/checkpoint-key",
            l.app.address
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text.trim(),
        a["signingKey"]["verifierKey"].as_str().unwrap()
    );

    // Out-of-range requests are refused with a code.
    let (code, msg) = l
        .app
        .query_error(
            Some(&l.keys.alpha_auditor),
            "{ audit { inclusionProof(seq: 999) { rootHash } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(msg.contains("seq"), "{msg}");
}
both!(proofs_verify_against_independent_roots);

/// The INTERNAL error a corrupt stored value must produce at `path`: coded INTERNAL, saying no
/// more than `internal error`.
fn assert_internal_at(body: &Value, path: &[Value]) {
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["extensions"]["code"], json!("INTERNAL"), "{body}");
    assert_eq!(errors[0]["message"], json!("internal error"), "{body}");
    assert_eq!(errors[0]["path"], json!(path), "{body}");
}

/// A stored vocabulary value outside its vocabulary (a step status, a ledger category edited
/// in the database) is an INTERNAL error at that field, the same whether the row is answered
/// in one pass (plain fields only) or by its resolvers (a fragment on an interface), and
/// whether the field is non-null (`TraceStep.status`) or nullable (`AuditEntry.category`).
async fn corrupt_stored_values_are_internal_errors(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql(
        "UPDATE trace_steps SET status = 'NOT_A_STATUS' \
         WHERE tenant_id = 'alpha' AND trace_id = 'trace-x1'",
    )
    .await;
    for selection in ["stepIndex status", "stepIndex status ... on Node { id }"] {
        let query =
            format!("{{ llmRun(runId: \"x1\") {{ trace {{ steps {{ {selection} }} }} }} }}");
        let (_, body) = l
            .app
            .post(Some(&l.keys.alpha_viewer), &json!({ "query": query }))
            .await;
        assert_internal_at(
            &body,
            &[
                json!("llmRun"),
                json!("trace"),
                json!("steps"),
                json!(0),
                json!("status"),
            ],
        );
    }
    for selection in ["seq category", "seq category ... on Node { id }"] {
        // The newest entry, which `auditEntries(first: 1)` reads (every request before this
        // one wrote its own).
        let newest = head_seq(&l.app).await;
        l.sql(&format!(
            "UPDATE audit_ledger SET category = 'NOT_A_CATEGORY' \
             WHERE tenant_id = 'alpha' AND seq = {newest}"
        ))
        .await;
        let query = format!("{{ auditEntries(first: 1) {{ nodes {{ {selection} }} }} }}");
        let (_, body) = l
            .app
            .post(Some(&l.keys.alpha_auditor), &json!({ "query": query }))
            .await;
        assert_internal_at(
            &body,
            &[
                json!("auditEntries"),
                json!("nodes"),
                json!(0),
                json!("category"),
            ],
        );
        let entry = &body["data"]["auditEntries"]["nodes"][0];
        assert_eq!(entry["seq"], json!(newest), "{body}");
        // The field is null (item 8 of issue 15 makes it present as `null`; today it is left out).
        assert_eq!(entry["category"], Value::Null, "{body}");
    }
}
both!(corrupt_stored_values_are_internal_errors);

/// The facade reads stored enums for evidence metadata too (a run's origin): a value outside
/// its vocabulary is the same INTERNAL error there, never a silent "no origin".
async fn corrupt_stored_metadata_values_are_internal_errors(backend: Backend) {
    let l = setup(backend).await;
    l.attacker().await;
    l.sql(
        "UPDATE llm_runs SET origin = 'NOT_AN_ORIGIN' WHERE tenant_id = 'alpha' AND run_id = 'x1'",
    )
    .await;
    let (_, body) = l
        .app
        .post(
            Some(&l.keys.alpha_viewer),
            &json!({"query": "{ llmRuns(first: 100) { metadata { tenantId } } }"}),
        )
        .await;
    assert_internal_at(&body, &[json!("llmRuns")]);
    assert_eq!(body["data"], Value::Null, "{body}");
}
both!(corrupt_stored_metadata_values_are_internal_errors);
