//! Links every evidence record to the ledger entry that anchors it, so a verifier can recompute
//! each anchored batch's Merkle root from the records themselves; and keeps each checkpoint's
//! Merkle frontier, so verification can resume from a checkpoint instead of from seq 1.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000003_anchor_links"
    }
}

/// Evidence tables whose records are anchored, in the anchor's leaf order.
const ANCHORED_TABLES: [&str; 5] = [
    "llm_runs",
    "trace_steps",
    "governance_events",
    "system_records",
    "telemetry_samples",
];

fn statements(backend: DbBackend) -> Vec<String> {
    let text = if backend == DbBackend::Postgres {
        "TEXT COLLATE \"C\""
    } else {
        "TEXT"
    };
    let mut out = Vec::new();
    for table in ANCHORED_TABLES {
        // The entity id of the EVIDENCE_BATCH_ANCHORED entry whose Merkle root covers the record.
        out.push(format!("ALTER TABLE {table} ADD COLUMN anchor_id {text}"));
        out.push(format!(
            "CREATE INDEX {table}_by_anchor ON {table} (anchor_id)"
        ));
    }
    // The perfect-subtree roots of the tree the checkpoint signs, left to right, as
    // concatenated lower-case hex (64 characters each).
    out.push("ALTER TABLE ledger_checkpoints ADD COLUMN frontier TEXT".to_string());
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_all(manager, &statements(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut out = Vec::new();
        for table in ANCHORED_TABLES {
            out.push(format!("DROP INDEX IF EXISTS {table}_by_anchor"));
            out.push(format!("ALTER TABLE {table} DROP COLUMN anchor_id"));
        }
        out.push("ALTER TABLE ledger_checkpoints DROP COLUMN frontier".to_string());
        crate::run_all(manager, &out).await
    }
}
