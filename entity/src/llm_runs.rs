//! One immutable record per LLM run.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "llm_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    pub trace_id: Option<String>,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_cents: i64,
    pub execution_status: String,
    pub started_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub source: String,
    pub is_synthetic: bool,
    pub human_actor_id: Option<String>,
    pub agent_id: Option<String>,
    pub system_id: Option<String>,
    pub origin: String,
    pub recorded_at: DateTimeUtc,
    /// Hex SHA-256 of the canonical record, computed when it was written.
    pub record_hash: String,
    /// Entity id of the ledger entry (EVIDENCE_BATCH_ANCHORED) whose Merkle root covers this
    /// record; not part of the record's hash.
    pub anchor_id: Option<String>,
    /// Session (conversation) the run belongs to.
    pub session_id: Option<String>,
    /// What the root span said, as on a step (`trace_steps`).
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub attributes: Option<String>,
    pub content: Option<String>,
    pub content_sha256: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
