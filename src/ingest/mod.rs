//! The evidence write path: seals records (microsecond timestamps, record hashes), writes a
//! tenant's batch of runs, steps, governance events, system records and telemetry samples in one
//! transaction, and anchors it in the tenant's audit ledger. (Export records are written by
//! [`crate::export`] alone.)
//!
//! Anchoring: when a batch writes at least one evidence record, the ledger receives an
//! `EVIDENCE_BATCH_ANCHORED` entry whose `after_state` commits to the RFC 6962 Merkle root of
//! the batch's record hashes, and every record written keeps the anchor's entity id in its
//! `anchor_id`, so a verifier can recompute the root from the stored records alone. The leaves
//! are the record hashes in [`LEAF_ORDER`] (runs, then steps, governance events, system records
//! and telemetry samples), each table's hashes in ascending byte order (see [`anchor_leaves`]).
//! Export records are bookkeeping, not evidence: they are stored but not hashed or anchored.
//!
//! Global system records (no tenant) belong to no tenant's ledger: they are written only in a
//! batch of the platform ledger ([`crate::ledger::PLATFORM_LEDGER`]), which anchors them, and a
//! tenant's batch that carries one is refused.
//!
//! All or nothing: a failure anywhere drops the transaction, so nothing of the batch (records
//! or ledger entries) is written.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    InsertMany, IntoActiveModel, Iterable, SqlErr, Statement,
};
use serde_json::{Value, json};

use crate::canonical::{
    StepDigest, governance_json, hash_json, micros, run_json, step_json, system_json,
    telemetry_json,
};
use crate::db::Db;
use crate::error::{AppError, AppResult, Context};
use crate::ids;
use crate::ledger::anchor::{LEAF_ORDER, anchor_leaves};
use crate::ledger::{self, NewEntry, merkle, vocabulary};

pub mod conventions;
mod idempotency;
pub mod input;
pub mod otlp;
mod span_json;
use entity::{
    audit_ledger, governance_events, llm_runs, system_records, telemetry_samples, trace_steps,
};

/// Bound parameters per INSERT statement. SQLite refuses more than 32,766 and PostgreSQL more
/// than 65,535; staying well below both leaves room for whatever the driver adds.
const MAX_BOUND_PARAMETERS: usize = 20_000;

/// Batches at most this large are sealed on the calling task; larger ones are hashed on the
/// blocking pool so that thousands of SHA-256 computations do not stall the async workers.
const INLINE_SEAL_LIMIT: usize = 256;

/// A batch of evidence for one tenant, written atomically.
#[derive(Debug, Default)]
pub struct EvidenceBatch {
    pub runs: Vec<llm_runs::Model>,
    pub steps: Vec<trace_steps::Model>,
    /// Steps that arrived as OpenTelemetry spans: keyed by `span_id`; their `step_index` is
    /// assigned when they are written (after the trace's highest stored index, in time order).
    pub spans: Vec<trace_steps::Model>,
    pub governance: Vec<governance_events::Model>,
    /// Records with `tenant_id: None` are global (visible to every tenant): only a batch of
    /// the platform ledger carries them, and only them.
    pub system_records: Vec<system_records::Model>,
    pub telemetry: Vec<telemetry_samples::Model>,
    /// Producer audit events, appended in this order before the batch's anchor entry.
    pub ledger_entries: Vec<NewEntry>,
    /// Refuse conflicting records one by one (reported in `StoredBatch::rejected`) instead of
    /// failing the batch: OTLP's partial success.
    pub reject_conflicts: bool,
}

impl EvidenceBatch {
    /// Number of evidence records (everything but ledger entries).
    pub fn evidence_records(&self) -> usize {
        self.runs.len()
            + self.steps.len()
            + self.spans.len()
            + self.governance.len()
            + self.system_records.len()
            + self.telemetry.len()
    }

    /// True when there is nothing at all to write.
    pub fn is_empty(&self) -> bool {
        self.evidence_records() == 0 && self.ledger_entries.is_empty()
    }
}

/// What [`store`] wrote.
#[derive(Clone, Debug)]
pub struct StoredBatch {
    /// Evidence records written.
    pub records: usize,
    /// What this batch wrote, in batch order.
    pub stored: Vec<RecordRef>,
    /// Records that were already stored with the same content (an idempotent retry): not
    /// written again.
    pub already_present: Vec<RecordRef>,
    /// Records refused one by one (only with `reject_conflicts`), with why.
    pub rejected: Vec<String>,
    /// Hex Merkle root of the record hashes, when at least one evidence record was written.
    pub merkle_root: Option<String>,
    /// The ledger entries appended: the producer entries, then the anchor entry (if any).
    pub ledger: Vec<audit_ledger::Model>,
}

/// One evidence record, by kind and key, with the hash of its canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef {
    /// Table of the record: `llm_runs`, `trace_steps`, `governance_events`, `system_records`,
    /// `telemetry_samples`.
    pub kind: &'static str,
    /// The record's key as a client names it (`<traceId>#<index>` for steps).
    pub key: String,
    /// Hex SHA-256 of the canonical record.
    pub checksum: String,
}

/// Truncates a run's timestamps to microseconds and sets its record hash.
pub fn seal_run(r: &mut llm_runs::Model) {
    r.started_at = micros(r.started_at);
    r.completed_at = r.completed_at.map(micros);
    r.recorded_at = micros(r.recorded_at);
    r.record_hash = hash_json(&run_json(r));
}

/// Truncates a step's timestamps to microseconds and sets its record hash.
pub fn seal_step(s: &mut trace_steps::Model) {
    truncate_step_times(s);
    s.record_hash = hash_json(&step_json(s));
}

/// Truncates a step's timestamps to microseconds (the precision both backends store).
fn truncate_step_times(s: &mut trace_steps::Model) {
    s.occurred_at = micros(s.occurred_at);
    s.recorded_at = micros(s.recorded_at);
}

/// Truncates a governance event's timestamps to microseconds and sets its record hash.
pub fn seal_governance(g: &mut governance_events::Model) {
    g.occurred_at = micros(g.occurred_at);
    g.recorded_at = micros(g.recorded_at);
    g.record_hash = hash_json(&governance_json(g));
}

/// Truncates a system record's timestamps to microseconds and sets its record hash.
pub fn seal_system_record(s: &mut system_records::Model) {
    s.occurred_at = micros(s.occurred_at);
    s.recorded_at = micros(s.recorded_at);
    s.record_hash = hash_json(&system_json(s));
}

/// Truncates a telemetry sample's timestamps to microseconds and sets its record hash.
pub fn seal_telemetry(t: &mut telemetry_samples::Model) {
    t.sampled_at = micros(t.sampled_at);
    t.recorded_at = micros(t.recorded_at);
    t.record_hash = hash_json(&telemetry_json(t));
}

/// Seals every record in place (microsecond timestamps, record hashes). A span's hash needs
/// the step index it gets inside the write transaction: it is hashed here up to the index
/// ([`StepDigest`], one per span in order) and finished there.
fn seal(mut batch: EvidenceBatch) -> (EvidenceBatch, Vec<StepDigest>) {
    batch.runs.iter_mut().for_each(seal_run);
    batch.steps.iter_mut().for_each(seal_step);
    batch.spans.iter_mut().for_each(truncate_step_times);
    batch.governance.iter_mut().for_each(seal_governance);
    batch.system_records.iter_mut().for_each(seal_system_record);
    batch.telemetry.iter_mut().for_each(seal_telemetry);
    let digests = batch.spans.iter().map(StepDigest::of).collect();
    (batch, digests)
}

/// The anchor of the records a batch writes: the RFC 6962 Merkle root of their record hashes
/// in [`anchor_leaves`] order. `None` when nothing new is written.
fn anchor_of(batch: &EvidenceBatch) -> AppResult<Option<(String, Value)>> {
    fn parsed<'a>(hashes: impl Iterator<Item = &'a String>) -> AppResult<Vec<[u8; 32]>> {
        hashes
            .map(|hash| {
                merkle::parse_hash(hash).ok_or_else(|| {
                    AppError::internal(
                        "compute the Merkle root of an evidence batch",
                        format!("record hash `{hash}` is not 32 bytes of hex"),
                    )
                })
            })
            .collect()
    }
    let leaves = anchor_leaves([
        parsed(batch.runs.iter().map(|r| &r.record_hash))?,
        parsed(batch.steps.iter().map(|s| &s.record_hash))?,
        parsed(batch.governance.iter().map(|g| &g.record_hash))?,
        parsed(batch.system_records.iter().map(|s| &s.record_hash))?,
        parsed(batch.telemetry.iter().map(|t| &t.record_hash))?,
    ]);
    if leaves.is_empty() {
        return Ok(None);
    }
    let merkle_root = hex::encode(merkle::root(&leaves));
    let after_state = json!({
        "records": leaves.len(),
        "merkle_root": merkle_root,
        "leaf_order": LEAF_ORDER,
        "counts": {
            "llm_runs": batch.runs.len(),
            "trace_steps": batch.steps.len(),
            "governance_events": batch.governance.len(),
            "system_records": batch.system_records.len(),
            "telemetry_samples": batch.telemetry.len(),
        },
        "first_record_hash": leaves.first().map(hex::encode),
        "last_record_hash": leaves.last().map(hex::encode),
    });
    Ok(Some((merkle_root, after_state)))
}

/// Refuses records that name another tenant than the one the batch is written for, and global
/// system records outside the platform ledger (whose batches carry nothing else).
fn check_tenant(tenant_id: &str, batch: &EvidenceBatch) -> AppResult<()> {
    let foreign = |kind: &str, key: &str, other: &str| {
        Err(AppError::bad_input(format!(
            "{kind} `{key}` belongs to tenant `{other}`, not to `{tenant_id}`"
        )))
    };
    for r in &batch.runs {
        if r.tenant_id != tenant_id {
            return foreign("run", &r.run_id, &r.tenant_id);
        }
    }
    for s in &batch.steps {
        if s.tenant_id != tenant_id {
            return foreign(
                "step",
                &format!("{}#{}", s.trace_id, s.step_index),
                &s.tenant_id,
            );
        }
    }
    for g in &batch.governance {
        if g.tenant_id != tenant_id {
            return foreign("governance event", &g.id, &g.tenant_id);
        }
    }
    let platform = tenant_id == crate::ledger::PLATFORM_LEDGER;
    for s in &batch.system_records {
        match s.tenant_id.as_deref() {
            Some(other) if other != tenant_id || platform => {
                return foreign("system record", &s.id, other);
            }
            None if !platform => {
                return Err(AppError::bad_input(format!(
                    "system record `{}` is global: global records are anchored in the platform \
                     ledger (`runledger ingest system-records --global`), not in tenant \
                     `{tenant_id}`'s",
                    s.id
                )));
            }
            _ => {}
        }
    }
    for t in &batch.telemetry {
        if t.tenant_id != tenant_id {
            return foreign("telemetry sample", &t.id, &t.tenant_id);
        }
    }
    Ok(())
}

/// Writes a batch of evidence for one tenant atomically and anchors it in the tenant's ledger.
///
/// Every timestamp is truncated to microseconds and every `record_hash` is recomputed (whatever
/// the caller put there). A record already stored with the same content (all but its
/// `recorded_at`) is an idempotent retry: reported in `already_present`, not written again. A
/// different record under an existing key fails the whole batch with [`AppError::Conflict`]
/// naming the key; nothing is overwritten.
pub async fn store(db: &Db, tenant_id: &str, batch: EvidenceBatch) -> AppResult<StoredBatch> {
    check_tenant(tenant_id, &batch)?;
    if batch.is_empty() {
        return Ok(StoredBatch {
            records: 0,
            stored: Vec::new(),
            already_present: Vec::new(),
            rejected: Vec::new(),
            merkle_root: None,
            ledger: Vec::new(),
        });
    }
    // Sealed before the write transaction begins, so hashing never lengthens the time the
    // (on SQLite, single) writer is held.
    let (batch, span_digests) = if batch.evidence_records() <= INLINE_SEAL_LIMIT {
        seal(batch)
    } else {
        tokio::task::spawn_blocking(move || seal(batch))
            .await
            .with_context(|| format!("hash an evidence batch for tenant {tenant_id}"))?
    };

    let tx = db.begin_write().await?;
    // Lookups, index assignment and inserts must see no concurrent writer of the tenant, or two
    // requests could both find a key free (or give two spans one step index).
    ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let (mut batch, already_present, rejected) =
        idempotency::split(&tx.txn, tenant_id, batch, span_digests).await?;
    let stored = idempotency::refs(&batch);
    let records = batch.evidence_records();
    let anchor = anchor_of(&batch)?;
    let anchor_id = ids::new_id("eb");
    if anchor.is_some() {
        link_to_anchor(&mut batch, &anchor_id);
    }
    // Derived sums of the runs, kept with them (read before the rows are inserted).
    crate::rollup::maintain(&tx.txn, tenant_id, &batch.runs, &batch.steps).await?;
    insert_rows::<llm_runs::ActiveModel, _>(&tx.txn, tenant_id, "llm_runs", batch.runs).await?;
    if db.backend() == DbBackend::Postgres {
        insert_steps_unnest(&tx.txn, tenant_id, &batch.steps).await?;
    } else {
        insert_rows::<trace_steps::ActiveModel, _>(&tx.txn, tenant_id, "trace_steps", batch.steps)
            .await?;
    }
    insert_rows::<governance_events::ActiveModel, _>(
        &tx.txn,
        tenant_id,
        "governance_events",
        batch.governance,
    )
    .await?;
    insert_rows::<system_records::ActiveModel, _>(
        &tx.txn,
        tenant_id,
        "system_records",
        batch.system_records,
    )
    .await?;
    insert_rows::<telemetry_samples::ActiveModel, _>(
        &tx.txn,
        tenant_id,
        "telemetry_samples",
        batch.telemetry,
    )
    .await?;

    let mut entries = batch.ledger_entries;
    let merkle_root = match anchor {
        Some((merkle_root, after_state)) => {
            entries.push(anchor_entry(anchor_id, after_state));
            Some(merkle_root)
        }
        None => None,
    };
    let ledger = ledger::append(&tx.txn, tenant_id, entries).await?;
    tx.commit().await?;
    Ok(StoredBatch {
        records,
        stored,
        already_present,
        rejected,
        merkle_root,
        ledger,
    })
}

/// Stores system records given as JSON text (an array shaped like GraphQL's
/// `SystemRecordInput`), validated by the same rules: global ones (anchored in the platform
/// ledger) or one tenant's. The operator path of the command line.
pub async fn operator_system_records(
    db: &Db,
    json_text: &str,
    global: bool,
    tenant_id: Option<&str>,
) -> AppResult<StoredBatch> {
    use async_graphql::InputType;
    let value: Value = serde_json::from_str(json_text)
        .map_err(|e| AppError::bad_input(format!("the file is not JSON: {e}")))?;
    let records = Vec::<input::SystemRecordInput>::parse(Some(
        async_graphql::Value::from_json(value).map_err(|e| {
            AppError::bad_input(format!("the file is not a list of system records: {e}"))
        })?,
    ))
    .map_err(|e| {
        AppError::bad_input(format!(
            "the file is not a list of system records: {}",
            e.into_server_error(Default::default()).message
        ))
    })?;
    let check = input::Check::new(Utc::now());
    let (ledger, batch) = match (global, tenant_id) {
        (true, None) => (
            crate::ledger::PLATFORM_LEDGER,
            check.system_records_of(None, &records)?,
        ),
        (false, Some(t)) => {
            crate::auth::validate_tenant_id(t)?;
            (t, check.system_records(t, &records)?)
        }
        _ => {
            return Err(AppError::bad_input(
                "say either --global or --tenant T, not both",
            ));
        }
    };
    store(db, ledger, batch).await
}

/// Points every evidence record of the batch at its anchor entry.
fn link_to_anchor(batch: &mut EvidenceBatch, anchor_id: &str) {
    let id = || Some(anchor_id.to_string());
    batch.runs.iter_mut().for_each(|r| r.anchor_id = id());
    batch.steps.iter_mut().for_each(|s| s.anchor_id = id());
    batch.governance.iter_mut().for_each(|g| g.anchor_id = id());
    batch
        .system_records
        .iter_mut()
        .for_each(|s| s.anchor_id = id());
    batch.telemetry.iter_mut().for_each(|t| t.anchor_id = id());
}

/// The ledger entry that commits to a batch's Merkle root.
fn anchor_entry(anchor_id: String, after_state: Value) -> NewEntry {
    vocabulary::batch_anchored(anchor_id, after_state, micros(Utc::now()))
}

/// Inserts rows with multi-row INSERT statements, each bounded by [`MAX_BOUND_PARAMETERS`]:
/// one round trip per few thousand values instead of one per row.
async fn insert_rows<A, M>(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    table: &str,
    rows: Vec<M>,
) -> AppResult<()>
where
    A: ActiveModelTrait,
    M: IntoActiveModel<A>,
{
    let columns = <<A::Entity as EntityTrait>::Column as Iterable>::iter().count();
    let rows_per_statement = (MAX_BOUND_PARAMETERS / columns.max(1)).max(1);
    let mut rows = rows.into_iter();
    loop {
        let chunk: Vec<M> = rows.by_ref().take(rows_per_statement).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        InsertMany::<A>::many(chunk)
            .exec_without_returning(txn)
            .await
            .map_err(|e| write_error(e, tenant_id, table))?;
    }
}

/// Steps are the bulk of every batch. On PostgreSQL they go in as one column array per field
/// (`INSERT … SELECT * FROM UNNEST(…)`): one bound parameter per column however many rows,
/// instead of a statement with tens of thousands of parameters that PostgreSQL must parse and
/// plan.
async fn insert_steps_unnest(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    steps: &[trace_steps::Model],
) -> AppResult<()> {
    if steps.is_empty() {
        return Ok(());
    }
    fn column<T, F>(steps: &[trace_steps::Model], f: F) -> sea_orm::Value
    where
        F: Fn(&trace_steps::Model) -> T,
        sea_orm::Value: From<Vec<T>>,
    {
        sea_orm::Value::from(steps.iter().map(f).collect::<Vec<T>>())
    }
    let values = vec![
        column(steps, |s| s.tenant_id.clone()),
        column(steps, |s| s.trace_id.clone()),
        column(steps, |s| s.step_index),
        column(steps, |s| s.occurred_at),
        column(steps, |s| s.skill_name.clone()),
        column(steps, |s| s.status.clone()),
        column(steps, |s| s.outcome_category.clone()),
        column(steps, |s| s.cost_cents),
        column(steps, |s| s.duration_ms),
        // The driver cannot bind NULL array elements: no span id travels as '' (span ids are
        // hex, never empty) and becomes NULL again in the statement.
        column(steps, |s| s.span_id.clone().unwrap_or_default()),
        column(steps, |s| s.recorded_at),
        column(steps, |s| s.record_hash.clone()),
        // One batch, one anchor: a single value for every row.
        steps.first().and_then(|s| s.anchor_id.clone()).into(),
        // The span's own fields: NULL travels as '' (none of them is ever empty) and counts as
        // -1 (none is ever negative).
        column(steps, |s| s.provider.clone().unwrap_or_default()),
        column(steps, |s| s.request_model.clone().unwrap_or_default()),
        column(steps, |s| s.response_model.clone().unwrap_or_default()),
        column(steps, |s| s.input_tokens.unwrap_or(-1)),
        column(steps, |s| s.output_tokens.unwrap_or(-1)),
        column(steps, |s| s.cache_read_tokens.unwrap_or(-1)),
        column(steps, |s| s.cache_creation_tokens.unwrap_or(-1)),
        column(steps, |s| s.session_id.clone().unwrap_or_default()),
        column(steps, |s| s.attributes.clone().unwrap_or_default()),
        column(steps, |s| s.content.clone().unwrap_or_default()),
        column(steps, |s| s.content_sha256.clone().unwrap_or_default()),
    ];
    let sql = "INSERT INTO trace_steps (tenant_id, trace_id, step_index, occurred_at, skill_name, \
               status, outcome_category, cost_cents, duration_ms, span_id, recorded_at, record_hash, \
               anchor_id, provider, request_model, response_model, input_tokens, output_tokens, \
               cache_read_tokens, cache_creation_tokens, session_id, attributes, content, \
               content_sha256) \
               SELECT t, tr, i, o, sk, st, oc, c, d, NULLIF(sp, ''), r, h, $13::text, \
               NULLIF(pv, ''), NULLIF(rqm, ''), NULLIF(rsm, ''), NULLIF(it, -1), NULLIF(ot, -1), \
               NULLIF(crt, -1), NULLIF(cct, -1), NULLIF(se, ''), NULLIF(at, ''), NULLIF(co, ''), \
               NULLIF(cs, '') \
               FROM UNNEST($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], \
               $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[], \
               $11::timestamptz[], $12::text[], $14::text[], $15::text[], $16::text[], \
               $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::text[], \
               $22::text[], $23::text[], $24::text[]) \
               AS u(t, tr, i, o, sk, st, oc, c, d, sp, r, h, pv, rqm, rsm, it, ot, crt, cct, se, \
               at, co, cs)";
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await
    .map(|_| ())
    .map_err(|e| write_error(e, tenant_id, "trace_steps"))
}

/// A duplicate key is the client's conflict; anything else is internal.
fn write_error(err: DbErr, tenant_id: &str, table: &str) -> AppError {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
        return AppError::Conflict(format!(
            "a {table} record of this batch already exists under the same key for tenant \
             `{tenant_id}`; nothing of the batch was written"
        ));
    }
    AppError::internal(format!("insert {table} rows for tenant {tenant_id}"), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone};

    fn at(nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 30, 12, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::nanoseconds(i64::from(nanos))
    }

    fn run(tenant: &str, id: &str) -> llm_runs::Model {
        llm_runs::Model {
            anchor_id: None,
            tenant_id: tenant.into(),
            run_id: id.into(),
            trace_id: Some(format!("trace_{id}")),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            input_tokens: 10,
            output_tokens: 5,
            cost_cents: 1,
            execution_status: "SUCCEEDED".into(),
            started_at: at(1_234_567),
            completed_at: Some(at(999_999_999)),
            source: "sdk".into(),
            is_synthetic: false,
            human_actor_id: None,
            agent_id: Some("agent".into()),
            system_id: None,
            origin: "AGENT".into(),
            recorded_at: at(5_000_001),
            record_hash: "caller supplied".into(),
            session_id: None,
            cache_read_tokens: None,
            cache_creation_tokens: None,
            attributes: None,
            content: None,
            content_sha256: None,
        }
    }

    #[test]
    fn sealing_truncates_then_hashes_and_anchors_in_leaf_order() {
        let batch = EvidenceBatch {
            runs: vec![run("t", "a"), run("t", "b")],
            ..Default::default()
        };
        let (sealed, _) = seal(batch);
        let a = &sealed.runs[0];
        assert_eq!(a.started_at, at(1_234_000));
        assert_eq!(a.record_hash, hash_json(&run_json(a)));
        // One table: its hashes in ascending byte order.
        let mut leaves: Vec<[u8; 32]> = sealed
            .runs
            .iter()
            .filter_map(|r| merkle::parse_hash(&r.record_hash))
            .collect();
        leaves.sort();
        let (merkle_root, after_state) = anchor_of(&sealed).expect("hashes").expect("an anchor");
        assert_eq!(merkle_root, hex::encode(merkle::root(&leaves)));
        assert_eq!(after_state["records"], json!(2));
        assert_eq!(after_state["counts"]["llm_runs"], json!(2));
    }

    #[test]
    fn an_empty_batch_is_not_anchored() {
        let (sealed, _) = seal(EvidenceBatch::default());
        assert!(anchor_of(&sealed).expect("hashes").is_none());
    }

    #[test]
    fn records_of_another_tenant_are_refused() {
        let batch = EvidenceBatch {
            runs: vec![run("other", "a")],
            ..Default::default()
        };
        assert!(matches!(
            check_tenant("t", &batch),
            Err(AppError::BadUserInput(_))
        ));
    }
}
