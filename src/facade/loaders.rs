//! Per-request DataLoaders: nested fields under a list are loaded in one statement per kind of
//! data, whatever the page size. Each loader is bound to the caller's tenant when the request
//! starts, so no key can reach another tenant's rows.
//!
//! Batches are capped at [`MAX_BATCH`] keys so one statement stays far below SQLite's
//! bound-parameter limit. The delay before a batch runs is short; lists do not rely on it:
//! they prime the caches for a whole page at once (`Facade::prefetch_runs`), so the number of
//! statements of a request never depends on how fast resolvers happen to run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::decode::{self, EventColumns, StepColumns};
use super::inflection::replay_window;
use super::shared::Rows;
use crate::db::Db;
use crate::error::{AppError, Context};
use entity::{
    export_jobs, governance_events, llm_runs, log_exports, system_records, telemetry_samples,
    trace_steps,
};

pub const MAX_BATCH: usize = 400;
const BATCH_DELAY: Duration = Duration::from_millis(1);

/// Loader failures are shared by every waiting resolver.
pub type LoadError = Arc<AppError>;

/// What a loader needs: the pool and the caller's tenant.
#[derive(Clone)]
pub struct TenantDb {
    pub db: Db,
    pub tenant_id: String,
}

/// The loaders of one request.
pub struct Loaders {
    pub runs: Arc<DataLoader<RunById, HashMapCache>>,
    pub steps: Arc<DataLoader<StepsByTrace, HashMapCache>>,
    pub governance: Arc<DataLoader<GovernanceByRun, HashMapCache>>,
    pub correlated_system: DataLoader<SystemByCorrelation, HashMapCache>,
    pub system_window: DataLoader<SystemAroundRun, HashMapCache>,
    pub exports: DataLoader<ExportsByRun, HashMapCache>,
    pub export_jobs: DataLoader<JobsByExport, HashMapCache>,
    pub telemetry: DataLoader<TelemetryByRun, HashMapCache>,
}

/// A caching loader: within a request, a key is fetched at most once, and lists prime the
/// cache (see `Facade::prefetch_runs`) so nested views find their rows there.
fn loader<T: Loader<K>, K>(inner: T) -> DataLoader<T, HashMapCache>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
{
    DataLoader::with_cache(inner, tokio::spawn, HashMapCache::default())
        .delay(BATCH_DELAY)
        .max_batch_size(MAX_BATCH)
}

impl Loaders {
    /// Forgets every row the loaders hold (a live subscription's facade, which outlives a
    /// request, lets go of them between deliveries).
    pub fn clear(&self) {
        self.runs.clear::<String>();
        self.steps.clear::<StepsKey>();
        self.governance.clear::<EventsKey>();
        self.correlated_system.clear::<String>();
        self.system_window.clear::<WindowKey>();
        self.exports.clear::<String>();
        self.export_jobs.clear::<String>();
        self.telemetry.clear::<String>();
    }

    pub fn new(db: Db, tenant_id: String) -> Self {
        let t = TenantDb { db, tenant_id };
        let runs = Arc::new(loader(RunById(t.clone())));
        let steps = Arc::new(loader(StepsByTrace(t.clone())));
        let governance = Arc::new(loader(GovernanceByRun(t.clone())));
        Loaders {
            system_window: loader(SystemAroundRun {
                tenant: t.clone(),
                runs: runs.clone(),
                steps: steps.clone(),
                governance: governance.clone(),
            }),
            runs,
            steps,
            governance,
            correlated_system: loader(SystemByCorrelation(t.clone())),
            exports: loader(ExportsByRun(t.clone())),
            export_jobs: loader(JobsByExport(t.clone())),
            telemetry: loader(TelemetryByRun(t)),
        }
    }
}

/// Groups rows by key, giving every requested key an entry (empty when it has no rows).
fn group<K, V>(keys: &[K], rows: Vec<V>, key_of: impl Fn(&V) -> K) -> HashMap<K, Rows<V>>
where
    K: std::hash::Hash + Eq + Clone,
{
    let mut out: HashMap<K, Vec<V>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        if let Some(list) = out.get_mut(&key_of(&row)) {
            list.push(row);
        }
    }
    out.into_iter().map(|(k, v)| (k, Rows::from(v))).collect()
}

/// Visible system records: the tenant's own and the global ones.
pub fn visible_system(tenant_id: &str) -> Condition {
    Condition::any()
        .add(system_records::Column::TenantId.eq(tenant_id))
        .add(system_records::Column::TenantId.is_null())
}

pub struct RunById(TenantDb);

impl Loader<String> for RunById {
    type Value = llm_runs::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let select = llm_runs::Entity::find()
            .filter(llm_runs::Column::TenantId.eq(&self.0.tenant_id))
            .filter(llm_runs::Column::RunId.is_in(keys.iter().cloned()));
        let rows = decode::all(select, &self.0.db.conn)
            .await
            .context("load runs by id")?;
        Ok(rows.into_iter().map(|r| (r.run_id.clone(), r)).collect())
    }
}

/// Rows by key and set of columns, in one statement: the keys of a batch are read with every
/// column any of them asked for (a request's views of the same rows, batched together, share
/// one read). The rows are also kept under that wider set, so a later view asking for it
/// finds them.
async fn load_projected<S, M, Fut>(
    keys: &[(String, S)],
    union: impl Fn(S, S) -> S,
    read: impl FnOnce(Vec<String>, S) -> Fut,
    key_of: impl Fn(&M) -> String,
) -> Result<HashMap<(String, S), Rows<M>>, LoadError>
where
    S: Copy + Eq + std::hash::Hash,
    Fut: std::future::Future<Output = Result<Vec<M>, AppError>>,
{
    let Some(read_set) = keys.iter().map(|(_, set)| *set).reduce(union) else {
        return Ok(HashMap::new());
    };
    let mut ids: Vec<String> = keys.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let grouped = group(&ids, read(ids.clone(), read_set).await?, key_of);
    let mut out = HashMap::with_capacity(keys.len() + ids.len());
    for (id, set) in keys
        .iter()
        .cloned()
        .chain(ids.into_iter().map(|id| (id, read_set)))
    {
        if let Some(rows) = grouped.get(&id) {
            let rows = rows.clone();
            out.insert((id, set), rows);
        }
    }
    Ok(out)
}

pub struct StepsByTrace(TenantDb);

/// A trace's steps, read with a set of columns (a view that shows few of a step's columns
/// reads only those; see [`StepColumns`]).
pub type StepsKey = (String, StepColumns);

impl Loader<StepsKey> for StepsByTrace {
    type Value = Rows<trace_steps::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[StepsKey]) -> Result<HashMap<StepsKey, Self::Value>, Self::Error> {
        let read = |traces: Vec<String>, columns| async move {
            let select = trace_steps::Entity::find()
                .filter(trace_steps::Column::TenantId.eq(&self.0.tenant_id))
                .filter(trace_steps::Column::TraceId.is_in(traces))
                .order_by_asc(trace_steps::Column::TraceId)
                .order_by_asc(trace_steps::Column::StepIndex);
            decode::steps(select, columns, &self.0.db.conn)
                .await
                .context("load trace steps")
        };
        let key_of = |s: &trace_steps::Model| s.trace_id.clone();
        load_projected(keys, StepColumns::union, read, key_of).await
    }
}

pub struct GovernanceByRun(TenantDb);

/// A run's policy events, read with a set of columns (see [`EventColumns`]).
pub type EventsKey = (String, EventColumns);

impl Loader<EventsKey> for GovernanceByRun {
    type Value = Rows<governance_events::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EventsKey],
    ) -> Result<HashMap<EventsKey, Self::Value>, Self::Error> {
        let read = |runs: Vec<String>, columns| async move {
            let select = governance_events::Entity::find()
                .filter(governance_events::Column::TenantId.eq(&self.0.tenant_id))
                .filter(governance_events::Column::RunId.is_in(runs))
                .order_by_asc(governance_events::Column::OccurredAt)
                .order_by_asc(governance_events::Column::Id);
            decode::governance(select, columns, &self.0.db.conn)
                .await
                .context("load governance events")
        };
        let key_of = |g: &governance_events::Model| g.run_id.clone();
        load_projected(keys, EventColumns::union, read, key_of).await
    }
}

pub struct SystemByCorrelation(TenantDb);

impl Loader<String> for SystemByCorrelation {
    type Value = Rows<system_records::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        // Only the tenant's own records correlate to its runs: a global record is about the
        // platform, and run ids are only unique within a tenant.
        // Sorted here, not in SQL: with an ORDER BY on time, SQLite walks the tenant's time
        // index (every record of the tenant: seconds for a large one) instead of looking the
        // few correlated records up by correlation id.
        let select = system_records::Entity::find()
            .filter(system_records::Column::CorrelationId.is_in(keys.iter().cloned()))
            .filter(system_records::Column::TenantId.eq(&self.0.tenant_id));
        let mut rows = decode::all(select, &self.0.db.conn)
            .await
            .context("load correlated system records")?;
        rows.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        Ok(group(keys, rows, |s| {
            s.correlation_id.clone().unwrap_or_default()
        }))
    }
}

/// Key of a replay window: the run and the half-width of its window in seconds.
pub type WindowKey = (String, i64);

/// System records (the tenant's and global) in the replay window of each run.
///
/// A window is centred on the run's inflection point, which depends on the run's steps and
/// policy events. Resolvers register their key at once (before any of that is known), and this
/// batch resolves the runs, steps and policy events through the other loaders (cached, or one
/// statement each) before issuing a single statement for every window of the batch. So a page
/// of replays costs the same number of statements as one replay.
pub struct SystemAroundRun {
    tenant: TenantDb,
    runs: Arc<DataLoader<RunById, HashMapCache>>,
    steps: Arc<DataLoader<StepsByTrace, HashMapCache>>,
    governance: Arc<DataLoader<GovernanceByRun, HashMapCache>>,
}

impl Loader<WindowKey> for SystemAroundRun {
    type Value = Rows<system_records::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[WindowKey],
    ) -> Result<HashMap<WindowKey, Self::Value>, Self::Error> {
        let runs = self
            .runs
            .load_many(keys.iter().map(|(r, _)| r.clone()))
            .await?;
        let (all_steps, all_events) = (StepColumns::all(), EventColumns::all());
        let traces: Vec<StepsKey> = runs
            .values()
            .filter_map(|r| r.trace_id.clone().map(|t| (t, all_steps)))
            .collect();
        let (steps, governance) = futures_util::try_join!(
            self.steps.load_many(traces),
            self.governance
                .load_many(runs.keys().map(|r| (r.clone(), all_events))),
        )?;
        let mut windows: Vec<(WindowKey, (i64, i64))> = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(run) = runs.get(&key.0) else {
                continue;
            };
            let run_steps = run
                .trace_id
                .as_ref()
                .and_then(|t| steps.get(&(t.clone(), all_steps)))
                .map(|rows| &rows[..])
                .unwrap_or_default();
            let run_governance = governance
                .get(&(run.run_id.clone(), all_events))
                .map(|rows| &rows[..])
                .unwrap_or_default();
            let (start, end) = replay_window(run, run_steps, run_governance, key.1);
            windows.push((
                key.clone(),
                (start.timestamp_micros(), end.timestamp_micros()),
            ));
        }
        // One statement for all windows: OR of ranges; each window then picks its rows.
        let mut ranges = Condition::any();
        for (_, (start, end)) in &windows {
            let (Some(s), Some(e)) = (
                chrono::DateTime::from_timestamp_micros(*start),
                chrono::DateTime::from_timestamp_micros(*end),
            ) else {
                continue;
            };
            ranges = ranges.add(
                Expr::col(system_records::Column::OccurredAt)
                    .gte(s)
                    .and(Expr::col(system_records::Column::OccurredAt).lte(e)),
            );
        }
        let rows = if windows.is_empty() {
            Vec::new()
        } else {
            let select = system_records::Entity::find()
                .filter(visible_system(&self.tenant.tenant_id))
                .filter(ranges)
                .order_by_asc(system_records::Column::OccurredAt)
                .order_by_asc(system_records::Column::Id);
            decode::all(select, &self.tenant.db.conn)
                .await
                .context("load system records in replay windows")?
        };
        let mut out = HashMap::with_capacity(keys.len());
        for (key, (start, end)) in windows {
            let inside: Vec<system_records::Model> = rows
                .iter()
                .filter(|r| {
                    let t = r.occurred_at.timestamp_micros();
                    t >= start && t <= end
                })
                .cloned()
                .collect();
            out.insert(key, Rows::from(inside));
        }
        Ok(out)
    }
}

pub struct ExportsByRun(TenantDb);

impl Loader<String> for ExportsByRun {
    type Value = Rows<log_exports::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        // Sorted here, newest first, for the reason given in `SystemByCorrelation`: an ORDER BY
        // on time sent SQLite down the tenant's time index.
        let mut rows = log_exports::Entity::find()
            .filter(log_exports::Column::TenantId.eq(&self.0.tenant_id))
            .filter(log_exports::Column::RunId.is_in(keys.iter().cloned()))
            .all(&self.0.db.conn)
            .await
            .context("load exports of runs")?;
        rows.sort_by(|a, b| (b.requested_at, &b.id).cmp(&(a.requested_at, &a.id)));
        Ok(group(keys, rows, |e| e.run_id.clone().unwrap_or_default()))
    }
}

/// The build jobs of exports, by export id (a page of exports shows each one's progress).
pub struct JobsByExport(TenantDb);

impl Loader<String> for JobsByExport {
    type Value = export_jobs::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        Ok(export_jobs::Entity::find()
            .filter(export_jobs::Column::TenantId.eq(&self.0.tenant_id))
            .filter(export_jobs::Column::ExportId.is_in(keys.iter().cloned()))
            .all(&self.0.db.conn)
            .await
            .context("load export jobs")?
            .into_iter()
            .map(|j| (j.export_id.clone(), j))
            .collect())
    }
}

pub struct TelemetryByRun(TenantDb);

impl Loader<String> for TelemetryByRun {
    type Value = Rows<telemetry_samples::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = telemetry_samples::Entity::find()
            .filter(telemetry_samples::Column::TenantId.eq(&self.0.tenant_id))
            .filter(telemetry_samples::Column::RunId.is_in(keys.iter().cloned()))
            .order_by_asc(telemetry_samples::Column::SampledAt)
            .order_by_asc(telemetry_samples::Column::Id)
            .all(&self.0.db.conn)
            .await
            .context("load telemetry samples")?;
        Ok(group(keys, rows, |t| t.run_id.clone()))
    }
}
