//! Per-request DataLoaders: nested fields under a list are loaded in one statement per kind of
//! data, whatever the page size. Each loader is bound to the caller's tenant when the request
//! starts, so no key can reach another tenant's rows.
//!
//! Batches are capped at [`MAX_BATCH`] keys so one statement stays far below SQLite's
//! bound-parameter limit; the delay before a batch runs is short, because every key of a page
//! is requested within the same poll of the page's resolvers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::db::Db;
use crate::error::{AppError, Context};
use entity::{
    governance_events, llm_runs, log_exports, system_records, telemetry_samples, trace_steps,
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
    pub runs: DataLoader<RunById>,
    pub steps: DataLoader<StepsByTrace>,
    pub governance: DataLoader<GovernanceByRun>,
    pub correlated_system: DataLoader<SystemByCorrelation>,
    pub system_window: DataLoader<SystemInWindow>,
    pub exports: DataLoader<ExportsByRun>,
    pub telemetry: DataLoader<TelemetryByRun>,
}

fn loader<T: Loader<K>, K>(inner: T) -> DataLoader<T>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
{
    DataLoader::new(inner, tokio::spawn)
        .delay(BATCH_DELAY)
        .max_batch_size(MAX_BATCH)
}

impl Loaders {
    pub fn new(db: Db, tenant_id: String) -> Self {
        let t = TenantDb { db, tenant_id };
        Loaders {
            runs: loader(RunById(t.clone())),
            steps: loader(StepsByTrace(t.clone())),
            governance: loader(GovernanceByRun(t.clone())),
            correlated_system: loader(SystemByCorrelation(t.clone())),
            system_window: loader(SystemInWindow(t.clone())),
            exports: loader(ExportsByRun(t.clone())),
            telemetry: loader(TelemetryByRun(t)),
        }
    }
}

/// Groups rows by key, giving every requested key an entry (empty when it has no rows).
fn group<K, V>(keys: &[K], rows: Vec<V>, key_of: impl Fn(&V) -> K) -> HashMap<K, Vec<V>>
where
    K: std::hash::Hash + Eq + Clone,
{
    let mut out: HashMap<K, Vec<V>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        if let Some(list) = out.get_mut(&key_of(&row)) {
            list.push(row);
        }
    }
    out
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
        let rows = llm_runs::Entity::find()
            .filter(llm_runs::Column::TenantId.eq(&self.0.tenant_id))
            .filter(llm_runs::Column::RunId.is_in(keys.iter().cloned()))
            .all(&self.0.db.conn)
            .await
            .context("load runs by id")?;
        Ok(rows.into_iter().map(|r| (r.run_id.clone(), r)).collect())
    }
}

pub struct StepsByTrace(TenantDb);

impl Loader<String> for StepsByTrace {
    type Value = Vec<trace_steps::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = trace_steps::Entity::find()
            .filter(trace_steps::Column::TenantId.eq(&self.0.tenant_id))
            .filter(trace_steps::Column::TraceId.is_in(keys.iter().cloned()))
            .order_by_asc(trace_steps::Column::TraceId)
            .order_by_asc(trace_steps::Column::StepIndex)
            .all(&self.0.db.conn)
            .await
            .context("load trace steps")?;
        Ok(group(keys, rows, |s| s.trace_id.clone()))
    }
}

pub struct GovernanceByRun(TenantDb);

impl Loader<String> for GovernanceByRun {
    type Value = Vec<governance_events::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = governance_events::Entity::find()
            .filter(governance_events::Column::TenantId.eq(&self.0.tenant_id))
            .filter(governance_events::Column::RunId.is_in(keys.iter().cloned()))
            .order_by_asc(governance_events::Column::OccurredAt)
            .order_by_asc(governance_events::Column::Id)
            .all(&self.0.db.conn)
            .await
            .context("load governance events")?;
        Ok(group(keys, rows, |g| g.run_id.clone()))
    }
}

pub struct SystemByCorrelation(TenantDb);

impl Loader<String> for SystemByCorrelation {
    type Value = Vec<system_records::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = system_records::Entity::find()
            .filter(system_records::Column::CorrelationId.is_in(keys.iter().cloned()))
            .filter(visible_system(&self.0.tenant_id))
            .order_by_asc(system_records::Column::OccurredAt)
            .order_by_asc(system_records::Column::Id)
            .all(&self.0.db.conn)
            .await
            .context("load correlated system records")?;
        Ok(group(keys, rows, |s| s.correlation_id.clone().unwrap_or_default()))
    }
}

/// A closed time window in microseconds since the epoch.
pub type WindowKey = (i64, i64);

pub struct SystemInWindow(TenantDb);

impl Loader<WindowKey> for SystemInWindow {
    type Value = Vec<system_records::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[WindowKey],
    ) -> Result<HashMap<WindowKey, Self::Value>, Self::Error> {
        // One statement for all windows of the batch: OR of ranges, then each window picks its
        // rows in memory. Windows of a page overlap little, so rows are rarely fetched twice.
        let mut ranges = Condition::any();
        for (start, end) in keys {
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
        let rows = system_records::Entity::find()
            .filter(visible_system(&self.0.tenant_id))
            .filter(ranges)
            .order_by_asc(system_records::Column::OccurredAt)
            .order_by_asc(system_records::Column::Id)
            .all(&self.0.db.conn)
            .await
            .context("load system records in replay windows")?;
        let mut out = HashMap::with_capacity(keys.len());
        for key in keys {
            let (start, end) = *key;
            let inside = rows
                .iter()
                .filter(|r| {
                    let t = r.occurred_at.timestamp_micros();
                    t >= start && t <= end
                })
                .cloned()
                .collect();
            out.insert(*key, inside);
        }
        Ok(out)
    }
}

pub struct ExportsByRun(TenantDb);

impl Loader<String> for ExportsByRun {
    type Value = Vec<log_exports::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = log_exports::Entity::find()
            .filter(log_exports::Column::TenantId.eq(&self.0.tenant_id))
            .filter(log_exports::Column::RunId.is_in(keys.iter().cloned()))
            .order_by_desc(log_exports::Column::RequestedAt)
            .order_by_desc(log_exports::Column::Id)
            .all(&self.0.db.conn)
            .await
            .context("load exports of runs")?;
        Ok(group(keys, rows, |e| e.run_id.clone().unwrap_or_default()))
    }
}

pub struct TelemetryByRun(TenantDb);

impl Loader<String> for TelemetryByRun {
    type Value = Vec<telemetry_samples::Model>;
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
