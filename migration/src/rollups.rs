//! The SQL that derives run rollups from the evidence, shared by the migration that creates
//! `run_rollups` (which fills it from the runs already stored) and by `runledger rollups
//! rebuild|check`. A run's usage is the rule of the run's usage view: for each kind, the run
//! record's own value when it is above zero, else the sum over the run's trace steps.

use sea_orm_migration::sea_orm::DbBackend;

/// Seconds of one rollup bucket (a quarter hour: every time zone's offset is a multiple).
pub const GRAIN_SECONDS: i64 = 900;

/// Whole seconds since the epoch of a timestamp column.
pub fn epoch_seconds(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("FLOOR(EXTRACT(EPOCH FROM {column}))::BIGINT"),
        _ => format!("unixepoch({column})"),
    }
}

/// The microseconds of a SQLite RFC 3339 timestamp's second (the text holds 0, 3 or 6
/// fraction digits before its `+00:00`).
fn sqlite_micros(column: &str) -> String {
    format!(
        "(CASE WHEN substr({column}, 20, 1) = '.' THEN CAST(substr(substr({column}, 21, \
         instr(substr({column}, 21), '+') - 1) || '000000', 1, 6) AS INTEGER) ELSE 0 END)"
    )
}

/// Microseconds from `start` to `end` (NULL when `end` is), exact on both backends.
pub fn duration_micros(backend: DbBackend, start: &str, end: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000)::BIGINT")
        }
        _ => format!(
            "((unixepoch({end}) - unixepoch({start})) * 1000000 + {} - {})",
            sqlite_micros(end),
            sqlite_micros(start)
        ),
    }
}

/// The usage kinds a rollup sums: (rollup and run column, step column, whether the run column
/// may be NULL).
pub const USAGE_KINDS: [(&str, bool); 5] = [
    ("input_tokens", false),
    ("output_tokens", false),
    ("cache_read_tokens", true),
    ("cache_creation_tokens", true),
    ("cost_cents", false),
];

/// A run's total of one usage kind, where `steps` is an expression of the sum over its steps
/// (NULL when it has none).
pub fn usage_total(run: &str, kind: &str, nullable: bool, steps: &str) -> String {
    let own = if nullable {
        format!("COALESCE({run}.{kind}, 0)")
    } else {
        format!("{run}.{kind}")
    };
    format!("(CASE WHEN {own} > 0 THEN {own} ELSE COALESCE({steps}, 0) END)")
}

/// `INSERT … SELECT` of the rollup rows of every tenant, or of the tenant bound as the first
/// parameter (`one_tenant`).
pub fn rebuild_statement(backend: DbBackend, one_tenant: bool) -> String {
    let param = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let (steps_where, runs_where) = if one_tenant {
        (
            format!("WHERE tenant_id = {param}"),
            format!("WHERE r.tenant_id = {param}"),
        )
    } else {
        (String::new(), String::new())
    };
    let bucket = format!(
        "({} / {GRAIN_SECONDS}) * {GRAIN_SECONDS}",
        epoch_seconds(backend, "r.started_at")
    );
    let step_sums = USAGE_KINDS
        .iter()
        .map(|(k, _)| format!("SUM({k}) AS {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sums = USAGE_KINDS
        .iter()
        .map(|(k, n)| format!("SUM({})", usage_total("r", k, *n, &format!("s.{k}"))))
        .collect::<Vec<_>>()
        .join(", ");
    let kinds = USAGE_KINDS.map(|(k, _)| k).join(", ");
    let duration = duration_micros(backend, "r.started_at", "r.completed_at");
    // On PostgreSQL one statement with a parameter used twice binds it once ($1 twice); SQLite
    // numbers `?` by position, so the tenant is bound twice there (see `rebuild_binds`).
    format!(
        "INSERT INTO run_rollups (tenant_id, bucket_start, provider, model, execution_status, \
         runs, {kinds}, duration_runs, duration_us) \
         SELECT r.tenant_id, {bucket}, r.provider, r.model, r.execution_status, COUNT(*), \
         {sums}, COUNT(r.completed_at), COALESCE(SUM({duration}), 0) \
         FROM llm_runs r LEFT JOIN (SELECT tenant_id, trace_id, {step_sums} FROM trace_steps \
         {steps_where} GROUP BY tenant_id, trace_id) s \
         ON s.tenant_id = r.tenant_id AND s.trace_id = r.trace_id {runs_where} \
         GROUP BY r.tenant_id, {bucket}, r.provider, r.model, r.execution_status"
    )
}

/// How many times the tenant is bound in the one-tenant [`rebuild_statement`].
pub fn rebuild_binds(backend: DbBackend) -> usize {
    if backend == DbBackend::Postgres { 1 } else { 2 }
}
