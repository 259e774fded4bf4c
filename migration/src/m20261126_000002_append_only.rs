//! Makes the evidence append-only in the database itself: UPDATE, DELETE (and on PostgreSQL
//! TRUNCATE) on evidence tables fail, whoever sends them. Export records may only move forward,
//! from PENDING to COMPLETED or FAILED, and never change what was requested.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000002_append_only"
    }
}

/// Tables whose rows never change once written.
pub const EVIDENCE_TABLES: [&str; 7] = [
    "llm_runs",
    "trace_steps",
    "governance_events",
    "system_records",
    "telemetry_samples",
    "audit_ledger",
    "ledger_checkpoints",
];

/// The condition under which an UPDATE of an export record is allowed.
const EXPORT_FORWARD_ONLY: &str = "OLD.status = 'PENDING' AND NEW.status IN ('COMPLETED', 'FAILED') \
     AND NEW.tenant_id = OLD.tenant_id AND NEW.id = OLD.id \
     AND NEW.run_id IS NOT DISTINCT FROM OLD.run_id AND NEW.scope = OLD.scope \
     AND NEW.format = OLD.format AND NEW.requested_by = OLD.requested_by \
     AND NEW.requested_at = OLD.requested_at";

fn sqlite_statements() -> Vec<String> {
    let mut out = Vec::new();
    for table in EVIDENCE_TABLES {
        for op in ["UPDATE", "DELETE"] {
            out.push(format!(
                "CREATE TRIGGER {table}_refuse_{lower} BEFORE {op} ON {table} \
                 BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END",
                lower = op.to_lowercase()
            ));
        }
    }
    // SQLite spells IS NOT DISTINCT FROM as IS.
    let forward = EXPORT_FORWARD_ONLY.replace("IS NOT DISTINCT FROM", "IS");
    out.push(format!(
        "CREATE TRIGGER log_exports_forward_only BEFORE UPDATE ON log_exports \
         WHEN NOT ({forward}) \
         BEGIN SELECT RAISE(ABORT, 'log_exports only move from PENDING to COMPLETED or FAILED'); END"
    ));
    out.push(
        "CREATE TRIGGER log_exports_refuse_delete BEFORE DELETE ON log_exports \
         BEGIN SELECT RAISE(ABORT, 'log_exports is append-only: DELETE refused'); END"
            .to_string(),
    );
    out
}

fn postgres_statements() -> Vec<String> {
    let mut out = vec![
        "CREATE FUNCTION runledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP \
         USING ERRCODE = 'insufficient_privilege'; END $$"
            .to_string(),
        format!(
            "CREATE FUNCTION runledger_exports_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF TG_OP = 'UPDATE' AND {EXPORT_FORWARD_ONLY} THEN RETURN NEW; END IF; \
             RAISE EXCEPTION 'log_exports only move from PENDING to COMPLETED or FAILED (% refused)', TG_OP \
             USING ERRCODE = 'insufficient_privilege'; END $$"
        ),
    ];
    for table in EVIDENCE_TABLES {
        out.push(format!(
            "CREATE TRIGGER {table}_refuse_change BEFORE UPDATE OR DELETE ON {table} \
             FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change()"
        ));
        out.push(format!(
            "CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table} \
             FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change()"
        ));
    }
    out.push(
        "CREATE TRIGGER log_exports_forward_only BEFORE UPDATE OR DELETE ON log_exports \
         FOR EACH ROW EXECUTE FUNCTION runledger_exports_forward_only()"
            .to_string(),
    );
    out.push(
        "CREATE TRIGGER log_exports_refuse_truncate BEFORE TRUNCATE ON log_exports \
         FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change()"
            .to_string(),
    );
    out
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
        let mut statements = Vec::new();
        let pg = manager.get_database_backend() == DbBackend::Postgres;
        for table in EVIDENCE_TABLES {
            if pg {
                statements.push(format!(
                    "DROP TRIGGER IF EXISTS {table}_refuse_change ON {table}"
                ));
                statements.push(format!(
                    "DROP TRIGGER IF EXISTS {table}_refuse_truncate ON {table}"
                ));
            } else {
                statements.push(format!("DROP TRIGGER IF EXISTS {table}_refuse_update"));
                statements.push(format!("DROP TRIGGER IF EXISTS {table}_refuse_delete"));
            }
        }
        if pg {
            statements
                .push("DROP TRIGGER IF EXISTS log_exports_forward_only ON log_exports".into());
            statements
                .push("DROP TRIGGER IF EXISTS log_exports_refuse_truncate ON log_exports".into());
            statements.push("DROP FUNCTION IF EXISTS runledger_refuse_change()".into());
            statements.push("DROP FUNCTION IF EXISTS runledger_exports_forward_only()".into());
        } else {
            statements.push("DROP TRIGGER IF EXISTS log_exports_forward_only".into());
            statements.push("DROP TRIGGER IF EXISTS log_exports_refuse_delete".into());
        }
        crate::run_all(manager, &statements).await
    }
}
