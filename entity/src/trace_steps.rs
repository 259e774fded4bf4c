//! One step of a run's trace, keyed by trace id and step index.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trace_steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub trace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub step_index: i32,
    pub occurred_at: DateTimeUtc,
    pub skill_name: String,
    pub status: String,
    pub outcome_category: String,
    pub cost_cents: i64,
    pub duration_ms: i64,
    /// OpenTelemetry span id (hex), for steps that arrived as spans.
    pub span_id: Option<String>,
    pub recorded_at: DateTimeUtc,
    pub record_hash: String,
    /// Entity id of the ledger entry (EVIDENCE_BATCH_ANCHORED) whose Merkle root covers this
    /// record; not part of the record's hash.
    pub anchor_id: Option<String>,
    /// Usage the span reported (NULL when it did not say, and for steps ingested over GraphQL).
    pub provider: Option<String>,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    /// Session (conversation) the span named.
    pub session_id: Option<String>,
    /// Canonical JSON of the span's attributes and events that mapped to no field (bounded).
    pub attributes: Option<String>,
    /// Canonical JSON of the span's content (prompts, completions, tool arguments and
    /// results), kept only when the tenant captures content (bounded).
    pub content: Option<String>,
    /// Hex SHA-256 of the span's whole content in canonical JSON, whether kept or not.
    pub content_sha256: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
