//! The export job queue: one row per requested export, beside its `log_exports` record. The
//! record says what was asked and how it ended (and only moves forward); the job row is the
//! builder's working state — its place in the queue, its lease, its progress — and is updated as
//! the build goes. It is bookkeeping, not evidence: nothing hashes or anchors it, and the
//! outcome it leads to is chained in the ledger as `EXPORT_COMPLETED` or `EXPORT_FAILED`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_export_jobs"
    }
}

fn statements(backend: DbBackend) -> Vec<String> {
    let key = if backend == DbBackend::Postgres {
        "TEXT COLLATE \"C\""
    } else {
        "TEXT"
    };
    vec![
        // `evidence_digest`: SHA-256 over the exported records' hashes (`export::evidence_digest`),
        // so a view can tell whether the evidence still matches its newest export.
        // `state`: QUEUED, RUNNING, DONE, FAILED. `spec`: the scope as requested (canonical
        // JSON), read by the builder. `lease_until_us`: microseconds since the epoch until which
        // the worker that claimed the job owns it; a RUNNING job whose lease ran out belongs to
        // a worker that died, and is queued again (or failed once it ran out of attempts).
        format!(
            "CREATE TABLE export_jobs (
                tenant_id {key} NOT NULL,
                export_id {key} NOT NULL,
                spec TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                lease_owner TEXT,
                lease_until_us BIGINT,
                records_total BIGINT,
                records_written BIGINT NOT NULL,
                size_bytes BIGINT,
                checkpoint_size BIGINT,
                evidence_digest TEXT,
                error TEXT,
                queued_us BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, export_id)
            )"
        ),
        "CREATE INDEX export_jobs_queue ON export_jobs (state, queued_us)".to_string(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &statements(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &["DROP TABLE IF EXISTS export_jobs".to_string()]).await
    }
}
