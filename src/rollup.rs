//! Run rollups: derived counts and usage sums per tenant, quarter hour (UTC) of a run's start,
//! provider, model and status, which the stats queries and `totalCount` read instead of every
//! run. They are derived, never evidence: [`maintain`] keeps them in the ingest transaction
//! that writes the runs and steps they sum, [`rebuild`] recomputes a tenant's from the evidence
//! (the SQL of `migration::rollups`, independent of the Rust here), and [`check`] compares the
//! two. Nothing the ledger proves is read from them.
//!
//! A run's usage follows the run usage view's rule ([`usage_total`]): the record's own value when
//! above zero, else the sum over its trace's steps. Steps may arrive after their run, so a batch
//! of steps changes the sums of the (stored) run they belong to; the group key of a run (its
//! record's provider, model and status, and start) never changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbBackend};

use crate::db::{Db, Sql};
use crate::error::{AppResult, Context};
use entity::{llm_runs, trace_steps};
pub use migration::rollups::GRAIN_SECONDS;

/// Values per multi-row statement (SQLite binds at most 32,766).
const MAX_BOUND: usize = 8_000;

/// A run's total of one usage kind: its own value when above zero, else the sum over its
/// steps (those that report it).
pub fn usage_total(own: Option<i64>, steps: impl Iterator<Item = Option<i64>>) -> i64 {
    match own {
        Some(v) if v > 0 => v,
        _ => steps.flatten().sum(),
    }
}

/// One rollup row's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    /// Seconds since the epoch, a multiple of [`GRAIN_SECONDS`].
    pub bucket_start: i64,
    pub provider: String,
    pub model: String,
    pub execution_status: String,
}

/// One rollup row's sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollupSums {
    pub runs: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cost_cents: i64,
    pub duration_runs: i64,
    pub duration_us: i64,
}

impl RollupSums {
    fn add(&mut self, o: &RollupSums, sign: i64) {
        self.runs += sign * o.runs;
        self.input_tokens += sign * o.input_tokens;
        self.output_tokens += sign * o.output_tokens;
        self.cache_read_tokens += sign * o.cache_read_tokens;
        self.cache_creation_tokens += sign * o.cache_creation_tokens;
        self.cost_cents += sign * o.cost_cents;
        self.duration_runs += sign * o.duration_runs;
        self.duration_us += sign * o.duration_us;
    }

    fn is_zero(&self) -> bool {
        *self == RollupSums::default()
    }
}

/// Sums of a trace's steps per usage kind (`None`: no step reports it).
#[derive(Clone, Copy, Debug, Default)]
struct StepSums {
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_creation_tokens: Option<i64>,
    cost_cents: Option<i64>,
}

impl StepSums {
    fn add(&mut self, o: &StepSums) {
        let plus = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.input_tokens = plus(self.input_tokens, o.input_tokens);
        self.output_tokens = plus(self.output_tokens, o.output_tokens);
        self.cache_read_tokens = plus(self.cache_read_tokens, o.cache_read_tokens);
        self.cache_creation_tokens = plus(self.cache_creation_tokens, o.cache_creation_tokens);
        self.cost_cents = plus(self.cost_cents, o.cost_cents);
    }

    fn of_step(s: &trace_steps::Model) -> StepSums {
        StepSums {
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cache_read_tokens: s.cache_read_tokens,
            cache_creation_tokens: s.cache_creation_tokens,
            cost_cents: Some(s.cost_cents),
        }
    }
}

/// The rollup key of a run.
pub fn key_of(run: &llm_runs::Model) -> RollupKey {
    let start = run.started_at.timestamp();
    RollupKey {
        bucket_start: start.div_euclid(GRAIN_SECONDS) * GRAIN_SECONDS,
        provider: run.provider.clone(),
        model: run.model.clone(),
        execution_status: run.execution_status.clone(),
    }
}

/// What one run adds to its rollup row, given the sums of its steps.
fn usage_of(run: &llm_runs::Model, steps: &StepSums) -> RollupSums {
    let duration = run
        .completed_at
        .map(|c| (c - run.started_at).num_microseconds().unwrap_or(0));
    RollupSums {
        runs: 1,
        input_tokens: usage_total(Some(run.input_tokens), [steps.input_tokens].into_iter()),
        output_tokens: usage_total(Some(run.output_tokens), [steps.output_tokens].into_iter()),
        cache_read_tokens: usage_total(
            run.cache_read_tokens,
            [steps.cache_read_tokens].into_iter(),
        ),
        cache_creation_tokens: usage_total(
            run.cache_creation_tokens,
            [steps.cache_creation_tokens].into_iter(),
        ),
        cost_cents: usage_total(Some(run.cost_cents), [steps.cost_cents].into_iter()),
        duration_runs: i64::from(duration.is_some()),
        duration_us: duration.unwrap_or(0),
    }
}

/// Updates the tenant's rollups for a batch about to be inserted in `txn` (`runs` and `steps`
/// are the rows not stored yet; the tenant's writes are locked). Reads the stored runs whose
/// trace gains steps and the stored steps of every trace involved, then adds each run's change.
pub async fn maintain<C: ConnectionTrait>(
    txn: &C,
    tenant_id: &str,
    runs: &[llm_runs::Model],
    steps: &[trace_steps::Model],
) -> AppResult<()> {
    if runs.is_empty() && steps.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let mut new_sums: HashMap<&str, StepSums> = HashMap::new();
    for s in steps {
        new_sums
            .entry(s.trace_id.as_str())
            .or_default()
            .add(&StepSums::of_step(s));
    }
    let new_run_traces: BTreeSet<&str> =
        runs.iter().filter_map(|r| r.trace_id.as_deref()).collect();
    // Stored runs whose sums the new steps change (a run of this batch is not stored yet).
    let step_traces: Vec<&str> = new_sums
        .keys()
        .copied()
        .filter(|t| !new_run_traces.contains(t))
        .collect();
    let stored_runs = stored_runs_of(txn, tenant_id, &step_traces).await?;
    let mut traces: BTreeSet<&str> = new_run_traces.clone();
    traces.extend(stored_runs.iter().filter_map(|r| r.trace_id.as_deref()));
    let traces: Vec<&str> = traces.into_iter().collect();
    let stored_sums = stored_step_sums(txn, backend, tenant_id, &traces).await?;

    let mut deltas: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    let sums = |trace: Option<&str>, with_new: bool| {
        let mut s = trace
            .and_then(|t| stored_sums.get(t))
            .copied()
            .unwrap_or_default();
        if with_new && let Some(n) = trace.and_then(|t| new_sums.get(t)) {
            s.add(n);
        }
        s
    };
    for run in &stored_runs {
        let trace = run.trace_id.as_deref();
        let before = usage_of(run, &sums(trace, false));
        let after = usage_of(run, &sums(trace, true));
        let d = deltas.entry(key_of(run)).or_default();
        d.add(&after, 1);
        d.add(&before, -1);
    }
    for run in runs {
        let add = usage_of(run, &sums(run.trace_id.as_deref(), true));
        deltas.entry(key_of(run)).or_default().add(&add, 1);
    }
    deltas.retain(|_, d| !d.is_zero());
    upsert(txn, backend, tenant_id, &deltas).await
}

/// The stored runs on these traces.
///
/// As in `ingest::idempotency`, PostgreSQL gets the traces as one array joined to the table:
/// an `IN (…)` list is planned, once its prepared statement goes generic during a bulk load,
/// as a scan of the whole tenant's rows with the list as a filter (seconds per batch at a
/// million runs). SQLite takes chunks of `IN (…)`, which it answers through the index.
async fn stored_runs_of<C: ConnectionTrait>(
    txn: &C,
    tenant_id: &str,
    traces: &[&str],
) -> AppResult<Vec<llm_runs::Model>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    if traces.is_empty() {
        return Ok(Vec::new());
    }
    let what = || format!("read the stored runs of new steps of tenant {tenant_id}");
    if txn.get_database_backend() == DbBackend::Postgres {
        let traces: Vec<String> = traces.iter().map(|t| t.to_string()).collect();
        return llm_runs::Entity::find()
            .from_raw_sql(sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT t.* FROM unnest($1::text[]) AS k(trace_id) JOIN llm_runs t \
                 ON t.tenant_id = $2 AND t.trace_id = k.trace_id",
                [traces.into(), tenant_id.into()],
            ))
            .all(txn)
            .await
            .with_context(what);
    }
    let mut out = Vec::new();
    for chunk in traces.chunks(MAX_BOUND) {
        let rows = llm_runs::Entity::find()
            .filter(llm_runs::Column::TenantId.eq(tenant_id))
            .filter(llm_runs::Column::TraceId.is_in(chunk.iter().copied()))
            .all(txn)
            .await
            .with_context(what)?;
        out.extend(rows);
    }
    Ok(out)
}

/// The sums of the stored steps of these traces, by trace.
async fn stored_step_sums<C: ConnectionTrait>(
    txn: &C,
    backend: DbBackend,
    tenant_id: &str,
    traces: &[&str],
) -> AppResult<HashMap<String, StepSums>> {
    const SUMS: &str = "SELECT t.trace_id, CAST(SUM(t.input_tokens) AS BIGINT), \
         CAST(SUM(t.output_tokens) AS BIGINT), CAST(SUM(t.cache_read_tokens) AS BIGINT), \
         CAST(SUM(t.cache_creation_tokens) AS BIGINT), CAST(SUM(t.cost_cents) AS BIGINT)";
    let mut out = HashMap::new();
    // One array on PostgreSQL (see `stored_runs_of`), chunks of `IN (…)` on SQLite.
    let chunks: Vec<&[&str]> = if backend == DbBackend::Postgres {
        vec![traces]
    } else {
        traces.chunks(MAX_BOUND).collect()
    };
    for chunk in chunks {
        if chunk.is_empty() {
            continue;
        }
        let mut sql = Sql::new(backend);
        if backend == DbBackend::Postgres {
            let list: Vec<String> = chunk.iter().map(|t| t.to_string()).collect();
            sql.push(SUMS)
                .push(" FROM unnest(")
                .bind(list)
                .push("::text[]) AS k(trace_id) JOIN trace_steps t ON t.tenant_id = ")
                .bind(tenant_id)
                .push(" AND t.trace_id = k.trace_id GROUP BY t.trace_id");
        } else {
            sql.push(SUMS)
                .push(" FROM trace_steps t WHERE t.tenant_id = ")
                .bind(tenant_id)
                .push(" AND t.trace_id IN ");
            sql.bind_list(chunk.iter().copied());
            sql.push(" GROUP BY t.trace_id");
        }
        let rows = txn
            .query_all_raw(sql.statement())
            .await
            .with_context(|| format!("sum the stored steps of tenant {tenant_id}"))?;
        for row in rows {
            let read = || -> Result<(String, StepSums), sea_orm::DbErr> {
                let get = |i: usize| row.try_get_by_index::<Option<i64>>(i);
                let sums = StepSums {
                    input_tokens: get(1)?,
                    output_tokens: get(2)?,
                    cache_read_tokens: get(3)?,
                    cache_creation_tokens: get(4)?,
                    cost_cents: get(5)?,
                };
                Ok((row.try_get_by_index::<String>(0)?, sums))
            };
            let (trace, sums) = read().context("read the sums of stored steps")?;
            out.insert(trace, sums);
        }
    }
    Ok(out)
}

/// Adds `deltas` to the tenant's rollup rows (creating missing ones).
async fn upsert<C: ConnectionTrait>(
    txn: &C,
    backend: DbBackend,
    tenant_id: &str,
    deltas: &BTreeMap<RollupKey, RollupSums>,
) -> AppResult<()> {
    const COLUMNS: usize = 13;
    let rows: Vec<_> = deltas.iter().collect();
    for chunk in rows.chunks(MAX_BOUND / COLUMNS) {
        let mut sql = Sql::new(backend);
        sql.push(
            "INSERT INTO run_rollups (tenant_id, bucket_start, provider, model, \
             execution_status, runs, input_tokens, output_tokens, cache_read_tokens, \
             cache_creation_tokens, cost_cents, duration_runs, duration_us) VALUES ",
        );
        for (i, (k, d)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind_list::<sea_orm::Value>([
                tenant_id.into(),
                k.bucket_start.into(),
                k.provider.as_str().into(),
                k.model.as_str().into(),
                k.execution_status.as_str().into(),
                d.runs.into(),
                d.input_tokens.into(),
                d.output_tokens.into(),
                d.cache_read_tokens.into(),
                d.cache_creation_tokens.into(),
                d.cost_cents.into(),
                d.duration_runs.into(),
                d.duration_us.into(),
            ]);
        }
        sql.push(
            " ON CONFLICT (tenant_id, bucket_start, provider, model, execution_status) DO UPDATE \
             SET runs = run_rollups.runs + excluded.runs, \
             input_tokens = run_rollups.input_tokens + excluded.input_tokens, \
             output_tokens = run_rollups.output_tokens + excluded.output_tokens, \
             cache_read_tokens = run_rollups.cache_read_tokens + excluded.cache_read_tokens, \
             cache_creation_tokens = run_rollups.cache_creation_tokens + \
             excluded.cache_creation_tokens, \
             cost_cents = run_rollups.cost_cents + excluded.cost_cents, \
             duration_runs = run_rollups.duration_runs + excluded.duration_runs, \
             duration_us = run_rollups.duration_us + excluded.duration_us",
        );
        txn.execute_raw(sql.statement())
            .await
            .with_context(|| format!("update the run rollups of tenant {tenant_id}"))?;
    }
    Ok(())
}

/// The stored rollup rows of a tenant, in key order.
pub async fn stored<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
) -> AppResult<Vec<(RollupKey, RollupSums)>> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push(
        "SELECT bucket_start, provider, model, execution_status, runs, input_tokens, \
         output_tokens, cache_read_tokens, cache_creation_tokens, cost_cents, duration_runs, \
         duration_us FROM run_rollups WHERE tenant_id = ",
    )
    .bind(tenant_id)
    .push(" ORDER BY bucket_start, provider, model, execution_status");
    let rows = conn
        .query_all_raw(sql.statement())
        .await
        .with_context(|| format!("read the run rollups of tenant {tenant_id}"))?;
    rows.iter()
        .map(|r| {
            let i = |n: usize| r.try_get_by_index::<i64>(n);
            let s = |n: usize| r.try_get_by_index::<String>(n);
            Ok((
                RollupKey {
                    bucket_start: i(0)?,
                    provider: s(1)?,
                    model: s(2)?,
                    execution_status: s(3)?,
                },
                RollupSums {
                    runs: i(4)?,
                    input_tokens: i(5)?,
                    output_tokens: i(6)?,
                    cache_read_tokens: i(7)?,
                    cache_creation_tokens: i(8)?,
                    cost_cents: i(9)?,
                    duration_runs: i(10)?,
                    duration_us: i(11)?,
                },
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .with_context(|| format!("decode the run rollups of tenant {tenant_id}"))
}

/// Replaces a tenant's rollups by those recomputed from its evidence, in one transaction that
/// holds the tenant's writes (so ingest neither adds to the rows being replaced nor is missed).
/// Returns the number of rows written.
pub async fn rebuild(db: &Db, tenant_id: &str) -> AppResult<u64> {
    let tx = db.begin_write().await?;
    crate::ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let written = replace_from_evidence(&tx.txn, tenant_id).await?;
    tx.commit().await?;
    Ok(written)
}

/// Deletes the tenant's rollup rows and inserts those its evidence gives; returns how many.
async fn replace_from_evidence<C: ConnectionTrait>(txn: &C, tenant_id: &str) -> AppResult<u64> {
    let backend = txn.get_database_backend();
    let mut delete = Sql::new(backend);
    delete
        .push("DELETE FROM run_rollups WHERE tenant_id = ")
        .bind(tenant_id);
    txn.execute_raw(delete.statement())
        .await
        .with_context(|| format!("clear the run rollups of tenant {tenant_id}"))?;
    let binds: Vec<sea_orm::Value> = (0..migration::rollups::rebuild_binds(backend))
        .map(|_| tenant_id.into())
        .collect();
    Ok(txn
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            migration::rollups::rebuild_statement(backend, true),
            binds,
        ))
        .await
        .with_context(|| format!("recompute the run rollups of tenant {tenant_id}"))?
        .rows_affected())
}

/// One difference between the stored rollups and those the evidence gives.
#[derive(Debug, PartialEq, Eq)]
pub struct RollupDifference {
    pub key: RollupKey,
    pub stored: Option<RollupSums>,
    pub from_evidence: Option<RollupSums>,
}

/// Compares a tenant's stored rollups with those recomputed from its evidence, in one
/// transaction holding the tenant's writes that is rolled back (nothing changes).
pub async fn check(db: &Db, tenant_id: &str) -> AppResult<Vec<RollupDifference>> {
    let tx = db.begin_write().await?;
    crate::ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let before: BTreeMap<_, _> = stored(&tx.txn, tenant_id).await?.into_iter().collect();
    replace_from_evidence(&tx.txn, tenant_id).await?;
    let after: BTreeMap<_, _> = stored(&tx.txn, tenant_id).await?.into_iter().collect();
    // Dropped without commit: rolled back.
    drop(tx);
    let keys: BTreeSet<&RollupKey> = before.keys().chain(after.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| RollupDifference {
            key: k.clone(),
            stored: before.get(k).copied(),
            from_evidence: after.get(k).copied(),
        })
        .collect())
}

/// Every tenant's id, in order.
pub async fn tenants(db: &Db) -> AppResult<Vec<String>> {
    use sea_orm::{EntityTrait, QueryOrder};
    Ok(entity::tenants::Entity::find()
        .order_by_asc(entity::tenants::Column::Id)
        .all(&db.conn)
        .await
        .context("list the tenants")?
        .into_iter()
        .map(|t| t.id)
        .collect())
}
