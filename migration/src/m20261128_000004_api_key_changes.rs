//! Tells every server instance when an API key changes, so instances may keep keys in memory:
//! on PostgreSQL, a trigger sends `NOTIFY runledger_api_keys` with the key id whenever a row of
//! `api_keys` is updated or deleted (whoever does it: a server, the CLI or plain SQL), and with
//! `*` when the table is truncated. The notification is sent when the changing transaction
//! commits. SQLite has no notifications; servers on SQLite read the key on every request.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000004_api_key_changes"
    }
}

/// The notification channel; `runledger::auth` listens on it.
const CHANNEL: &str = "runledger_api_keys";

fn statements() -> Vec<String> {
    vec![
        format!(
            "CREATE FUNCTION runledger_api_key_changed() RETURNS trigger AS $$
             BEGIN
               IF TG_OP = 'TRUNCATE' THEN
                 PERFORM pg_notify('{CHANNEL}', '*');
               ELSE
                 PERFORM pg_notify('{CHANNEL}', OLD.id);
               END IF;
               RETURN NULL;
             END $$ LANGUAGE plpgsql"
        ),
        "CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys \
         FOR EACH ROW EXECUTE FUNCTION runledger_api_key_changed()"
            .to_string(),
        "CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys \
         FOR EACH STATEMENT EXECUTE FUNCTION runledger_api_key_changed()"
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
            "DROP TRIGGER IF EXISTS api_keys_truncated ON api_keys",
            "DROP TRIGGER IF EXISTS api_keys_changed ON api_keys",
            "DROP FUNCTION IF EXISTS runledger_api_key_changed()",
        ]
        .map(String::from);
        crate::run_all(manager, &out).await
    }
}
