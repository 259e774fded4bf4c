//! The export job queue (bookkeeping, not evidence): the builder's state and progress for each
//! requested export. `state` is QUEUED, RUNNING, DONE or FAILED.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "export_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub export_id: String,
    /// The scope as requested, canonical JSON.
    pub spec: String,
    pub state: String,
    /// Builds started (a build interrupted by a crash is started again).
    pub attempts: i32,
    /// The worker holding the job while RUNNING.
    pub lease_owner: Option<String>,
    /// Microseconds since the epoch until which `lease_owner` holds the job.
    pub lease_until_us: Option<i64>,
    /// Records the export holds, once counted.
    pub records_total: Option<i64>,
    /// Records written so far.
    pub records_written: i64,
    /// Bytes of the finished file.
    pub size_bytes: Option<i64>,
    /// Tree size of the checkpoint the bundle is pinned to.
    pub checkpoint_size: Option<i64>,
    /// SHA-256 over the sorted hashes of the records exported (`export::evidence_digest`).
    pub evidence_digest: Option<String>,
    /// Why the job failed.
    pub error: Option<String>,
    /// When the job was queued, microseconds since the epoch (queue order).
    pub queued_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
