//! `llmRunStats`: runs counted by status, usage summed and durations averaged and ranked, per
//! group (provider, model, status, agent, source, session) and time bucket of `started_at`.
//!
//! Usage follows the run usage view: a kind's total is the record's own value when above zero,
//! else the sum over the run's steps. Group keys are the run record's fields (what the run
//! list filters on), so a dashboard's group and the list it opens agree.
//!
//! Whole quarter hours of a window are read from the run rollups (`crate::rollup`) when the
//! filter and the grouping only use what they are keyed by (provider, model, status) and the
//! zone's offsets lie on quarter hours; the window's ragged ends, and every other question,
//! are read from the runs themselves. Percentiles are exact (nearest rank over the runs that
//! completed) and always read from the runs, and only when asked for.

use std::collections::HashMap;

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait,
};

use super::{AsOf, GroupKey, Grouped, Measure, StatsRequest, TimeAxis, as_of, group, query};
use crate::auth::Permission;
use crate::db::Sql;
use crate::domain::RunStatus;
use crate::error::{AppError, AppResult, Context};
use crate::facade::runs::RunFilter;
use crate::facade::{Facade, Scope};
use crate::ledger::vocabulary::EntityType;
use crate::rollup::GRAIN_SECONDS;
use chrono::{DateTime, Duration, Utc};
use entity::llm_runs;
use migration::rollups::{USAGE_KINDS, duration_micros, epoch_seconds, usage_total};

/// What runs are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
#[graphql(name = "LlmRunDimension")]
pub enum RunDimension {
    Provider,
    Model,
    /// The run's final status.
    Status,
    /// The agent the run is attributed to (none for runs of a human).
    Agent,
    /// The producer of the record (`sdk`, `otel`, …).
    Source,
    /// The session (conversation).
    Session,
}

impl RunDimension {
    fn column(self) -> llm_runs::Column {
        match self {
            RunDimension::Provider => llm_runs::Column::Provider,
            RunDimension::Model => llm_runs::Column::Model,
            RunDimension::Status => llm_runs::Column::ExecutionStatus,
            RunDimension::Agent => llm_runs::Column::AgentId,
            RunDimension::Source => llm_runs::Column::Source,
            RunDimension::Session => llm_runs::Column::SessionId,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RunDimension::Provider => "provider",
            RunDimension::Model => "model",
            RunDimension::Status => "execution_status",
            RunDimension::Agent => "agent_id",
            RunDimension::Source => "source",
            RunDimension::Session => "session_id",
        }
    }

    /// The GraphQL name.
    pub fn label(self) -> &'static str {
        match self {
            RunDimension::Provider => "PROVIDER",
            RunDimension::Model => "MODEL",
            RunDimension::Status => "STATUS",
            RunDimension::Agent => "AGENT",
            RunDimension::Source => "SOURCE",
            RunDimension::Session => "SESSION",
        }
    }

    fn in_rollups(self) -> bool {
        matches!(
            self,
            RunDimension::Provider | RunDimension::Model | RunDimension::Status
        )
    }
}

/// Which measures the caller's selection reads (the rest are not computed).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunStatsAsked {
    /// Which usage sums, in the order of `migration::rollups::USAGE_KINDS` (input, output,
    /// cache-read and cache-creation tokens, cost): each one not read from a run record costs a
    /// look at its steps.
    pub usage: [bool; 5],
    /// Average duration or completed runs.
    pub durations: bool,
    /// p50, p90 or p99 duration, by where they are read: each level is one ranking of the
    /// window's runs.
    pub percentiles: PercentilesAsked,
}

/// Where a selection reads percentiles.
#[derive(Clone, Copy, Debug, Default)]
pub struct PercentilesAsked {
    pub total: bool,
    pub series: bool,
    pub group_total: bool,
    pub group_series: bool,
}

impl PercentilesAsked {
    fn any(self) -> bool {
        self.total || self.series || self.group_total || self.group_series
    }
}

/// The measures of one group in one bucket (or in the whole window).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunMeasures {
    pub runs: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub blocked: i64,
    pub timed_out: i64,
    pub aborted: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cost_cents: i64,
    /// Runs with a completion time, and the sum of their durations.
    pub completed: i64,
    pub duration_us: i64,
    /// Nearest-rank percentiles of the completed runs' durations (µs), when asked for.
    pub p50_us: Option<i64>,
    pub p90_us: Option<i64>,
    pub p99_us: Option<i64>,
}

impl Measure for RunMeasures {
    fn merge(&mut self, o: &Self) {
        self.runs += o.runs;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.blocked += o.blocked;
        self.timed_out += o.timed_out;
        self.aborted += o.aborted;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_creation_tokens += o.cache_creation_tokens;
        self.cost_cents += o.cost_cents;
        self.completed += o.completed;
        self.duration_us += o.duration_us;
    }

    fn rows(&self) -> i64 {
        self.runs
    }
}

impl RunMeasures {
    /// Runs that ended in an error (failed, timed out, aborted) per run; blocked runs were
    /// stopped by a policy and are not errors. `None` without runs.
    pub fn error_rate(&self) -> Option<f64> {
        (self.runs > 0)
            .then(|| (self.failed + self.timed_out + self.aborted) as f64 / self.runs as f64)
    }

    pub fn duration_avg_us(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.duration_us as f64 / self.completed as f64)
    }
}

/// An answer of `llmRunStats`.
pub struct RunStats {
    pub axis: TimeAxis,
    pub dimensions: Vec<RunDimension>,
    pub total: RunMeasures,
    pub series: Vec<RunMeasures>,
    pub grouped: Grouped<RunMeasures>,
    pub as_of: AsOf,
    /// Runs counted from rollups rather than read one by one.
    pub runs_from_rollups: i64,
}

/// The statuses counted apart, in the order of the count columns.
const STATUS_COUNTS: [RunStatus; 5] = [
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Blocked,
    RunStatus::TimedOut,
    RunStatus::Aborted,
];

/// Measures from a row whose columns from `first` on are: runs, the five status counts, the
/// five usage sums, completed runs and summed duration.
fn measures_of(row: &sea_orm::QueryResult, first: usize) -> Result<RunMeasures, sea_orm::DbErr> {
    let i = |n: usize| -> Result<i64, sea_orm::DbErr> {
        Ok(row.try_get_by_index::<Option<i64>>(first + n)?.unwrap_or(0))
    };
    Ok(RunMeasures {
        runs: i(0)?,
        succeeded: i(1)?,
        failed: i(2)?,
        blocked: i(3)?,
        timed_out: i(4)?,
        aborted: i(5)?,
        input_tokens: i(6)?,
        output_tokens: i(7)?,
        cache_read_tokens: i(8)?,
        cache_creation_tokens: i(9)?,
        cost_cents: i(10)?,
        completed: i(11)?,
        duration_us: i(12)?,
        ..RunMeasures::default()
    })
}

/// The counting window `[lo, hi)`: the request's window narrowed by the filter's start bounds
/// (`startedBefore` is inclusive; timestamps are whole microseconds).
fn window(axis: &TimeAxis, filter: &RunFilter) -> (DateTime<Utc>, DateTime<Utc>) {
    let lo = filter
        .started_after
        .map_or(axis.from, |t| Ord::max(t.0, axis.from));
    let hi = filter.started_before.map_or(axis.to, |t| {
        Ord::min(t.0 + Duration::microseconds(1), axis.to)
    });
    (lo, Ord::max(hi, lo))
}

/// Whether the rollups can answer for this filter and grouping.
fn rollups_fit(filter: &RunFilter, dims: &[RunDimension], axis: &TimeAxis) -> bool {
    filter_fits_rollups(filter) && dims.iter().all(|d| d.in_rollups()) && axis.quarter_hours_fit()
}

/// Whether the filter names only what the rollups are keyed by (provider, model, statuses)
/// besides start bounds.
fn filter_fits_rollups(f: &RunFilter) -> bool {
    f.run_id.is_none()
        && f.trace_id.is_none()
        && f.source.is_none()
        && f.is_synthetic.is_none()
        && f.agent_id.is_none()
        && f.human_actor_id.is_none()
        && f.session_id.is_none()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

impl Facade {
    /// Aggregates of the tenant's runs matching `filter` over the request's window.
    pub async fn llm_run_stats(
        &self,
        filter: RunFilter,
        group_by: Vec<RunDimension>,
        request: StatsRequest,
        asked: RunStatsAsked,
    ) -> AppResult<RunStats> {
        let scope = self.scope(Permission::ReadEvidence)?;
        filter.validate()?;
        let axis = request.axis()?;
        let limit = request.group_limit()?;
        check_dimensions(&group_by)?;
        let tenant = scope.tenant_id;
        let backend = scope.db.backend();
        let txn = scope.db.begin_snapshot().await?;
        let as_of = as_of(&txn, tenant).await?;
        let (lo, hi) = window(&axis, &filter);

        let mut cells: HashMap<(GroupKey, usize), RunMeasures> = HashMap::new();
        let mut runs_from_rollups = 0;
        let mut raw_ranges = vec![(lo, hi)];
        if lo < hi && rollups_fit(&filter, &group_by, &axis) {
            let (a, b) = (ceil_grain(lo), floor_grain(hi));
            if a < b {
                let rows =
                    rollup_cells(&txn, backend, tenant, &filter, &group_by, &axis, a, b).await?;
                for (key, m) in rows {
                    runs_from_rollups += m.runs;
                    cells.entry(key).or_default().merge(&m);
                }
                raw_ranges = vec![(lo, at(a)), (at(b), hi)];
            }
        }
        for (from, to) in raw_ranges {
            if from >= to {
                continue;
            }
            let rows = raw_cells(
                &txn,
                backend,
                tenant,
                &filter,
                &group_by,
                &axis,
                (from, to),
                asked,
            )
            .await?;
            for (key, m) in rows {
                cells.entry(key).or_default().merge(&m);
            }
        }

        let buckets = axis.buckets.len();
        let mut total = RunMeasures::default();
        let mut series = vec![RunMeasures::default(); buckets];
        for ((_, b), m) in &cells {
            total.merge(m);
            if let Some(s) = series.get_mut(*b) {
                s.merge(m);
            }
        }
        let mut grouped = if group_by.is_empty() {
            Grouped {
                groups: Vec::new(),
                other: None,
            }
        } else {
            group(cells, buckets, limit)
        };
        if asked.percentiles.any() && lo < hi {
            let ranks = Ranks {
                txn: &txn,
                backend,
                tenant,
                filter: &filter,
                axis: &axis,
                window: (lo, hi),
            };
            ranks
                .fill(
                    asked.percentiles,
                    &mut total,
                    &mut series,
                    &mut grouped,
                    &group_by,
                )
                .await?;
        }
        drop(txn);

        let mut applied = filter.applied();
        if let Some(m) = applied.as_object_mut() {
            m.insert("window".into(), axis.describe());
            m.insert(
                "groupBy".into(),
                group_by.iter().map(|d| d.name()).collect::<Vec<_>>().into(),
            );
        }
        self.note_list(
            "runs",
            EntityType::LlmRunStats,
            "llmRunStats",
            applied,
            Vec::new(),
        );
        Ok(RunStats {
            axis,
            dimensions: group_by,
            total,
            series,
            grouped,
            as_of,
            runs_from_rollups,
        })
    }

    /// How many runs match the filter, from the rollups where the filter allows (whole quarter
    /// hours), else `None`.
    /// (The caller has authorized the read: `scope` is its.)
    pub(crate) async fn count_runs_from_rollups(
        scope: &Scope<'_>,
        filter: &RunFilter,
    ) -> AppResult<Option<u64>> {
        let f = filter;
        if !filter_fits_rollups(f) {
            return Ok(None);
        }
        let backend = scope.db.backend();
        let lo = f.started_after.map(|t| t.0);
        let hi = f.started_before.map(|t| t.0 + Duration::microseconds(1));
        // Whole quarter hours inside [lo, hi) from the rollups, the rest from the runs.
        let a = lo.map(ceil_grain);
        let b = hi.map(floor_grain);
        if let (Some(a), Some(b)) = (a, b)
            && a >= b
        {
            return Ok(None);
        }
        if lo.is_none() && hi.is_none() {
            // One statement: no snapshot needed.
            let n = rollup_count(&scope.db.conn, backend, scope.tenant_id, filter, a, b).await?;
            return Ok(Some(n as u64));
        }
        // The rollups and the edges' runs in one snapshot.
        let txn = scope.db.begin_snapshot().await?;
        let mut count = rollup_count(&txn, backend, scope.tenant_id, filter, a, b).await?;
        let unbounded = RunFilter {
            started_after: None,
            started_before: None,
            ..filter.clone()
        };
        let mut edges = Vec::new();
        if let (Some(lo), Some(a)) = (lo, a) {
            edges.push((lo, at(a)));
        }
        if let (Some(b), Some(hi)) = (b, hi) {
            edges.push((at(b), hi));
        }
        for (from, to) in edges {
            if from >= to {
                continue;
            }
            use sea_orm::PaginatorTrait;
            count += llm_runs::Entity::find()
                .filter(unbounded.condition(scope.tenant_id))
                .filter(llm_runs::Column::StartedAt.gte(from))
                .filter(llm_runs::Column::StartedAt.lt(to))
                .count(&txn)
                .await
                .context("count the runs at a window's edge")? as i64;
        }
        drop(txn);
        Ok(Some(count as u64))
    }
}

/// Runs of the rollups in whole quarter hours `[a, b)` (either side open) matching `filter`'s
/// provider, model and statuses.
async fn rollup_count<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    tenant: &str,
    filter: &RunFilter,
    a: Option<i64>,
    b: Option<i64>,
) -> AppResult<i64> {
    let mut sql = Sql::new(backend);
    sql.push("SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_rollups WHERE tenant_id = ")
        .bind(tenant);
    if let Some(a) = a {
        sql.push(" AND bucket_start >= ").bind(a);
    }
    if let Some(b) = b {
        sql.push(" AND bucket_start < ").bind(b);
    }
    rollup_filter(&mut sql, filter);
    let rows = query(conn, sql.statement(), "count runs from the rollups").await?;
    Ok(rows
        .first()
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()
        .context("read a rollup count")?
        .unwrap_or(0))
}

/// The first whole quarter hour (epoch seconds) at or after `t`.
fn ceil_grain(t: DateTime<Utc>) -> i64 {
    let s = t.timestamp() + i64::from(t.timestamp_subsec_micros() > 0);
    s + (-s).rem_euclid(GRAIN_SECONDS)
}

/// The last whole quarter hour (epoch seconds) at or before `t`.
fn floor_grain(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(GRAIN_SECONDS) * GRAIN_SECONDS
}

fn check_dimensions(dims: &[RunDimension]) -> AppResult<()> {
    if dims.len() > 3 {
        return Err(AppError::bad_input("groupBy takes at most 3 dimensions"));
    }
    for (i, d) in dims.iter().enumerate() {
        if dims[..i].contains(d) {
            return Err(AppError::bad_input(format!(
                "groupBy names {} twice",
                d.label()
            )));
        }
    }
    Ok(())
}

/// ` AND …` of the filter fields the rollups are keyed by.
fn rollup_filter(sql: &mut Sql, filter: &RunFilter) {
    if let Some(p) = &filter.provider {
        sql.push(" AND provider = ").bind(p.as_str());
    }
    if let Some(m) = &filter.model {
        sql.push(" AND model = ").bind(m.as_str());
    }
    if let Some(s) = &filter.execution_status {
        sql.push(" AND execution_status IN ");
        sql.bind_list(s.iter().map(|s| s.as_str()));
    }
}

/// Reads a group key from columns `0..n`.
fn key_of(row: &sea_orm::QueryResult, n: usize) -> Result<GroupKey, sea_orm::DbErr> {
    (0..n)
        .map(|i| row.try_get_by_index::<Option<String>>(i))
        .collect()
}

/// Cells of whole quarter hours `[a, b)` (epoch seconds) from the rollups.
#[allow(clippy::too_many_arguments)]
async fn rollup_cells(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    tenant: &str,
    filter: &RunFilter,
    dims: &[RunDimension],
    axis: &TimeAxis,
    a: i64,
    b: i64,
) -> AppResult<Vec<((GroupKey, usize), RunMeasures)>> {
    let keys = axis.index_by_key();
    let mut sql = Sql::new(backend);
    sql.push("SELECT ");
    for d in dims {
        sql.push(d.name()).push(", ");
    }
    sql.push(&axis.key_sql("bucket_start"))
        .push(" AS rl_k, CAST(SUM(runs) AS BIGINT)");
    for s in STATUS_COUNTS {
        sql.push(&format!(
            ", CAST(SUM(CASE WHEN execution_status = '{}' THEN runs ELSE 0 END) AS BIGINT)",
            s.as_str()
        ));
    }
    for (k, _) in USAGE_KINDS {
        sql.push(&format!(", CAST(SUM({k}) AS BIGINT)"));
    }
    sql.push(", CAST(SUM(duration_runs) AS BIGINT), CAST(SUM(duration_us) AS BIGINT) FROM run_rollups WHERE tenant_id = ")
        .bind(tenant)
        .push(" AND bucket_start >= ")
        .bind(a)
        .push(" AND bucket_start < ")
        .bind(b);
    rollup_filter(&mut sql, filter);
    sql.push(" GROUP BY ");
    for d in dims {
        sql.push(d.name()).push(", ");
    }
    sql.push("rl_k");
    let rows = query(txn, sql.statement(), "read run stats from the rollups").await?;
    decode_cells(&rows, dims.len(), &keys)
}

/// Cells of rows whose columns are the group's `dims` values, the bucket key, then the
/// measures ([`measures_of`]).
fn decode_cells(
    rows: &[sea_orm::QueryResult],
    dims: usize,
    keys: &HashMap<i64, usize>,
) -> AppResult<Vec<((GroupKey, usize), RunMeasures)>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let key = key_of(row, dims).context("read a stats group")?;
        let k: i64 = row.try_get_by_index(dims).context("read a stats bucket")?;
        let m = measures_of(row, dims + 1).context("read stats measures")?;
        let bucket = keys.get(&k).copied().ok_or_else(|| {
            AppError::internal(
                "place a stats row",
                format!("bucket key {k} outside the axis"),
            )
        })?;
        out.push(((key, bucket), m));
    }
    Ok(out)
}

/// Cells of `[from, to)` read from the runs.
#[allow(clippy::too_many_arguments)]
async fn raw_cells(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    tenant: &str,
    filter: &RunFilter,
    dims: &[RunDimension],
    axis: &TimeAxis,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    asked: RunStatsAsked,
) -> AppResult<Vec<((GroupKey, usize), RunMeasures)>> {
    let keys = axis.index_by_key();
    let mut select = llm_runs::Entity::find()
        .select_only()
        .filter(filter.condition(tenant))
        .filter(llm_runs::Column::StartedAt.gte(from))
        .filter(llm_runs::Column::StartedAt.lt(to));
    for (i, d) in dims.iter().enumerate() {
        select = select.column_as(
            Expr::cust(format!("llm_runs.{}", d.name())),
            format!("rl_d{i}"),
        );
    }
    let epoch = epoch_seconds(backend, "llm_runs.started_at");
    select = select
        .column_as(Expr::cust(axis.key_sql(&epoch)), "rl_k")
        .column_as(Expr::cust("COUNT(*)"), "rl_runs");
    for (i, s) in STATUS_COUNTS.iter().enumerate() {
        select = select.column_as(
            Expr::cust(format!(
                "CAST(SUM(CASE WHEN llm_runs.execution_status = '{}' THEN 1 ELSE 0 END) AS BIGINT)",
                s.as_str()
            )),
            format!("rl_s{i}"),
        );
    }
    for (i, (k, nullable)) in USAGE_KINDS.into_iter().enumerate() {
        let e = if asked.usage[i] {
            let steps = format!(
                "(SELECT SUM(s.{k}) FROM trace_steps s WHERE s.tenant_id = llm_runs.tenant_id \
                 AND s.trace_id = llm_runs.trace_id)"
            );
            format!(
                "CAST(SUM({}) AS BIGINT)",
                usage_total("llm_runs", k, nullable, &steps)
            )
        } else {
            "CAST(0 AS BIGINT)".to_string()
        };
        select = select.column_as(Expr::cust(e), format!("rl_{k}"));
    }
    let (completed, duration) = if asked.durations {
        let d = duration_micros(backend, "llm_runs.started_at", "llm_runs.completed_at");
        (
            "COUNT(llm_runs.completed_at)".to_string(),
            format!("CAST(SUM({d}) AS BIGINT)"),
        )
    } else {
        (
            "CAST(0 AS BIGINT)".to_string(),
            "CAST(0 AS BIGINT)".to_string(),
        )
    };
    select = select
        .column_as(Expr::cust(completed), "rl_completed")
        .column_as(Expr::cust(duration), "rl_duration");
    for i in 0..dims.len() {
        select = select.group_by(Expr::cust(format!("rl_d{i}")));
    }
    select = select.group_by(Expr::cust("rl_k"));
    let rows = query(txn, select.build(backend), "read run stats from the runs").await?;
    decode_cells(&rows, dims.len(), &keys)
}

/// Exact duration percentiles, read from the runs of the window.
struct Ranks<'a> {
    txn: &'a DatabaseTransaction,
    backend: DbBackend,
    tenant: &'a str,
    filter: &'a RunFilter,
    axis: &'a TimeAxis,
    window: (DateTime<Utc>, DateTime<Utc>),
}

/// Percentiles by (group index, bucket key).
type RankMap = HashMap<(i64, i64), [Option<i64>; 3]>;

const PERCENTILES: [i64; 3] = [50, 90, 99];

impl Ranks<'_> {
    async fn fill(
        &self,
        asked: PercentilesAsked,
        total: &mut RunMeasures,
        series: &mut [RunMeasures],
        grouped: &mut Grouped<RunMeasures>,
        dims: &[RunDimension],
    ) -> AppResult<()> {
        let keys = self.axis.index_by_key();
        let bucketed = self.axis.unit.is_some();
        let set = |m: &mut RunMeasures, p: [Option<i64>; 3]| {
            m.p50_us = p[0];
            m.p90_us = p[1];
            m.p99_us = p[2];
        };
        // Without buckets a series is the whole window: one ranking serves both.
        if asked.total || (asked.series && !bucketed) {
            let whole = self.ranks(None, false).await?;
            if let Some(p) = whole.get(&(0, 0)) {
                set(total, *p);
                if !bucketed && let Some(s) = series.first_mut() {
                    set(s, *p);
                }
            }
        }
        if asked.series && bucketed {
            for ((_, k), p) in self.ranks(None, true).await? {
                if let Some(s) = keys.get(&k).and_then(|i| series.get_mut(*i)) {
                    set(s, p);
                }
            }
        }
        if dims.is_empty() || !(asked.group_total || asked.group_series) {
            return Ok(());
        }
        let members: Vec<GroupKey> = grouped.groups.iter().map(|(k, _, _)| k.clone()).collect();
        let membership = Some((dims, members.as_slice()));
        let by_group = if asked.group_total || !bucketed {
            self.ranks(membership, false).await?
        } else {
            RankMap::new()
        };
        let by_group_bucket = match (asked.group_series, bucketed) {
            (true, true) => self.ranks(membership, true).await?,
            (true, false) => by_group.clone(),
            (false, _) => RankMap::new(),
        };
        let apply = |g: i64, t: &mut RunMeasures, s: &mut [RunMeasures]| {
            if let Some(p) = by_group.get(&(g, 0)) {
                set(t, *p);
            }
            for ((gi, k), p) in &by_group_bucket {
                if *gi == g
                    && let Some(slot) = keys.get(k).and_then(|i| s.get_mut(*i))
                {
                    set(slot, *p);
                }
            }
        };
        for (i, (_, t, s)) in grouped.groups.iter_mut().enumerate() {
            apply(i as i64, t, s);
        }
        if let Some((t, s, _)) = grouped.other.as_mut() {
            apply(-1, t, s);
        }
        Ok(())
    }

    /// Percentiles partitioned by group (kept groups by index, the rest −1; all runs 0 when
    /// `membership` is `None`) and by bucket (`bucketed`; else one key 0).
    async fn ranks(
        &self,
        membership: Option<(&[RunDimension], &[GroupKey])>,
        bucketed: bool,
    ) -> AppResult<RankMap> {
        let (from, to) = self.window;
        let group_expr: sea_orm::sea_query::SimpleExpr = match membership {
            None => Expr::cust("CAST(0 AS BIGINT)"),
            Some((_, [])) => Expr::cust("CAST(-1 AS BIGINT)"),
            Some((dims, members)) => {
                let mut case = sea_orm::sea_query::CaseStatement::new();
                for (i, key) in members.iter().enumerate() {
                    let mut c = Condition::all();
                    for (d, v) in dims.iter().zip(key) {
                        c = c.add(match v {
                            Some(v) => Expr::col((llm_runs::Entity, d.column())).eq(v.clone()),
                            None => Expr::col((llm_runs::Entity, d.column())).is_null(),
                        });
                    }
                    case = case.case(c, Expr::val(i as i64));
                }
                case.finally(Expr::val(-1i64)).into()
            }
        };
        let key = if bucketed {
            self.axis
                .key_sql(&epoch_seconds(self.backend, "llm_runs.started_at"))
        } else {
            "CAST(0 AS BIGINT)".to_string()
        };
        let duration =
            duration_micros(self.backend, "llm_runs.started_at", "llm_runs.completed_at");
        let inner = llm_runs::Entity::find()
            .select_only()
            .column_as(group_expr, "rl_g")
            .column_as(Expr::cust(key), "rl_k")
            .column_as(Expr::cust(duration), "rl_d")
            .filter(self.filter.condition(self.tenant))
            .filter(llm_runs::Column::StartedAt.gte(from))
            .filter(llm_runs::Column::StartedAt.lt(to))
            .filter(llm_runs::Column::CompletedAt.is_not_null())
            .build(self.backend);
        let wanted = PERCENTILES
            .iter()
            .map(|p| format!("rl_r = ({p} * rl_n + 99) / 100"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT rl_g, rl_k, rl_n, rl_r, rl_d FROM (SELECT rl_g, rl_k, rl_d, \
             ROW_NUMBER() OVER (PARTITION BY rl_g, rl_k ORDER BY rl_d) AS rl_r, \
             COUNT(*) OVER (PARTITION BY rl_g, rl_k) AS rl_n FROM ({}) rl_t0) rl_t1 WHERE {wanted}",
            inner.sql
        );
        let statement = sea_orm::Statement {
            sql,
            values: inner.values,
            db_backend: self.backend,
        };
        let rows = query(self.txn, statement, "rank run durations").await?;
        let mut out: RankMap = HashMap::new();
        for row in &rows {
            let get = |i: usize| row.try_get_by_index::<i64>(i);
            let (g, k, n, r, d) = (get(0), get(1), get(2), get(3), get(4));
            let (g, k, n, r, d) = (
                g.context("read a rank")?,
                k.context("read a rank")?,
                n.context("read a rank")?,
                r.context("read a rank")?,
                d.context("read a rank")?,
            );
            let slot = out.entry((g, k)).or_default();
            for (i, p) in PERCENTILES.iter().enumerate() {
                if r == (p * n + 99) / 100 {
                    slot[i] = Some(d);
                }
            }
        }
        Ok(out)
    }
}
