//! The complete data model of DESIGN §3: tenants and keys, the evidence tables, the ledger,
//! its checkpoints and the export records, with the indexes the keyset pagination walks.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_create_tables"
    }
}

/// Column types per backend. SQLite keeps timestamps as RFC 3339 text (UTC, so that text order is
/// time order); PostgreSQL uses TIMESTAMPTZ (microsecond precision, which is also the precision
/// runledger truncates every timestamp to, so both backends return the same instants).
struct Types {
    /// Identifiers: compared byte-wise on both backends (PostgreSQL's default collation would
    /// order ties differently from SQLite and cost more), so keyset pages agree everywhere.
    key: &'static str,
    ts: &'static str,
    bigint: &'static str,
    int: &'static str,
    boolean: &'static str,
    double: &'static str,
}

fn types(backend: DbBackend) -> Types {
    match backend {
        DbBackend::Postgres => Types {
            key: "TEXT COLLATE \"C\"",
            ts: "TIMESTAMPTZ",
            bigint: "BIGINT",
            int: "INTEGER",
            boolean: "BOOLEAN",
            double: "DOUBLE PRECISION",
        },
        _ => Types {
            key: "TEXT",
            ts: "TEXT",
            bigint: "INTEGER",
            int: "INTEGER",
            boolean: "BOOLEAN",
            double: "REAL",
        },
    }
}

fn statements(t: &Types) -> Vec<String> {
    let Types {
        key,
        ts,
        bigint,
        int,
        boolean,
        double,
    } = t;
    vec![
        format!(
            "CREATE TABLE tenants (
                id {key} NOT NULL PRIMARY KEY,
                name TEXT NOT NULL,
                compliance_frameworks TEXT NOT NULL,
                created_at {ts} NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE api_keys (
                id {key} NOT NULL PRIMARY KEY,
                tenant_id {key} NOT NULL REFERENCES tenants (id),
                role TEXT NOT NULL,
                secret_hash TEXT NOT NULL,
                label TEXT,
                created_at {ts} NOT NULL,
                revoked_at {ts}
            )"
        ),
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id)".to_string(),
        format!(
            "CREATE TABLE llm_runs (
                tenant_id {key} NOT NULL,
                run_id {key} NOT NULL,
                trace_id {key},
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                input_tokens {bigint} NOT NULL,
                output_tokens {bigint} NOT NULL,
                cost_cents {bigint} NOT NULL,
                execution_status TEXT NOT NULL,
                started_at {ts} NOT NULL,
                completed_at {ts},
                source TEXT NOT NULL,
                is_synthetic {boolean} NOT NULL,
                human_actor_id TEXT,
                agent_id TEXT,
                system_id TEXT,
                origin TEXT NOT NULL,
                recorded_at {ts} NOT NULL,
                record_hash TEXT NOT NULL,
                PRIMARY KEY (tenant_id, run_id)
            )"
        ),
        // Keyset keys of the run list, one per sort order, plus the status filter's own.
        "CREATE INDEX llm_runs_started ON llm_runs (tenant_id, started_at, run_id)".to_string(),
        "CREATE INDEX llm_runs_recorded ON llm_runs (tenant_id, recorded_at, run_id)".to_string(),
        "CREATE INDEX llm_runs_status_started ON llm_runs (tenant_id, execution_status, started_at, run_id)".to_string(),
        "CREATE INDEX llm_runs_trace ON llm_runs (tenant_id, trace_id)".to_string(),
        format!(
            "CREATE TABLE trace_steps (
                tenant_id {key} NOT NULL,
                trace_id {key} NOT NULL,
                step_index {int} NOT NULL,
                occurred_at {ts} NOT NULL,
                skill_name TEXT NOT NULL,
                status TEXT NOT NULL,
                outcome_category TEXT NOT NULL,
                cost_cents {bigint} NOT NULL,
                duration_ms {bigint} NOT NULL,
                span_id {key},
                recorded_at {ts} NOT NULL,
                record_hash TEXT NOT NULL,
                PRIMARY KEY (tenant_id, trace_id, step_index)
            )"
        ),
        // Steps that came as OpenTelemetry spans are also keyed by their span id, so a
        // re-sent span is recognised whatever index it was given (NULLs never collide).
        "CREATE UNIQUE INDEX trace_steps_span ON trace_steps (tenant_id, trace_id, span_id)"
            .to_string(),
        format!(
            "CREATE TABLE governance_events (
                tenant_id {key} NOT NULL,
                id {key} NOT NULL,
                run_id {key} NOT NULL,
                occurred_at {ts} NOT NULL,
                event_type TEXT NOT NULL,
                policy_id TEXT,
                rule_id TEXT,
                decision TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                reason TEXT,
                recorded_at {ts} NOT NULL,
                record_hash TEXT NOT NULL,
                PRIMARY KEY (tenant_id, id)
            )"
        ),
        "CREATE INDEX governance_events_run ON governance_events (tenant_id, run_id, occurred_at)"
            .to_string(),
        format!(
            "CREATE TABLE system_records (
                id {key} NOT NULL PRIMARY KEY,
                tenant_id {key},
                component TEXT NOT NULL,
                event_type TEXT NOT NULL,
                severity TEXT NOT NULL,
                summary TEXT NOT NULL,
                details TEXT,
                caused_by TEXT,
                correlation_id {key},
                origin TEXT NOT NULL,
                occurred_at {ts} NOT NULL,
                recorded_at {ts} NOT NULL,
                record_hash TEXT NOT NULL
            )"
        ),
        // Global records have a NULL tenant: both backends index NULLs, so "tenant or global"
        // is two range scans of this one index.
        "CREATE INDEX system_records_time ON system_records (tenant_id, occurred_at, id)"
            .to_string(),
        "CREATE INDEX system_records_correlation ON system_records (correlation_id, occurred_at)"
            .to_string(),
        format!(
            "CREATE TABLE telemetry_samples (
                tenant_id {key} NOT NULL,
                id {key} NOT NULL,
                run_id {key} NOT NULL,
                sampled_at {ts} NOT NULL,
                metric TEXT NOT NULL,
                value {double} NOT NULL,
                unit TEXT,
                recorded_at {ts} NOT NULL,
                record_hash TEXT NOT NULL,
                PRIMARY KEY (tenant_id, id)
            )"
        ),
        "CREATE INDEX telemetry_samples_run ON telemetry_samples (tenant_id, run_id, sampled_at)"
            .to_string(),
        format!(
            "CREATE TABLE audit_ledger (
                tenant_id {key} NOT NULL,
                seq {bigint} NOT NULL,
                id {key} NOT NULL,
                category TEXT NOT NULL,
                event_type TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                actor_type TEXT NOT NULL,
                actor_id TEXT,
                action_reason TEXT,
                decision TEXT,
                before_state TEXT,
                after_state TEXT,
                correlation_id {key},
                occurred_at {ts} NOT NULL,
                recorded_at {ts} NOT NULL,
                prev_hash TEXT NOT NULL,
                entry_hash TEXT NOT NULL,
                PRIMARY KEY (tenant_id, seq)
            )"
        ),
        "CREATE UNIQUE INDEX audit_ledger_id ON audit_ledger (tenant_id, id)".to_string(),
        "CREATE INDEX audit_ledger_category ON audit_ledger (tenant_id, category, seq)".to_string(),
        format!(
            "CREATE TABLE ledger_checkpoints (
                tenant_id {key} NOT NULL,
                tree_size {bigint} NOT NULL,
                root_hash TEXT NOT NULL,
                signed_note TEXT NOT NULL,
                key_id TEXT NOT NULL,
                recorded_at {ts} NOT NULL,
                PRIMARY KEY (tenant_id, tree_size)
            )"
        ),
        format!(
            "CREATE TABLE log_exports (
                tenant_id {key} NOT NULL,
                id {key} NOT NULL,
                run_id {key},
                scope TEXT NOT NULL,
                format TEXT NOT NULL,
                requested_by TEXT NOT NULL,
                status TEXT NOT NULL,
                checksum TEXT,
                requested_at {ts} NOT NULL,
                delivered_at {ts},
                PRIMARY KEY (tenant_id, id)
            )"
        ),
        "CREATE INDEX log_exports_run ON log_exports (tenant_id, run_id, requested_at)".to_string(),
        "CREATE INDEX log_exports_time ON log_exports (tenant_id, requested_at, id)".to_string(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = types(manager.get_database_backend());
        crate::run_all(manager, &statements(&t)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let drops: Vec<String> = [
            "log_exports",
            "ledger_checkpoints",
            "audit_ledger",
            "telemetry_samples",
            "system_records",
            "governance_events",
            "trace_steps",
            "llm_runs",
            "api_keys",
            "tenants",
        ]
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS {t}"))
        .collect();
        crate::run_all(manager, &drops).await
    }
}
