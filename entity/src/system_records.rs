//! Infrastructure events: global (no tenant) or per tenant, correlated to runs by correlation id.
//! Keyed by owner and id: each tenant's ids are its own, and the global records share one key
//! space of their own (the database counts a NULL tenant as one owner).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "system_records")]
pub struct Model {
    /// Unique per owner only. SeaORM wants a primary key of non-null columns, so `id` is
    /// declared as one for the ORM; the database's key is `(tenant_id, id)`
    /// (m20261201_000005_system_record_owner_keys). Look records up by owner and id, never with
    /// `find_by_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `None` for a global record, visible to every tenant.
    pub tenant_id: Option<String>,
    pub component: String,
    pub event_type: String,
    pub severity: String,
    pub summary: String,
    /// Canonical JSON text (RFC 8785), kept as text so its hash never depends on the backend.
    pub details: Option<String>,
    pub caused_by: Option<String>,
    pub correlation_id: Option<String>,
    pub origin: String,
    pub occurred_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    pub record_hash: String,
    /// Entity id of the ledger entry (EVIDENCE_BATCH_ANCHORED) whose Merkle root covers this
    /// record; not part of the record's hash.
    pub anchor_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
