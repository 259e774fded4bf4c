//! A policy interaction of a run: which policy and rule decided what about which entity.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "governance_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub run_id: String,
    pub occurred_at: DateTimeUtc,
    pub event_type: String,
    pub policy_id: Option<String>,
    pub rule_id: Option<String>,
    pub decision: String,
    pub entity_type: String,
    pub entity_id: String,
    pub reason: Option<String>,
    pub recorded_at: DateTimeUtc,
    pub record_hash: String,
    /// Entity id of the ledger entry (EVIDENCE_BATCH_ANCHORED) whose Merkle root covers this
    /// record; not part of the record's hash.
    pub anchor_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
