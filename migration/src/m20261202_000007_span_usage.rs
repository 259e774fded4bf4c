//! Steps carry their own usage, content and unmapped attributes; runs carry a session; tenants
//! get settings (content capture).
//!
//! - `trace_steps` gains the usage a span reports (provider, request and response model,
//!   tokens by kind, all NULL when the span did not say), the session it named, the attributes
//!   and events that mapped to no field (bounded JSON), and the captured content (bounded
//!   JSON, only when the tenant captures content) with its SHA-256 digest (always, when the
//!   span had content). A run's totals are derived from these on read, so a total never
//!   depends on which spans had arrived when its run record was written.
//! - `llm_runs` gains `session_id` (indexed for the session view and the run list's filter),
//!   and, since a run record is its root span, the root's cache tokens, unmapped attributes,
//!   content and content digest.
//! - `tenant_settings` holds one row per tenant that changed a default (content capture and
//!   its size limit). It is configuration, not evidence: a row is replaced when the setting
//!   changes, and the change is recorded in the tenant's ledger.
//!
//! Every new evidence column is NULL for the rows stored before, and the canonical form of a
//! record names a new field only when it is set, so no stored record's hash changes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000007_span_usage"
    }
}

fn up_statements(backend: DbBackend) -> Vec<String> {
    let (key, bigint, ts, boolean) = match backend {
        DbBackend::Postgres => ("TEXT COLLATE \"C\"", "BIGINT", "TIMESTAMPTZ", "BOOLEAN"),
        _ => ("TEXT", "INTEGER", "TEXT", "BOOLEAN"),
    };
    let mut out: Vec<String> = [
        ("provider", "TEXT"),
        ("request_model", "TEXT"),
        ("response_model", "TEXT"),
        ("input_tokens", bigint),
        ("output_tokens", bigint),
        ("cache_read_tokens", bigint),
        ("cache_creation_tokens", bigint),
        ("session_id", key),
        ("attributes", "TEXT"),
        ("content", "TEXT"),
        ("content_sha256", "TEXT"),
    ]
    .iter()
    .map(|(column, ty)| format!("ALTER TABLE trace_steps ADD COLUMN {column} {ty}"))
    .collect();
    // A run record is its root span: it keeps what the root itself says of the same kinds.
    out.extend(
        [
            ("session_id", key),
            ("cache_read_tokens", bigint),
            ("cache_creation_tokens", bigint),
            ("attributes", "TEXT"),
            ("content", "TEXT"),
            ("content_sha256", "TEXT"),
        ]
        .iter()
        .map(|(column, ty)| format!("ALTER TABLE llm_runs ADD COLUMN {column} {ty}")),
    );
    // The session view lists a session's runs in start order.
    out.push(
        "CREATE INDEX llm_runs_session ON llm_runs (tenant_id, session_id, started_at, run_id)"
            .to_string(),
    );
    // Traces whose root span has not arrived are found through their steps' session.
    out.push("CREATE INDEX trace_steps_session ON trace_steps (tenant_id, session_id)".to_string());
    out.push(format!(
        "CREATE TABLE tenant_settings (
            tenant_id {key} NOT NULL PRIMARY KEY REFERENCES tenants (id),
            content_capture {boolean} NOT NULL,
            content_max_bytes {bigint} NOT NULL,
            updated_at {ts} NOT NULL
        )"
    ));
    out
}

fn down_statements() -> Vec<String> {
    let mut out = vec![
        "DROP TABLE tenant_settings".to_string(),
        "DROP INDEX trace_steps_session".to_string(),
        "DROP INDEX llm_runs_session".to_string(),
    ];
    for column in [
        "session_id",
        "cache_read_tokens",
        "cache_creation_tokens",
        "attributes",
        "content",
        "content_sha256",
    ] {
        out.push(format!("ALTER TABLE llm_runs DROP COLUMN {column}"));
    }
    // SQLite (3.35 and later) drops a column once no index names it.
    for column in [
        "provider",
        "request_model",
        "response_model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "session_id",
        "attributes",
        "content",
        "content_sha256",
    ] {
        out.push(format!("ALTER TABLE trace_steps DROP COLUMN {column}"));
    }
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &up_statements(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &down_statements()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
