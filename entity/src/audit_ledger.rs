//! The per-tenant, hash-chained audit ledger. `seq` has no gaps; `entry_hash` covers every other
//! column (see docs/ledger.md).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_ledger")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: String,
    pub category: String,
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action_reason: Option<String>,
    pub decision: Option<String>,
    /// Canonical JSON text (RFC 8785) of the state before the change.
    pub before_state: Option<String>,
    /// Canonical JSON text (RFC 8785) of the state after the change.
    pub after_state: Option<String>,
    pub correlation_id: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    pub prev_hash: String,
    pub entry_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
