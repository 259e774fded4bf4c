//! Tells every server instance when a tenant's ledger grows, so that live subscriptions on any
//! instance learn of a commit made through any other: on PostgreSQL, a statement-level trigger
//! sends `NOTIFY runledger_ledger` with `<tenant id> <highest seq inserted>` for each tenant an
//! `INSERT INTO audit_ledger` wrote to. PostgreSQL delivers a transaction's notifications when
//! it commits, and those of different transactions in commit order; a tenant's ledger writers
//! are serialized (an advisory lock held to commit), so a notification of seq N arrives after
//! every entry up to N is visible. Every evidence batch appends its anchor entry, so this one
//! channel covers runs, steps and system records too. SQLite has no notifications: a server
//! there is woken by its own commits and polls for other processes' (`facade::live`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000011_ledger_notify"
    }
}

/// The notification channel; `runledger::facade::live` listens on it.
pub const CHANNEL: &str = "runledger_ledger";

fn statements() -> Vec<String> {
    vec![
        format!(
            "CREATE FUNCTION runledger_ledger_grew() RETURNS trigger AS $$
             BEGIN
               PERFORM pg_notify('{CHANNEL}', n.tenant_id || ' ' || max(n.seq))
                 FROM appended n GROUP BY n.tenant_id;
               RETURN NULL;
             END $$ LANGUAGE plpgsql"
        ),
        "CREATE TRIGGER audit_ledger_grew AFTER INSERT ON audit_ledger \
         REFERENCING NEW TABLE AS appended \
         FOR EACH STATEMENT EXECUTE FUNCTION runledger_ledger_grew()"
            .to_string(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::run_all(manager, &statements()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let out = [
            "DROP TRIGGER IF EXISTS audit_ledger_grew ON audit_ledger",
            "DROP FUNCTION IF EXISTS runledger_ledger_grew()",
        ]
        .map(String::from);
        crate::run_all(manager, &out).await
    }
}
