//! Telemetry samples (one metric value at one instant) correlated to a run.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "telemetry_samples")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub run_id: String,
    pub sampled_at: DateTimeUtc,
    pub metric: String,
    pub value: f64,
    pub unit: Option<String>,
    pub recorded_at: DateTimeUtc,
    pub record_hash: String,
    /// Entity id of the ledger entry (EVIDENCE_BATCH_ANCHORED) whose Merkle root covers this
    /// record; not part of the record's hash.
    pub anchor_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
