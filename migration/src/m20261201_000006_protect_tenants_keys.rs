//! Protects `tenants` and `api_keys` like evidence, in the database itself: the list of
//! ledgers, and who may read them, must not change behind the ledger's back.
//!
//! - `tenants` refuses UPDATE and DELETE (and on PostgreSQL TRUNCATE): a tenant, once created
//!   (and recorded as `TENANT_CREATED`), stays.
//! - `api_keys` refuses DELETE (and TRUNCATE) and every UPDATE but the key lifecycle's one
//!   forward transition: `revoked_at` set from NULL, every other column unchanged. Revocation
//!   and rotation (which revokes the old key and inserts the new one) are exactly that; a
//!   revoked key is never revived, re-roled, re-labelled or given another secret.
//!
//! The PostgreSQL notification trigger on `api_keys` (m20261128_000004) is an AFTER trigger:
//! it still fires on the revocations these triggers let through.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_protect_tenants_keys"
    }
}

/// The condition under which an UPDATE of a key is allowed: a revocation and nothing else.
const KEY_FORWARD_ONLY: &str = "OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL \
     AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.role = OLD.role \
     AND NEW.secret_hash = OLD.secret_hash AND NEW.created_at = OLD.created_at \
     AND NEW.label IS NOT DISTINCT FROM OLD.label";

fn sqlite_statements() -> Vec<String> {
    let mut out = Vec::new();
    for op in ["UPDATE", "DELETE"] {
        out.push(format!(
            "CREATE TRIGGER tenants_refuse_{lower} BEFORE {op} ON tenants \
             BEGIN SELECT RAISE(ABORT, 'tenants is append-only: {op} refused'); END",
            lower = op.to_lowercase()
        ));
    }
    // SQLite spells IS NOT DISTINCT FROM as IS.
    let forward = KEY_FORWARD_ONLY.replace("IS NOT DISTINCT FROM", "IS");
    out.push(format!(
        "CREATE TRIGGER api_keys_forward_only BEFORE UPDATE ON api_keys \
         WHEN NOT ({forward}) \
         BEGIN SELECT RAISE(ABORT, 'api_keys only change by revocation (revoked_at set once)'); END"
    ));
    out.push(
        "CREATE TRIGGER api_keys_refuse_delete BEFORE DELETE ON api_keys \
         BEGIN SELECT RAISE(ABORT, 'api_keys is append-only: DELETE refused'); END"
            .to_string(),
    );
    out
}

fn postgres_statements() -> Vec<String> {
    vec![
        // `runledger_refuse_change()` comes from m20261126_000002_append_only.
        "CREATE TRIGGER tenants_refuse_change BEFORE UPDATE OR DELETE ON tenants \
         FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change()"
            .to_string(),
        "CREATE TRIGGER tenants_refuse_truncate BEFORE TRUNCATE ON tenants \
         FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change()"
            .to_string(),
        format!(
            "CREATE FUNCTION runledger_api_keys_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF TG_OP = 'UPDATE' AND {KEY_FORWARD_ONLY} THEN RETURN NEW; END IF; \
             RAISE EXCEPTION 'api_keys only change by revocation (revoked_at set once): % refused', TG_OP \
             USING ERRCODE = 'insufficient_privilege'; END $$"
        ),
        "CREATE TRIGGER api_keys_forward_only BEFORE UPDATE OR DELETE ON api_keys \
         FOR EACH ROW EXECUTE FUNCTION runledger_api_keys_forward_only()"
            .to_string(),
        "CREATE TRIGGER api_keys_refuse_truncate BEFORE TRUNCATE ON api_keys \
         FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change()"
            .to_string(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => postgres_statements(),
            _ => sqlite_statements(),
        };
        crate::run_all(manager, &statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: Vec<String> = if manager.get_database_backend() == DbBackend::Postgres {
            [
                "DROP TRIGGER IF EXISTS tenants_refuse_change ON tenants",
                "DROP TRIGGER IF EXISTS tenants_refuse_truncate ON tenants",
                "DROP TRIGGER IF EXISTS api_keys_forward_only ON api_keys",
                "DROP TRIGGER IF EXISTS api_keys_refuse_truncate ON api_keys",
                "DROP FUNCTION IF EXISTS runledger_api_keys_forward_only()",
            ]
            .map(String::from)
            .to_vec()
        } else {
            [
                "DROP TRIGGER IF EXISTS tenants_refuse_update",
                "DROP TRIGGER IF EXISTS tenants_refuse_delete",
                "DROP TRIGGER IF EXISTS api_keys_forward_only",
                "DROP TRIGGER IF EXISTS api_keys_refuse_delete",
            ]
            .map(String::from)
            .to_vec()
        };
        crate::run_all(manager, &statements).await
    }
}
