//! Idempotent writes. Inside the write transaction, every record of a batch is looked up by
//! its key: a record stored with the same content (everything but `recorded_at`, which a
//! retry cannot reproduce) is an idempotent retry and is not written again; a different record
//! under the same key is a CONFLICT naming the key, and nothing of the batch is written.
//!
//! Lookups are one statement per table (PostgreSQL: the keys as one array; SQLite: per chunk
//! of keys), not one per record.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, IdenStatic,
    QueryFilter, Statement,
};
use serde_json::Value;

use super::{EvidenceBatch, RecordRef};
use crate::canonical::{
    StepDigest, canonical_json, governance_json, run_json, step_json, system_json, telemetry_json,
};
use crate::error::{AppError, AppResult, Context};
use crate::ledger::NewEntry;
use entity::{
    audit_ledger, governance_events, llm_runs, system_records, telemetry_samples, trace_steps,
};

/// Keys per lookup statement: far below SQLite's bound-parameter limit.
const KEYS_PER_LOOKUP: usize = 500;

/// Canonical content of a record without the time it was stored.
fn content(mut record: Value) -> String {
    if let Some(map) = record.as_object_mut() {
        map.remove("recorded_at");
    }
    canonical_json(&record)
}

fn step_key(s: &trace_steps::Model) -> String {
    format!("{}#{}", s.trace_id, s.step_index)
}

/// References to every evidence record of a batch, in leaf order.
pub(super) fn refs(batch: &EvidenceBatch) -> Vec<RecordRef> {
    let mut out = Vec::with_capacity(batch.evidence_records());
    let r = |kind, key: &str, hash: &str| RecordRef {
        kind,
        key: key.to_string(),
        checksum: hash.to_string(),
    };
    out.extend(
        batch
            .runs
            .iter()
            .map(|x| r("llm_runs", &x.run_id, &x.record_hash)),
    );
    out.extend(
        batch
            .steps
            .iter()
            .map(|x| r("trace_steps", &step_key(x), &x.record_hash)),
    );
    out.extend(
        batch
            .governance
            .iter()
            .map(|x| r("governance_events", &x.id, &x.record_hash)),
    );
    out.extend(
        batch
            .system_records
            .iter()
            .map(|x| r("system_records", &x.id, &x.record_hash)),
    );
    out.extend(
        batch
            .telemetry
            .iter()
            .map(|x| r("telemetry_samples", &x.id, &x.record_hash)),
    );
    out
}

/// How one kind of record is keyed, compared and described.
struct Kind<M> {
    table: &'static str,
    noun: &'static str,
    key: fn(&M) -> String,
    json: fn(&M) -> Value,
    hash: fn(&M) -> String,
}

/// What the lookups decided besides "write it".
struct Verdicts {
    present: Vec<RecordRef>,
    rejected: Vec<String>,
    /// Conflicts refuse one record (partial success) rather than the batch.
    lenient: bool,
}

impl Verdicts {
    /// A conflict: the batch fails, or (lenient) the record is refused and noted.
    fn conflict(&mut self, noun: &str, key: &str, why: &str) -> AppResult<()> {
        if self.lenient {
            self.rejected.push(format!("{noun} `{key}` {why}"));
            return Ok(());
        }
        Err(AppError::Conflict(format!(
            "{noun} `{key}` {why}; nothing of the batch was written"
        )))
    }
}

/// Splits incoming records into those to write and those already present.
fn partition<M>(
    kind: &Kind<M>,
    incoming: Vec<M>,
    stored: Vec<M>,
    v: &mut Verdicts,
) -> AppResult<Vec<M>> {
    let stored: HashMap<String, M> = stored.into_iter().map(|m| ((kind.key)(&m), m)).collect();
    // Contents are only canonicalized when keys meet: this runs under the tenant's write lock.
    let mut in_batch: HashMap<String, usize> = HashMap::new();
    let mut fresh: Vec<M> = Vec::with_capacity(incoming.len());
    for m in incoming {
        let key = (kind.key)(&m);
        if let Some(&earlier) = in_batch.get(&key) {
            if content((kind.json)(&fresh[earlier])) != content((kind.json)(&m)) {
                v.conflict(
                    kind.noun,
                    &key,
                    "appears twice in the batch with different content",
                )?;
                continue;
            }
            v.present.push(RecordRef {
                kind: kind.table,
                key,
                checksum: (kind.hash)(&m),
            });
            continue;
        }
        match stored.get(&key) {
            Some(existing) if content((kind.json)(existing)) == content((kind.json)(&m)) => {
                v.present.push(RecordRef {
                    kind: kind.table,
                    key,
                    checksum: (kind.hash)(existing),
                })
            }
            Some(_) => v.conflict(kind.noun, &key, "already exists with different content")?,
            None => {
                in_batch.insert(key, fresh.len());
                fresh.push(m);
            }
        }
    }
    Ok(fresh)
}

/// Where steps that arrived as spans go: recognised by span id when already stored, else
/// appended after the highest index of their trace, in time order.
struct SpanSlots {
    stored_spans: HashMap<(String, String), trace_steps::Model>,
    next_index: HashMap<String, i32>,
}

impl SpanSlots {
    fn new(stored: &[trace_steps::Model], incoming: &[trace_steps::Model]) -> Self {
        let mut next_index: HashMap<String, i32> = HashMap::new();
        for s in stored.iter().chain(incoming) {
            let next = next_index.entry(s.trace_id.clone()).or_insert(0);
            *next = (*next).max(s.step_index + 1);
        }
        let stored_spans = stored
            .iter()
            .filter_map(|s| {
                s.span_id
                    .clone()
                    .map(|span| ((s.trace_id.clone(), span), s.clone()))
            })
            .collect();
        SpanSlots {
            stored_spans,
            next_index,
        }
    }

    /// Content of a span-step, without what the server assigns (index, recording time).
    fn content(s: &trace_steps::Model) -> String {
        let mut v = step_json(s);
        if let Some(map) = v.as_object_mut() {
            map.remove("step_index");
        }
        content(v)
    }

    /// Places `spans` (with their [`StepDigest`]s, in the same order) and seals them.
    fn place(
        mut self,
        spans: Vec<trace_steps::Model>,
        digests: Vec<StepDigest>,
        v: &mut Verdicts,
    ) -> AppResult<Vec<trace_steps::Model>> {
        debug_assert_eq!(spans.len(), digests.len());
        let mut spans: Vec<_> = spans.into_iter().zip(digests).collect();
        spans.sort_by(|(a, _), (b, _)| {
            (&a.trace_id, a.occurred_at, &a.span_id).cmp(&(&b.trace_id, b.occurred_at, &b.span_id))
        });
        let mut placed: Vec<trace_steps::Model> = Vec::with_capacity(spans.len());
        let mut in_batch: HashMap<(String, String), usize> = HashMap::new();
        for (mut s, digest) in spans {
            let span_id = s.span_id.clone().unwrap_or_default();
            let key = (s.trace_id.clone(), span_id.clone());
            let what = format!("{span_id}` of trace `{}", s.trace_id);
            if let Some(existing) = self.stored_spans.get(&key) {
                if Self::content(existing) != Self::content(&s) {
                    v.conflict("span", &what, "already exists with different content")?;
                    continue;
                }
                v.present.push(RecordRef {
                    kind: "trace_steps",
                    key: step_key(existing),
                    checksum: existing.record_hash.clone(),
                });
                continue;
            }
            if let Some(&earlier) = in_batch.get(&key) {
                if Self::content(&placed[earlier]) != Self::content(&s) {
                    v.conflict(
                        "span",
                        &what,
                        "appears twice in the batch with different content",
                    )?;
                }
                continue;
            }
            let next = self.next_index.entry(s.trace_id.clone()).or_insert(0);
            if *next > super::input::MAX_STEP_INDEX {
                v.conflict(
                    "span",
                    &what,
                    "cannot be placed: its trace has no free step index",
                )?;
                continue;
            }
            s.step_index = *next;
            *next += 1;
            s.record_hash = digest.finish(s.step_index);
            in_batch.insert(key, placed.len());
            placed.push(s);
        }
        Ok(placed)
    }
}

/// Whose rows a lookup reads.
#[derive(Clone, Copy)]
enum Owner<'a, C> {
    /// Rows whose `C` column is this tenant.
    Tenant(C, &'a str),
    /// Rows whose `C` column is NULL: the global system records.
    Global(C),
}

/// Rows of `E` whose `key` column is among `keys` and whose owner is `owner`.
///
/// PostgreSQL gets the keys as one array parameter joined to the table, which plans as a
/// nested loop over the key's index whatever the table's statistics say. An `IN (…)` list over
/// a table that grew since its last ANALYZE (a bulk load) was planned as a scan of the tenant's
/// rows with the list as a filter: hundreds of milliseconds per lookup, growing with the table.
/// SQLite takes chunks of `IN (…)`, which it always answers through the index.
async fn lookup<E: EntityTrait>(
    txn: &DatabaseTransaction,
    key: E::Column,
    owner: Owner<'_, E::Column>,
    keys: &[String],
    what: &str,
) -> AppResult<Vec<E::Model>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        let mut sql = format!(
            "SELECT t.* FROM unnest($1::text[]) AS k(key) JOIN {} t ON t.{} = k.key",
            E::default().table_name(),
            key.as_str()
        );
        let mut values: Vec<sea_orm::Value> = vec![keys.to_vec().into()];
        match owner {
            Owner::Tenant(column, id) => {
                sql.push_str(&format!(" AND t.{} = $2", column.as_str()));
                values.push(id.into());
            }
            Owner::Global(column) => sql.push_str(&format!(" AND t.{} IS NULL", column.as_str())),
        }
        return E::find()
            .from_raw_sql(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .all(txn)
            .await
            .context(what.to_string());
    }
    let mut rows = Vec::new();
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        let select = E::find().filter(key.is_in(chunk.iter().cloned()));
        let select = match owner {
            Owner::Tenant(column, id) => select.filter(column.eq(id)),
            Owner::Global(column) => select.filter(column.is_null()),
        };
        rows.extend(select.all(txn).await.context(what.to_string())?);
    }
    Ok(rows)
}

/// Splits producer ledger entries that carry an id into new ones and re-sends: a stored entry
/// with the same id and the same content is already present; other content is a conflict.
async fn split_ledger(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    entries: Vec<NewEntry>,
    v: &mut Verdicts,
) -> AppResult<Vec<NewEntry>> {
    let ids: Vec<String> = entries.iter().filter_map(|e| e.id.clone()).collect();
    if ids.is_empty() {
        return Ok(entries);
    }
    let stored: HashMap<String, audit_ledger::Model> = lookup::<audit_ledger::Entity>(
        txn,
        audit_ledger::Column::Id,
        Owner::Tenant(audit_ledger::Column::TenantId, tenant_id),
        &ids,
        "look up stored producer events",
    )
    .await?
    .into_iter()
    .map(|m| (m.id.clone(), m))
    .collect();
    // What a producer said, in the shape it is stored in.
    let said = |e: &NewEntry| {
        (
            e.category.as_str().to_string(),
            e.event_type.clone(),
            e.entity_type.clone(),
            e.entity_id.clone(),
            e.actor_type.as_str().to_string(),
            e.actor_id.clone(),
            e.action_reason.clone(),
            e.before_state.as_ref().map(canonical_json),
            e.after_state.as_ref().map(canonical_json),
            e.correlation_id.clone(),
            crate::canonical::micros(e.occurred_at),
        )
    };
    let kept = |m: &audit_ledger::Model| {
        (
            m.category.clone(),
            m.event_type.clone(),
            m.entity_type.clone(),
            m.entity_id.clone(),
            m.actor_type.clone(),
            m.actor_id.clone(),
            m.action_reason.clone(),
            m.before_state.clone(),
            m.after_state.clone(),
            m.correlation_id.clone(),
            m.occurred_at,
        )
    };
    let mut fresh: Vec<NewEntry> = Vec::with_capacity(entries.len());
    let mut in_batch: HashMap<String, usize> = HashMap::new();
    for e in entries {
        let Some(id) = e.id.clone() else {
            fresh.push(e);
            continue;
        };
        if let Some(&earlier) = in_batch.get(&id) {
            if said(&fresh[earlier]) != said(&e) {
                v.conflict(
                    "audit event",
                    &id,
                    "appears twice in the batch with different content",
                )?;
            }
            continue;
        }
        match stored.get(&id) {
            Some(m) if kept(m) == said(&e) => v.present.push(RecordRef {
                kind: "audit_ledger",
                key: id,
                checksum: m.entry_hash.clone(),
            }),
            Some(_) => v.conflict("audit event", &id, "already exists with different content")?,
            None => {
                in_batch.insert(id, fresh.len());
                fresh.push(e);
            }
        }
    }
    Ok(fresh)
}

/// Splits a sealed batch into what must be written and what is already stored.
pub(super) async fn split(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    mut batch: EvidenceBatch,
    span_digests: Vec<StepDigest>,
) -> AppResult<(EvidenceBatch, Vec<RecordRef>, Vec<String>)> {
    let mut v = Verdicts {
        present: Vec::new(),
        rejected: Vec::new(),
        lenient: batch.reject_conflicts,
    };

    let ids: Vec<String> = batch.runs.iter().map(|r| r.run_id.clone()).collect();
    let stored = lookup::<llm_runs::Entity>(
        txn,
        llm_runs::Column::RunId,
        Owner::Tenant(llm_runs::Column::TenantId, tenant_id),
        &ids,
        "look up stored runs",
    )
    .await?;
    let kind = Kind {
        table: "llm_runs",
        noun: "run",
        key: |r: &llm_runs::Model| r.run_id.clone(),
        json: run_json,
        hash: |r| r.record_hash.clone(),
    };
    batch.runs = partition(&kind, std::mem::take(&mut batch.runs), stored, &mut v)?;

    let mut traces: Vec<String> = batch
        .steps
        .iter()
        .chain(batch.spans.iter())
        .map(|s| s.trace_id.clone())
        .collect();
    traces.sort();
    traces.dedup();
    let stored = lookup::<trace_steps::Entity>(
        txn,
        trace_steps::Column::TraceId,
        Owner::Tenant(trace_steps::Column::TenantId, tenant_id),
        &traces,
        "look up stored trace steps",
    )
    .await?;
    let spans = SpanSlots::new(&stored, &batch.steps);
    let kind = Kind {
        table: "trace_steps",
        noun: "trace step",
        key: step_key,
        json: step_json,
        hash: |s: &trace_steps::Model| s.record_hash.clone(),
    };
    batch.steps = partition(&kind, std::mem::take(&mut batch.steps), stored, &mut v)?;
    let placed = spans.place(std::mem::take(&mut batch.spans), span_digests, &mut v)?;
    batch.steps.extend(placed);

    let ids: Vec<String> = batch.governance.iter().map(|g| g.id.clone()).collect();
    let stored = lookup::<governance_events::Entity>(
        txn,
        governance_events::Column::Id,
        Owner::Tenant(governance_events::Column::TenantId, tenant_id),
        &ids,
        "look up stored governance events",
    )
    .await?;
    let kind = Kind {
        table: "governance_events",
        noun: "governance event",
        key: |g: &governance_events::Model| g.id.clone(),
        json: governance_json,
        hash: |g| g.record_hash.clone(),
    };
    batch.governance = partition(&kind, std::mem::take(&mut batch.governance), stored, &mut v)?;

    // System record ids are keyed per owner: a tenant's batch meets only the tenant's own
    // records, the platform ledger's batch (global records, `store` lets in nothing else) only
    // the global ones. Another owner's record under the same id is neither a conflict nor a
    // retry, and nothing about it is revealed.
    let ids: Vec<String> = batch.system_records.iter().map(|s| s.id.clone()).collect();
    let owner = if tenant_id == crate::ledger::PLATFORM_LEDGER {
        Owner::Global(system_records::Column::TenantId)
    } else {
        Owner::Tenant(system_records::Column::TenantId, tenant_id)
    };
    let stored = lookup::<system_records::Entity>(
        txn,
        system_records::Column::Id,
        owner,
        &ids,
        "look up stored system records",
    )
    .await?;
    let kind = Kind {
        table: "system_records",
        noun: "system record",
        key: |s: &system_records::Model| s.id.clone(),
        json: system_json,
        hash: |s| s.record_hash.clone(),
    };
    batch.system_records = partition(
        &kind,
        std::mem::take(&mut batch.system_records),
        stored,
        &mut v,
    )?;

    let ids: Vec<String> = batch.telemetry.iter().map(|t| t.id.clone()).collect();
    let stored = lookup::<telemetry_samples::Entity>(
        txn,
        telemetry_samples::Column::Id,
        Owner::Tenant(telemetry_samples::Column::TenantId, tenant_id),
        &ids,
        "look up stored telemetry samples",
    )
    .await?;
    let kind = Kind {
        table: "telemetry_samples",
        noun: "telemetry sample",
        key: |t: &telemetry_samples::Model| t.id.clone(),
        json: telemetry_json,
        hash: |t| t.record_hash.clone(),
    };
    batch.telemetry = partition(&kind, std::mem::take(&mut batch.telemetry), stored, &mut v)?;

    batch.ledger_entries = split_ledger(
        txn,
        tenant_id,
        std::mem::take(&mut batch.ledger_entries),
        &mut v,
    )
    .await?;

    Ok((batch, v.present, v.rejected))
}
