//! The per-tenant, hash-chained audit ledger: its canonical entry encoding and the one appender
//! every ledger write goes through (verification, checkpoints and proofs live in submodules;
//! the format is specified in docs/ledger.md, the layer this module sits in in
//! docs/architecture.md).
//!
//! Entry hash (docs/ledger.md gives the byte-exact specification): an RFC 6962 leaf hash,
//! `SHA-256(0x00 ‖ encoding)`, where the encoding is a length-prefixed sequence of every stored
//! field, tenant, seq and `prev_hash` included. Entries are ordered by `seq` (1, 2, 3… with no
//! gaps), never by time; the first entry's `prev_hash` is 64 zeros.

pub mod anchor;
pub mod appender;
pub mod background;
pub mod checkpoint;
pub mod ledgers;
pub mod merkle;
pub mod note;
pub mod proof;
mod scan;
pub mod signing;
pub mod verify;
pub mod vocabulary;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::{canonical_json, micros, write_timestamp};
use crate::domain::{AccessDecision, ActorType, LedgerCategory};
use crate::error::{AppResult, Context};
use entity::audit_ledger;

/// `prev_hash` of the first entry of every tenant.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The ledger that anchors global system records written by operators. Its name cannot be a
/// tenant id (those never start with `_`), so no key can read or write it as a tenant.
pub const PLATFORM_LEDGER: &str = "_platform";

/// Version tag, the first field of every encoded entry.
pub const ENCODING_VERSION: &str = "runledger.ledger.v1";

/// A fact to append; the appender assigns tenant, seq, hashes and `recorded_at`, and the id
/// unless the entry brings one (a producer event's id, which makes a re-send recognisable).
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub id: Option<String>,
    pub category: LedgerCategory,
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: String,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub action_reason: Option<String>,
    pub decision: Option<AccessDecision>,
    pub before_state: Option<Value>,
    pub after_state: Option<Value>,
    pub correlation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Appends one field: `0x00` when absent, else `0x01 ‖ u32 big-endian length ‖ UTF-8 bytes`.
pub(crate) fn push_field(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            out.extend_from_slice(&(text.len() as u32).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// The canonical byte encoding of a stored entry (everything but `entry_hash`).
pub fn encode_entry(e: &audit_ledger::Model) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    encode_entry_into(&mut out, e);
    out
}

/// Appends the canonical encoding of `e` to `out` (which verification reuses between entries).
pub fn encode_entry_into(out: &mut Vec<u8>, e: &audit_ledger::Model) {
    encode_fields_into(out, &EntryFields::of(e));
}

/// The stored fields of an entry, borrowed: from a model, or straight from a database row
/// (verification hashes rows without copying their text into a model).
pub(crate) struct EntryFields<'a> {
    pub tenant_id: &'a str,
    pub seq: i64,
    pub prev_hash: &'a str,
    pub id: &'a str,
    pub category: &'a str,
    pub event_type: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub actor_type: &'a str,
    pub actor_id: Option<&'a str>,
    pub action_reason: Option<&'a str>,
    pub decision: Option<&'a str>,
    pub before_state: Option<&'a str>,
    pub after_state: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub entry_hash: &'a str,
}

impl<'a> EntryFields<'a> {
    pub fn of(e: &'a audit_ledger::Model) -> Self {
        EntryFields {
            tenant_id: &e.tenant_id,
            seq: e.seq,
            prev_hash: &e.prev_hash,
            id: &e.id,
            category: &e.category,
            event_type: &e.event_type,
            entity_type: &e.entity_type,
            entity_id: &e.entity_id,
            actor_type: &e.actor_type,
            actor_id: e.actor_id.as_deref(),
            action_reason: e.action_reason.as_deref(),
            decision: e.decision.as_deref(),
            before_state: e.before_state.as_deref(),
            after_state: e.after_state.as_deref(),
            correlation_id: e.correlation_id.as_deref(),
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
            entry_hash: &e.entry_hash,
        }
    }

    /// An owned model of these fields.
    pub fn to_model(&self) -> audit_ledger::Model {
        let own = |v: Option<&str>| v.map(str::to_string);
        audit_ledger::Model {
            tenant_id: self.tenant_id.to_string(),
            seq: self.seq,
            id: self.id.to_string(),
            category: self.category.to_string(),
            event_type: self.event_type.to_string(),
            entity_type: self.entity_type.to_string(),
            entity_id: self.entity_id.to_string(),
            actor_type: self.actor_type.to_string(),
            actor_id: own(self.actor_id),
            action_reason: own(self.action_reason),
            decision: own(self.decision),
            before_state: own(self.before_state),
            after_state: own(self.after_state),
            correlation_id: own(self.correlation_id),
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash.to_string(),
            entry_hash: self.entry_hash.to_string(),
        }
    }
}

/// Appends the canonical encoding of an entry's fields (everything but `entry_hash`).
pub(crate) fn encode_fields_into(out: &mut Vec<u8>, e: &EntryFields<'_>) {
    push_field(out, Some(ENCODING_VERSION));
    push_field(out, Some(e.tenant_id));
    push_written(out, |o| o.extend_from_slice(e.seq.to_string().as_bytes()));
    push_field(out, Some(e.prev_hash));
    push_field(out, Some(e.id));
    push_field(out, Some(e.category));
    push_field(out, Some(e.event_type));
    push_field(out, Some(e.entity_type));
    push_field(out, Some(e.entity_id));
    push_field(out, Some(e.actor_type));
    push_field(out, e.actor_id);
    push_field(out, e.action_reason);
    push_field(out, e.decision);
    push_field(out, e.before_state);
    push_field(out, e.after_state);
    push_field(out, e.correlation_id);
    push_written(out, |o| write_timestamp(o, &e.occurred_at));
    push_written(out, |o| write_timestamp(o, &e.recorded_at));
}

/// Appends a present field whose text `write` produces: `0x01`, its length, the text.
fn push_written(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    out.push(1);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// RFC 6962 leaf hash of the entry, lower-case hex.
pub fn entry_hash(e: &audit_ledger::Model) -> String {
    hex::encode(entry_hash_bytes(e, &mut Vec::with_capacity(512)))
}

/// RFC 6962 leaf hash of the entry, encoding into `buffer` (cleared first).
pub fn entry_hash_bytes(e: &audit_ledger::Model, buffer: &mut Vec<u8>) -> [u8; 32] {
    fields_hash_bytes(&EntryFields::of(e), buffer)
}

/// RFC 6962 leaf hash of an entry's fields, encoding into `buffer` (cleared first).
pub(crate) fn fields_hash_bytes(e: &EntryFields<'_>, buffer: &mut Vec<u8>) -> [u8; 32] {
    buffer.clear();
    buffer.push(0);
    encode_fields_into(buffer, e);
    Sha256::digest(&buffer[..]).into()
}

/// Appends entries for one tenant inside the caller's write transaction, which the caller
/// commits (so evidence and the ledger entry that anchors it land together or not at all).
///
/// Appends of one tenant are serialized: on PostgreSQL by a transaction-scoped advisory lock on
/// the tenant (which also orders appends across server processes sharing the database), on
/// SQLite by the single-writer gate every write transaction holds (see `db::Db::begin_write`).
pub async fn append<C: ConnectionTrait>(
    txn: &C,
    tenant_id: &str,
    entries: Vec<NewEntry>,
) -> AppResult<Vec<audit_ledger::Model>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    lock_tenant(txn, tenant_id).await?;
    let head = audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(tenant_id))
        .order_by_desc(audit_ledger::Column::Seq)
        .limit(1)
        .one(txn)
        .await
        .with_context(|| format!("read the ledger head of tenant {tenant_id}"))?;
    let (mut seq, mut prev) = match head {
        Some(h) => (h.seq, h.entry_hash),
        None => (0, GENESIS_HASH.to_string()),
    };
    let recorded_at = micros(Utc::now());
    let mut stored = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let mut model = audit_ledger::Model {
            tenant_id: tenant_id.to_string(),
            seq,
            id: e.id.unwrap_or_else(|| crate::ids::new_id("le")),
            category: e.category.as_str().to_string(),
            event_type: e.event_type,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            actor_type: e.actor_type.as_str().to_string(),
            actor_id: e.actor_id,
            action_reason: e.action_reason,
            decision: e.decision.map(|d| d.as_str().to_string()),
            before_state: e.before_state.as_ref().map(canonical_json),
            after_state: e.after_state.as_ref().map(canonical_json),
            correlation_id: e.correlation_id,
            occurred_at: micros(e.occurred_at),
            recorded_at,
            prev_hash: prev,
            entry_hash: String::new(),
        };
        model.entry_hash = entry_hash(&model);
        prev = model.entry_hash.clone();
        stored.push(model);
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        insert_unnest(txn, &stored)
            .await
            .with_context(|| format!("append ledger batch for tenant {tenant_id}"))?;
        return Ok(stored);
    }
    // Multi-row INSERTs (bounded to stay under SQLite's bound-parameter limit): the batch
    // shares statements and the caller's commit.
    for chunk in stored.chunks(500) {
        let rows = chunk.iter().cloned().map(active_entry);
        audit_ledger::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .with_context(|| format!("append ledger batch for tenant {tenant_id}"))?;
    }
    Ok(stored)
}

/// PostgreSQL: one `INSERT … SELECT FROM UNNEST(arrays)` whatever the number of entries, so
/// the statement is parsed and planned once per connection rather than once per batch size.
/// The driver cannot bind NULL array elements: each nullable column travels with a boolean
/// array saying which of its elements are NULL (an empty string stays an empty string).
async fn insert_unnest<C: ConnectionTrait>(
    txn: &C,
    entries: &[audit_ledger::Model],
) -> Result<(), sea_orm::DbErr> {
    fn text<F: Fn(&audit_ledger::Model) -> String>(
        e: &[audit_ledger::Model],
        f: F,
    ) -> sea_orm::Value {
        e.iter().map(f).collect::<Vec<String>>().into()
    }
    fn nullable<F: Fn(&audit_ledger::Model) -> Option<&String>>(
        e: &[audit_ledger::Model],
        f: F,
    ) -> [sea_orm::Value; 2] {
        [
            e.iter()
                .map(|m| f(m).cloned().unwrap_or_default())
                .collect::<Vec<String>>()
                .into(),
            e.iter()
                .map(|m| f(m).is_none())
                .collect::<Vec<bool>>()
                .into(),
        ]
    }
    let [actor, actor_null] = nullable(entries, |m| m.actor_id.as_ref());
    let [reason, reason_null] = nullable(entries, |m| m.action_reason.as_ref());
    let [decision, decision_null] = nullable(entries, |m| m.decision.as_ref());
    let [before, before_null] = nullable(entries, |m| m.before_state.as_ref());
    let [after, after_null] = nullable(entries, |m| m.after_state.as_ref());
    let [correlation, correlation_null] = nullable(entries, |m| m.correlation_id.as_ref());
    let values = vec![
        text(entries, |m| m.tenant_id.clone()),
        entries.iter().map(|m| m.seq).collect::<Vec<i64>>().into(),
        text(entries, |m| m.id.clone()),
        text(entries, |m| m.category.clone()),
        text(entries, |m| m.event_type.clone()),
        text(entries, |m| m.entity_type.clone()),
        text(entries, |m| m.entity_id.clone()),
        text(entries, |m| m.actor_type.clone()),
        actor,
        actor_null,
        reason,
        reason_null,
        decision,
        decision_null,
        before,
        before_null,
        after,
        after_null,
        correlation,
        correlation_null,
        entries
            .iter()
            .map(|m| m.occurred_at)
            .collect::<Vec<DateTime<Utc>>>()
            .into(),
        entries
            .iter()
            .map(|m| m.recorded_at)
            .collect::<Vec<DateTime<Utc>>>()
            .into(),
        text(entries, |m| m.prev_hash.clone()),
        text(entries, |m| m.entry_hash.clone()),
    ];
    let sql = "INSERT INTO audit_ledger (tenant_id, seq, id, category, event_type, entity_type, \
               entity_id, actor_type, actor_id, action_reason, decision, before_state, \
               after_state, correlation_id, occurred_at, recorded_at, prev_hash, entry_hash) \
               SELECT t, s, i, c, et, ent, eni, at, \
               CASE WHEN a_n THEN NULL ELSE a END, CASE WHEN r_n THEN NULL ELSE r END, \
               CASE WHEN d_n THEN NULL ELSE d END, CASE WHEN b_n THEN NULL ELSE b END, \
               CASE WHEN af_n THEN NULL ELSE af END, CASE WHEN co_n THEN NULL ELSE co END, \
               o, rec, p, h \
               FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
               $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], $11::text[], \
               $12::bool[], $13::text[], $14::bool[], $15::text[], $16::bool[], $17::text[], \
               $18::bool[], $19::text[], $20::bool[], $21::timestamptz[], $22::timestamptz[], \
               $23::text[], $24::text[]) \
               AS u(t, s, i, c, et, ent, eni, at, a, a_n, r, r_n, d, d_n, b, b_n, af, af_n, \
               co, co_n, o, rec, p, h)";
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await
    .map(|_| ())
}

fn active_entry(m: audit_ledger::Model) -> audit_ledger::ActiveModel {
    audit_ledger::ActiveModel {
        tenant_id: Set(m.tenant_id),
        seq: Set(m.seq),
        id: Set(m.id),
        category: Set(m.category),
        event_type: Set(m.event_type),
        entity_type: Set(m.entity_type),
        entity_id: Set(m.entity_id),
        actor_type: Set(m.actor_type),
        actor_id: Set(m.actor_id),
        action_reason: Set(m.action_reason),
        decision: Set(m.decision),
        before_state: Set(m.before_state),
        after_state: Set(m.after_state),
        correlation_id: Set(m.correlation_id),
        occurred_at: Set(m.occurred_at),
        recorded_at: Set(m.recorded_at),
        prev_hash: Set(m.prev_hash),
        entry_hash: Set(m.entry_hash),
    }
}

/// Serializes the tenant's writes until the transaction ends: on PostgreSQL a
/// transaction-scoped advisory lock (taken again by the same transaction, it stacks), which also
/// orders writers in other server processes; on SQLite the write gate already does.
pub async fn lock_tenant<C: ConnectionTrait>(txn: &C, tenant_id: &str) -> AppResult<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [advisory_key(tenant_id).into()],
        ))
        .await
        .with_context(|| format!("lock the writes of tenant {tenant_id}"))?;
    }
    Ok(())
}

/// A stable 64-bit advisory-lock key for a tenant (first 8 bytes of SHA-256 of its id).
fn advisory_key(tenant_id: &str) -> i64 {
    let digest = Sha256::digest(format!("runledger.ledger.lock:{tenant_id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The newest seq of a tenant's ledger (`None` for an empty ledger).
pub(crate) async fn head_seq<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
) -> AppResult<Option<i64>> {
    audit_ledger::Entity::find()
        .select_only()
        .column(audit_ledger::Column::Seq)
        .filter(audit_ledger::Column::TenantId.eq(tenant_id))
        .order_by_desc(audit_ledger::Column::Seq)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await
        .context("read a ledger head")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The worked example of docs/ledger.md.
    fn example() -> audit_ledger::Model {
        audit_ledger::Model {
            tenant_id: "acme".into(),
            seq: 1,
            id: "le_00000000000000000000000000000001".into(),
            category: "GOVERNANCE".into(),
            event_type: "POLICY_RULE_CHANGED".into(),
            entity_type: "policy".into(),
            entity_id: "pol-cost-ceiling".into(),
            actor_type: "HUMAN".into(),
            actor_id: Some("alice@example.com".into()),
            action_reason: None,
            decision: None,
            before_state: Some(r#"{"limit_cents":500}"#.into()),
            after_state: Some(r#"{"limit_cents":800}"#.into()),
            correlation_id: None,
            occurred_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap(),
            prev_hash: GENESIS_HASH.into(),
            entry_hash: String::new(),
        }
    }

    #[test]
    fn worked_example_of_the_specification() {
        let e = example();
        let bytes = encode_entry(&e);
        assert_eq!(&bytes[..5], &[1, 0, 0, 0, 19]);
        assert_eq!(entry_hash(&e), EXAMPLE_HASH);
    }

    const EXAMPLE_HASH: &str = "b3cb235d010bd67602b671b79da32d63a781f3054680b82478557b31da13a201";
}
