//! Keys system records by owner and id instead of by id alone: a tenant's record ids are its
//! own, and the global records (NULL tenant) have a key space of their own, so one tenant can
//! neither learn whether another uses an id nor take an id before it.
//!
//! PostgreSQL (15 or later) swaps the primary key on `id` for a `UNIQUE NULLS NOT DISTINCT
//! (tenant_id, id)` constraint: tenant first, as every other evidence table is keyed, and NULL
//! (global) counted as one owner. SQLite cannot drop a primary key, so the table is rebuilt with
//! the same columns in the same order (reads decode rows by position), its rows copied, and its
//! indexes and append-only triggers recreated; a unique index on `(tenant_id, id)` keys the
//! tenants' records and a partial unique index on `id` the global ones (SQLite counts NULLs as
//! distinct in a unique index). The migration runs in one transaction on both backends.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_system_record_owner_keys"
    }
}

/// Every column of `system_records`, in table order.
const COLUMNS: &str = "id, tenant_id, component, event_type, severity, summary, details, \
     caused_by, correlation_id, origin, occurred_at, recorded_at, record_hash, anchor_id";

/// Rebuilds the SQLite table with `id_key` as the declaration of its `id` column and the
/// statements in `keys` after the copy; every other index and trigger is recreated as
/// m20261126_000001_create_tables, m20261126_000002_append_only and
/// m20261127_000003_anchor_links made it.
fn sqlite_rebuild(id_key: &str, keys: &[&str]) -> Vec<String> {
    let mut out = vec![
        format!(
            "CREATE TABLE system_records_rebuilt (
                id TEXT NOT NULL{id_key},
                tenant_id TEXT,
                component TEXT NOT NULL,
                event_type TEXT NOT NULL,
                severity TEXT NOT NULL,
                summary TEXT NOT NULL,
                details TEXT,
                caused_by TEXT,
                correlation_id TEXT,
                origin TEXT NOT NULL,
                occurred_at TEXT NOT NULL,
                recorded_at TEXT NOT NULL,
                record_hash TEXT NOT NULL,
                anchor_id TEXT
            )"
        ),
        format!(
            "INSERT INTO system_records_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM system_records"
        ),
        // Dropping the table drops its indexes and triggers (before any row is touched, so the
        // append-only triggers do not fire).
        "DROP TABLE system_records".to_string(),
        "ALTER TABLE system_records_rebuilt RENAME TO system_records".to_string(),
    ];
    out.extend(keys.iter().map(|k| String::from(*k)));
    out.extend(
        [
            // Global records have a NULL tenant: "tenant or global" is two range scans.
            "CREATE INDEX system_records_time ON system_records (tenant_id, occurred_at, id)",
            "CREATE INDEX system_records_correlation ON system_records (correlation_id, occurred_at)",
            "CREATE INDEX system_records_by_anchor ON system_records (anchor_id)",
            "CREATE TRIGGER system_records_refuse_update BEFORE UPDATE ON system_records \
             BEGIN SELECT RAISE(ABORT, 'system_records is append-only: UPDATE refused'); END",
            "CREATE TRIGGER system_records_refuse_delete BEFORE DELETE ON system_records \
             BEGIN SELECT RAISE(ABORT, 'system_records is append-only: DELETE refused'); END",
        ]
        .map(String::from),
    );
    out
}

fn up_statements(backend: DbBackend) -> Vec<String> {
    match backend {
        DbBackend::Postgres => [
            "ALTER TABLE system_records DROP CONSTRAINT system_records_pkey",
            "ALTER TABLE system_records ADD CONSTRAINT system_records_owner_id \
             UNIQUE NULLS NOT DISTINCT (tenant_id, id)",
        ]
        .map(String::from)
        .to_vec(),
        _ => sqlite_rebuild(
            "",
            &[
                "CREATE UNIQUE INDEX system_records_owner_id ON system_records (tenant_id, id)",
                "CREATE UNIQUE INDEX system_records_global_id ON system_records (id) \
                 WHERE tenant_id IS NULL",
            ],
        ),
    }
}

fn down_statements(backend: DbBackend) -> Vec<String> {
    match backend {
        // Fails, leaving everything as it was, once two owners use the same id.
        DbBackend::Postgres => [
            "ALTER TABLE system_records DROP CONSTRAINT system_records_owner_id",
            "ALTER TABLE system_records ADD PRIMARY KEY (id)",
        ]
        .map(String::from)
        .to_vec(),
        _ => sqlite_rebuild(" PRIMARY KEY", &[]),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &up_statements(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &down_statements(manager.get_database_backend())).await
    }

    /// The SQLite rebuild must not be seen half done: one transaction on every backend.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
