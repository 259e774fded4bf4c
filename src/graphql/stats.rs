//! GraphQL surface of the dashboards' aggregates: `llmRunStats`, `systemRecordStats` and
//! `auditStats` (the facade's `stats` computes them), their buckets, groups and as-of.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{FixedOffset, Offset};

use super::audit::Checkpoint;
use super::common::facade;
use crate::domain::Timestamp;
use crate::facade::audit::AuditFilter;
use crate::facade::runs::RunFilter;
use crate::facade::stats::{
    AsOf, AuditDimension, Bucket, BucketUnit, CountMeasures, CountStats, GroupKey, Grouped,
    PercentilesAsked, RunDimension, RunMeasures, RunStats, RunStatsAsked, StatsRequest,
    SystemDimension, TimeAxis,
};
use crate::facade::system::SystemFilter;

#[derive(Default)]
pub struct StatsQuery;

/// Complexity of a stats field: its selection, plus one for every ten series points it may
/// return (buckets × groups, with `other`), estimated from its arguments.
pub fn stats_cost(
    bucket: &Option<BucketUnit>,
    from: &Timestamp,
    to: &Timestamp,
    grouped: bool,
    group_limit: &Option<i32>,
    child_complexity: usize,
) -> usize {
    let seconds = (to.0 - from.0).num_seconds().max(0) as u64;
    let unit = match bucket {
        None => u64::MAX,
        Some(BucketUnit::Minute) => 60,
        Some(BucketUnit::Hour) => 3_600,
        Some(BucketUnit::Day) => 86_400,
        Some(BucketUnit::Week) => 7 * 86_400,
        Some(BucketUnit::Month) => 28 * 86_400,
    };
    let buckets = (seconds / unit + 2).min(crate::facade::stats::axis::MAX_BUCKETS as u64 + 1);
    let groups = if grouped {
        group_limit.map_or(crate::facade::stats::DEFAULT_GROUPS as u64, |n| {
            n.max(1) as u64
        }) + 1
    } else {
        1
    };
    child_complexity.max(1) + (buckets * groups / 10) as usize
}

fn request(
    from: Timestamp,
    to: Timestamp,
    bucket: Option<BucketUnit>,
    time_zone: String,
    group_limit: Option<i32>,
) -> StatsRequest {
    StatsRequest {
        from,
        to,
        bucket,
        time_zone,
        group_limit,
    }
}

/// Whether the selection under a stats field reads any of `fields` of a measure.
fn reads(ctx: &Context<'_>, fields: &[&str]) -> bool {
    let look = ctx.look_ahead();
    fields.iter().any(|f| {
        look.field("total").field(f).exists()
            || look.field("series").field(f).exists()
            || look.field("groups").field("total").field(f).exists()
            || look.field("groups").field("series").field(f).exists()
    })
}

/// Where the selection reads duration percentiles.
fn percentiles_read(ctx: &Context<'_>) -> PercentilesAsked {
    let look = ctx.look_ahead();
    let at = |f: &dyn Fn(&str) -> bool| {
        ["durationP50Ms", "durationP90Ms", "durationP99Ms"]
            .iter()
            .any(|p| f(p))
    };
    PercentilesAsked {
        total: at(&|p| look.field("total").field(p).exists()),
        series: at(&|p| look.field("series").field(p).exists()),
        group_total: at(&|p| look.field("groups").field("total").field(p).exists()),
        group_series: at(&|p| look.field("groups").field("series").field(p).exists()),
    }
}

#[Object]
impl StatsQuery {
    /// Aggregates of the tenant's runs (those `filter` selects) that started in `[from, to)`:
    /// in total, per `bucket` of the window in `timeZone`, and per group of `groupBy` (the
    /// `groupLimit` groups with the most runs, the rest folded into one `other` group).
    #[graphql(
        complexity = "stats_cost(&bucket, &from, &to, group_by.as_ref().is_some_and(|g| !g.is_empty()), &group_limit, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn llm_run_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
        group_by: Option<Vec<RunDimension>>,
        from: Timestamp,
        to: Timestamp,
        bucket: Option<BucketUnit>,
        #[graphql(default = "UTC")] time_zone: String,
        #[graphql(desc = "Groups kept (1 to 100, default 10); the rest are folded into `other`.")]
        group_limit: Option<i32>,
    ) -> Result<LlmRunStats> {
        let asked = RunStatsAsked {
            usage: [
                reads(ctx, &["inputTokens", "totalTokens"]),
                reads(ctx, &["outputTokens", "totalTokens"]),
                reads(ctx, &["cacheReadTokens"]),
                reads(ctx, &["cacheCreationTokens"]),
                reads(ctx, &["costCents"]),
            ],
            durations: reads(ctx, &["durationAvgMs", "completedRuns"]),
            percentiles: percentiles_read(ctx),
        };
        let stats = facade(ctx)?
            .llm_run_stats(
                filter.unwrap_or_default(),
                group_by.unwrap_or_default(),
                request(from, to, bucket, time_zone, group_limit),
                asked,
            )
            .await?;
        Ok(LlmRunStats(stats))
    }

    /// Counts of the system records the tenant sees (its own and global ones) that occurred
    /// in `[from, to)`, in total, per bucket and per group.
    #[graphql(
        complexity = "stats_cost(&bucket, &from, &to, group_by.as_ref().is_some_and(|g| !g.is_empty()), &group_limit, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn system_record_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<SystemFilter>,
        group_by: Option<Vec<SystemDimension>>,
        from: Timestamp,
        to: Timestamp,
        bucket: Option<BucketUnit>,
        #[graphql(default = "UTC")] time_zone: String,
        group_limit: Option<i32>,
    ) -> Result<SystemRecordStats> {
        let stats = facade(ctx)?
            .system_record_stats(
                filter.unwrap_or_default(),
                group_by.unwrap_or_default(),
                request(from, to, bucket, time_zone, group_limit),
            )
            .await?;
        Ok(SystemRecordStats(stats))
    }

    /// Counts of the tenant's ledger entries that occurred in `[from, to)` (denied
    /// authorizations, reads by actor, …), in total, per bucket and per group.
    #[graphql(
        complexity = "stats_cost(&bucket, &from, &to, group_by.as_ref().is_some_and(|g| !g.is_empty()), &group_limit, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn audit_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        group_by: Option<Vec<AuditDimension>>,
        from: Timestamp,
        to: Timestamp,
        bucket: Option<BucketUnit>,
        #[graphql(default = "UTC")] time_zone: String,
        group_limit: Option<i32>,
    ) -> Result<AuditStats> {
        let stats = facade(ctx)?
            .audit_stats(
                filter.unwrap_or_default(),
                group_by.unwrap_or_default(),
                request(from, to, bucket, time_zone, group_limit),
            )
            .await?;
        Ok(AuditStats(stats))
    }
}

/// The window of a stats answer.
#[derive(SimpleObject)]
#[graphql(name = "StatsWindow")]
pub struct StatsWindow {
    from: Timestamp,
    to: Timestamp,
    time_zone: String,
    bucket: Option<BucketUnit>,
}

fn window(axis: &TimeAxis) -> StatsWindow {
    StatsWindow {
        from: axis.from.into(),
        to: axis.to.into(),
        time_zone: axis.zone.name().to_string(),
        bucket: axis.unit,
    }
}

/// One time bucket: `[start, end)`; only its part inside the window is counted.
pub struct StatsBucket(Bucket);

#[Object]
impl StatsBucket {
    async fn start(&self) -> Timestamp {
        self.0.start.into()
    }
    async fn end(&self) -> Timestamp {
        self.0.end.into()
    }
    /// `start` in the answer's time zone, with its UTC offset (RFC 3339).
    async fn local_start(&self) -> String {
        let offset = FixedOffset::east_opt(self.0.offset).unwrap_or(chrono::Utc.fix());
        self.0
            .start
            .with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }
}

/// The ledger state an answer reflects.
pub struct StatsAsOf(AsOf);

#[Object]
impl StatsAsOf {
    /// Entries of the tenant's ledger when the figures were read: they reflect exactly the
    /// evidence anchored by entries 1 to `treeSize`.
    async fn tree_size(&self) -> i64 {
        self.0.tree_size
    }
    /// The newest signed checkpoint at or before `treeSize` (none yet: `null`). A later
    /// consistency proof from it to a newer checkpoint shows the evidence counted is unchanged.
    async fn checkpoint(&self) -> Option<Checkpoint> {
        self.0.checkpoint.clone().map(Checkpoint::Stored)
    }
}

/// One value of a group's key.
#[derive(SimpleObject)]
pub struct StatsKey {
    /// The dimension (an enum value of the field's `groupBy`).
    dimension: String,
    /// Its value (`null`: the records have none, e.g. runs of no agent).
    value: Option<String>,
}

fn keys(dimensions: &[String], key: &GroupKey) -> Vec<StatsKey> {
    dimensions
        .iter()
        .zip(key)
        .map(|(d, v)| StatsKey {
            dimension: d.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Groups of an answer in order, `other` last, as (key, folded groups, total, series).
fn groups_of<M: Clone>(
    grouped: &Grouped<M>,
    dimensions: &[String],
) -> Vec<(Vec<StatsKey>, i32, M, Vec<M>)> {
    let mut out: Vec<_> = grouped
        .groups
        .iter()
        .map(|(k, t, s)| (keys(dimensions, k), 0, t.clone(), s.clone()))
        .collect();
    if let Some((t, s, n)) = &grouped.other {
        out.push((Vec::new(), *n as i32, t.clone(), s.clone()));
    }
    out
}

/// Measures of runs in one bucket (or the whole window: `bucketStart` null).
pub struct LlmRunMeasures(RunMeasures, Option<Bucket>);

fn ms(us: Option<i64>) -> Option<f64> {
    us.map(|v| v as f64 / 1000.0)
}

#[Object]
impl LlmRunMeasures {
    async fn bucket_start(&self) -> Option<Timestamp> {
        self.1.map(|b| b.start.into())
    }
    async fn runs(&self) -> i64 {
        self.0.runs
    }
    async fn succeeded(&self) -> i64 {
        self.0.succeeded
    }
    async fn failed(&self) -> i64 {
        self.0.failed
    }
    /// Stopped by a policy.
    async fn blocked(&self) -> i64 {
        self.0.blocked
    }
    async fn timed_out(&self) -> i64 {
        self.0.timed_out
    }
    async fn aborted(&self) -> i64 {
        self.0.aborted
    }
    /// (failed + timedOut + aborted) / runs; `null` without runs.
    async fn error_rate(&self) -> Option<f64> {
        self.0.error_rate()
    }
    /// Usage as the run usage view reports it (the run's own totals, else its steps' sums).
    async fn input_tokens(&self) -> i64 {
        self.0.input_tokens
    }
    async fn output_tokens(&self) -> i64 {
        self.0.output_tokens
    }
    async fn cache_read_tokens(&self) -> i64 {
        self.0.cache_read_tokens
    }
    async fn cache_creation_tokens(&self) -> i64 {
        self.0.cache_creation_tokens
    }
    /// inputTokens + outputTokens.
    async fn total_tokens(&self) -> i64 {
        self.0.input_tokens + self.0.output_tokens
    }
    async fn cost_cents(&self) -> i64 {
        self.0.cost_cents
    }
    /// Runs with a completion time (the durations are theirs).
    async fn completed_runs(&self) -> i64 {
        self.0.completed
    }
    async fn duration_avg_ms(&self) -> Option<f64> {
        self.0.duration_avg_us().map(|v| v / 1000.0)
    }
    /// Exact nearest-rank percentiles of the completed runs' durations.
    async fn duration_p50_ms(&self) -> Option<f64> {
        ms(self.0.p50_us)
    }
    async fn duration_p90_ms(&self) -> Option<f64> {
        ms(self.0.p90_us)
    }
    async fn duration_p99_ms(&self) -> Option<f64> {
        ms(self.0.p99_us)
    }
}

fn run_series(series: &[RunMeasures], axis: &TimeAxis) -> Vec<LlmRunMeasures> {
    if axis.unit.is_none() {
        return Vec::new();
    }
    series
        .iter()
        .zip(&axis.buckets)
        .map(|(m, b)| LlmRunMeasures(m.clone(), Some(*b)))
        .collect()
}

/// One group of runs.
pub struct LlmRunStatsGroup {
    key: Vec<StatsKey>,
    folded: i32,
    total: RunMeasures,
    series: Vec<LlmRunMeasures>,
}

#[Object]
impl LlmRunStatsGroup {
    /// The group's value per dimension of `groupBy`; empty for `other`.
    async fn key(&self) -> &[StatsKey] {
        &self.key
    }
    /// Whether this is the `other` group (the groups beyond `groupLimit`, together).
    async fn other(&self) -> bool {
        self.folded > 0
    }
    /// How many groups `other` holds (0 for a kept group).
    async fn groups_folded(&self) -> i32 {
        self.folded
    }
    async fn total(&self) -> LlmRunMeasures {
        LlmRunMeasures(self.total.clone(), None)
    }
    /// One entry per bucket, in order (empty without `bucket`).
    async fn series(&self) -> &[LlmRunMeasures] {
        &self.series
    }
}

/// Aggregates of runs.
pub struct LlmRunStats(RunStats);

#[Object]
impl LlmRunStats {
    async fn window(&self) -> StatsWindow {
        window(&self.0.axis)
    }
    /// The buckets, in order (empty without `bucket`).
    async fn buckets(&self) -> Vec<StatsBucket> {
        match self.0.axis.unit {
            None => Vec::new(),
            Some(_) => self
                .0
                .axis
                .buckets
                .iter()
                .copied()
                .map(StatsBucket)
                .collect(),
        }
    }
    /// Every run the filter selects in the window.
    async fn total(&self) -> LlmRunMeasures {
        LlmRunMeasures(self.0.total.clone(), None)
    }
    /// All runs per bucket.
    async fn series(&self) -> Vec<LlmRunMeasures> {
        run_series(&self.0.series, &self.0.axis)
    }
    /// Groups, most runs first; `other` last when groups were folded.
    async fn groups(&self) -> Vec<LlmRunStatsGroup> {
        let dims: Vec<String> = self
            .0
            .dimensions
            .iter()
            .map(|d| d.label().to_string())
            .collect();
        groups_of(&self.0.grouped, &dims)
            .into_iter()
            .map(|(key, folded, total, series)| LlmRunStatsGroup {
                key,
                folded,
                total,
                series: run_series(&series, &self.0.axis),
            })
            .collect()
    }
    /// How many groups were folded into `other` (0: none).
    async fn other_groups(&self) -> i32 {
        self.0
            .grouped
            .other
            .as_ref()
            .map_or(0, |(_, _, n)| *n as i32)
    }
    async fn as_of(&self) -> StatsAsOf {
        StatsAsOf(self.0.as_of.clone())
    }
    /// Runs counted from the derived rollups (whole quarter hours) rather than one by one;
    /// the rest of `total.runs` was read from the runs.
    async fn runs_from_rollups(&self) -> i64 {
        self.0.runs_from_rollups
    }
}

/// Counts in one bucket (or the whole window: `bucketStart` null).
pub struct StatsCounts(CountMeasures, Option<Bucket>, &'static str);

#[Object]
impl StatsCounts {
    async fn bucket_start(&self) -> Option<Timestamp> {
        self.1.map(|b| b.start.into())
    }
    /// Records (system records, or ledger entries).
    async fn count(&self) -> i64 {
        self.0.rows
    }
    /// Of them, the flagged ones: system records of severity ERROR or CRITICAL (incidents);
    /// ledger entries with the decision DENY (denied authorizations).
    async fn flagged(&self) -> i64 {
        self.0.flagged
    }
    /// What `flagged` counts: `incidents` or `denied`.
    async fn flagged_means(&self) -> &str {
        self.2
    }
}

/// One group of counted records.
pub struct StatsCountGroup {
    key: Vec<StatsKey>,
    folded: i32,
    total: StatsCounts,
    series: Vec<StatsCounts>,
}

#[Object]
impl StatsCountGroup {
    async fn key(&self) -> &[StatsKey] {
        &self.key
    }
    async fn other(&self) -> bool {
        self.folded > 0
    }
    async fn groups_folded(&self) -> i32 {
        self.folded
    }
    async fn total(&self) -> &StatsCounts {
        &self.total
    }
    async fn series(&self) -> &[StatsCounts] {
        &self.series
    }
}

fn count_series(series: &[CountMeasures], axis: &TimeAxis, flag: &'static str) -> Vec<StatsCounts> {
    if axis.unit.is_none() {
        return Vec::new();
    }
    series
        .iter()
        .zip(&axis.buckets)
        .map(|(m, b)| StatsCounts(*m, Some(*b), flag))
        .collect()
}

/// The fields shared by `SystemRecordStats` and `AuditStats`.
macro_rules! count_stats_object {
    ($name:ident, $flag:literal, $doc:literal) => {
        #[doc = $doc]
        pub struct $name(CountStats);

        #[Object]
        impl $name {
            async fn window(&self) -> StatsWindow {
                window(&self.0.axis)
            }
            async fn buckets(&self) -> Vec<StatsBucket> {
                match self.0.axis.unit {
                    None => Vec::new(),
                    Some(_) => self
                        .0
                        .axis
                        .buckets
                        .iter()
                        .copied()
                        .map(StatsBucket)
                        .collect(),
                }
            }
            async fn total(&self) -> StatsCounts {
                StatsCounts(self.0.total, None, $flag)
            }
            async fn series(&self) -> Vec<StatsCounts> {
                count_series(&self.0.series, &self.0.axis, $flag)
            }
            async fn groups(&self) -> Vec<StatsCountGroup> {
                groups_of(&self.0.grouped, &self.0.dimensions)
                    .into_iter()
                    .map(|(key, folded, total, series)| StatsCountGroup {
                        key,
                        folded,
                        total: StatsCounts(total, None, $flag),
                        series: count_series(&series, &self.0.axis, $flag),
                    })
                    .collect()
            }
            async fn other_groups(&self) -> i32 {
                self.0
                    .grouped
                    .other
                    .as_ref()
                    .map_or(0, |(_, _, n)| *n as i32)
            }
            async fn as_of(&self) -> StatsAsOf {
                StatsAsOf(self.0.as_of.clone())
            }
        }
    };
}

count_stats_object!(SystemRecordStats, "incidents", "Counts of system records.");
count_stats_object!(AuditStats, "denied", "Counts of ledger entries.");
