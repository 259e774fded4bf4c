//! Run rollups: per tenant, quarter hour (UTC) of `started_at`, provider, model and status, the
//! runs' count and usage sums. Derived data, not evidence: maintained in the ingest transaction
//! that writes the runs and steps it sums (`rollup::maintain`), rebuilt from the evidence by
//! `runledger rollups rebuild` and compared with it by `runledger rollups check`. Nothing hashes
//! or anchors it and no proof rests on it, so it is not append-only: a rebuild replaces a
//! tenant's rows. The stats queries and `totalCount` read it for whole quarter hours.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000010_run_rollups"
    }
}

fn statements(backend: DbBackend) -> Vec<String> {
    let key = if backend == DbBackend::Postgres {
        "TEXT COLLATE \"C\""
    } else {
        "TEXT"
    };
    // `bucket_start`: seconds since the epoch, a multiple of 900. `duration_us`: the sum of
    // `completed_at - started_at` over the `duration_runs` runs that have completed.
    vec![
        format!(
            "CREATE TABLE run_rollups (
            tenant_id {key} NOT NULL,
            bucket_start BIGINT NOT NULL,
            provider {key} NOT NULL,
            model {key} NOT NULL,
            execution_status {key} NOT NULL,
            runs BIGINT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            cache_read_tokens BIGINT NOT NULL,
            cache_creation_tokens BIGINT NOT NULL,
            cost_cents BIGINT NOT NULL,
            duration_runs BIGINT NOT NULL,
            duration_us BIGINT NOT NULL,
            PRIMARY KEY (tenant_id, bucket_start, provider, model, execution_status)
        )"
        ),
        // The runs stored before this migration.
        crate::rollups::rebuild_statement(backend, false),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &statements(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &["DROP TABLE run_rollups".to_string()]).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
