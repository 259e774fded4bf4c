//! The session indexes cover only rows that name a session.
//!
//! `m20261202_000007_span_usage` indexed `session_id` of every run and every step, so each
//! step written paid for an index entry even when its span named no session (most spans of
//! most instrumentations): measured as a slower OTLP ingest on SQLite. The indexes are rebuilt
//! as partial indexes (`WHERE session_id IS NOT NULL`), which both backends use for the only
//! lookups they serve (`session_id = $1`, which implies the condition). Indexes are not
//! evidence: no record or hash changes.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000009_partial_session_indexes"
    }
}

const UP: [&str; 4] = [
    "DROP INDEX trace_steps_session",
    "CREATE INDEX trace_steps_session ON trace_steps (tenant_id, session_id) \
     WHERE session_id IS NOT NULL",
    "DROP INDEX llm_runs_session",
    "CREATE INDEX llm_runs_session ON llm_runs (tenant_id, session_id, started_at, run_id) \
     WHERE session_id IS NOT NULL",
];

const DOWN: [&str; 4] = [
    "DROP INDEX trace_steps_session",
    "CREATE INDEX trace_steps_session ON trace_steps (tenant_id, session_id)",
    "DROP INDEX llm_runs_session",
    "CREATE INDEX llm_runs_session ON llm_runs (tenant_id, session_id, started_at, run_id)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &UP.map(String::from)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &DOWN.map(String::from)).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
