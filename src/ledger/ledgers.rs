//! Which ledgers exist: taken from the ledgers themselves (every tenant id that has ledger
//! entries or checkpoints), from the evidence that ledgers answer for, and from the `tenants`
//! table, plus the platform ledger. Verification and the checkpointer walk this list, so a
//! ledger whose tenant row was deleted does not vanish from them; its missing row is then an
//! anomaly of its own (`MISSING_TENANT`).

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::PLATFORM_LEDGER;
use crate::error::{AppError, AppResult, Context};

/// Tables that carry a `tenant_id` leading an index, so that their distinct tenant ids are
/// found with one index seek per tenant.
const TENANT_TABLES: [&str; 8] = [
    "audit_ledger",
    "ledger_checkpoints",
    "llm_runs",
    "trace_steps",
    "governance_events",
    "system_records",
    "telemetry_samples",
    "log_exports",
];

/// The distinct tenant ids of a table by a "loose index scan": start at the smallest and ask
/// the index for the next larger one, so the cost is one seek per tenant rather than a scan of
/// every row (a 1,000,000-entry ledger costs as much as an empty one). Written as a recursive
/// CTE, which SQLite and PostgreSQL run alike; `MIN` ignores the NULL tenant of global records.
fn distinct_tenants(table: &str, name: &str) -> String {
    format!(
        "{name}(t) AS (SELECT MIN(tenant_id) FROM {table} \
         UNION ALL SELECT (SELECT MIN(tenant_id) FROM {table} WHERE tenant_id > {name}.t) \
         FROM {name} WHERE {name}.t IS NOT NULL)"
    )
}

/// Every ledger that may hold entries: the tenants' sorted by name, then the platform ledger.
pub async fn ledger_names<C: ConnectionTrait>(conn: &C) -> AppResult<Vec<String>> {
    let ctes: Vec<String> = TENANT_TABLES
        .iter()
        .enumerate()
        .map(|(i, table)| distinct_tenants(table, &format!("d{i}")))
        .collect();
    let selects: Vec<String> = (0..TENANT_TABLES.len())
        .map(|i| format!("SELECT t FROM d{i} WHERE t IS NOT NULL"))
        .collect();
    let sql = format!(
        "WITH RECURSIVE {} {} UNION SELECT id FROM tenants",
        ctes.join(", "),
        selects.join(" UNION ")
    );
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .context("list the ledgers")?;
    let mut names = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|e| AppError::internal("list the ledgers", e))?;
    names.retain(|n| n != PLATFORM_LEDGER);
    names.sort();
    names.dedup();
    names.push(PLATFORM_LEDGER.to_string());
    Ok(names)
}

/// Whether the tenant has a row in `tenants` (the platform ledger needs none).
pub async fn tenant_row_exists<C: ConnectionTrait>(conn: &C, tenant_id: &str) -> AppResult<bool> {
    if tenant_id == PLATFORM_LEDGER {
        return Ok(true);
    }
    let sql = format!("SELECT 1 FROM tenants WHERE id = {}", param(conn, 1));
    Ok(conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            [tenant_id.into()],
        ))
        .await
        .with_context(|| format!("look up tenant {tenant_id}"))?
        .is_some())
}

/// Whether anything is known of this ledger: a tenant row, ledger entries or checkpoints (the
/// platform ledger always is). Verifying an unknown name is an error, not an empty ledger.
pub async fn ledger_known<C: ConnectionTrait>(conn: &C, tenant_id: &str) -> AppResult<bool> {
    if tenant_row_exists(conn, tenant_id).await? {
        return Ok(true);
    }
    let p = param(conn, 1);
    let sql = format!(
        "SELECT 1 FROM audit_ledger WHERE tenant_id = {p} \
         UNION ALL SELECT 1 FROM ledger_checkpoints WHERE tenant_id = {p}"
    );
    Ok(conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            format!("SELECT 1 FROM ({sql}) AS known LIMIT 1"),
            [tenant_id.into()],
        ))
        .await
        .with_context(|| format!("look up the ledger of {tenant_id}"))?
        .is_some())
}

/// The `n`-th bound parameter in the backend's syntax (numbered on both, so one value may be
/// used twice).
fn param<C: ConnectionTrait>(conn: &C, n: usize) -> String {
    match conn.get_database_backend() {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}
