//! Infrastructure events: global (no tenant) or per tenant, correlated to runs by correlation id.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "system_records")]
pub struct Model {
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
