//! Deterministic, realistic demo and benchmark data: tenants with LLM runs, their step traces,
//! policy events, system records (tenant and global), telemetry and the audit trail a week of
//! real use leaves (only entries the server itself writes: see [`audit_trail`]), then the exports
//! the tenant's auditors ask for, made through the product's own export path ([`exports`]).
//!
//! This file holds the options and the entry points (`runledger seed`, `serve --demo`, the
//! bench and the tests call them); one concept per submodule: [`rng`] (the PRNG), [`roster`]
//! (which tenants a seed names), [`catalog`] (models, people, skills), [`steps`] (a run's
//! trace), [`generator`] (one tenant's world, run by run, batched), [`governance`],
//! [`system`], [`telemetry`], [`audit_trail`] and [`exports`]. The submodules share this module's names
//! (`use super::*`): together they are one generator, split for reading.
//!
//! Every value is drawn from a small in-file PRNG (splitmix64) seeded from
//! [`SeedOptions::seed`], the tenant id and the run index, so the same options give the same
//! tenants, ids, timestamps and values, and a run's data does not depend on how runs are
//! batched. Times lie in the seven days before 2026-11-01T00:00:00Z (a fixed anchor, so output
//! does not depend on when the seeder runs). Data goes through [`crate::ingest::store`] in
//! batches of [`RUNS_PER_BATCH`] runs, so memory stays bounded whatever the run count; the
//! global system records of a batch go in a batch of their own, anchored in the platform ledger.
//! Ledger entry ids, hashes and `recorded_at` are assigned by the appender and are not
//! reproducible; exports are requested and built when the seeder runs (their entries and
//! checkpoints carry the time they were made), after the evidence they hold.

mod audit_trail;
mod catalog;
mod exports;
mod generator;
mod governance;
mod rng;
mod roster;
mod steps;
mod system;
mod telemetry;
#[cfg(test)]
mod tests;

use std::ops::Range;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::auth;
use crate::canonical::canonical_json;
use crate::db::Db;
use crate::domain::{
    ActorType, ExportFormat, ExportStatus, Origin, PolicyDecision, Role, RunStatus, Severity,
    StepStatus,
};
use crate::error::{AppError, AppResult, Context};
use crate::ingest::{self, EvidenceBatch};
use crate::ledger::{self, NewEntry};
use entity::{
    governance_events, llm_runs, system_records, telemetry_samples, tenants, trace_steps,
};

use catalog::*;
pub use exports::SeedExports;
use exports::*;
use generator::*;
use rng::*;
use roster::*;
use steps::*;

/// Runs (with everything that belongs to them) written per [`ingest::store`] call.
pub const RUNS_PER_BATCH: u32 = 500;

const MILLI: i64 = 1_000;
const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// 2026-11-01T00:00:00Z in microseconds since the epoch: the end of the seeded week.
const ANCHOR_US: i64 = 1_793_491_200 * SECOND;
const PERIOD_START_US: i64 = ANCHOR_US - 7 * DAY;
/// Runs start in `[RUNS_FROM_US, RUNS_FROM_US + RUNS_SPAN_US)`: the first hour of the week holds
/// the tenant's key setup, and the last two hours leave the longest runs room to complete (and
/// be looked at) before the anchor.
const RUNS_FROM_US: i64 = PERIOD_START_US + HOUR;
const RUNS_SPAN_US: i64 = 7 * DAY - 3 * HOUR;
/// When runtime v2.14.3 was deployed: runtime versions and restart causes change here.
const DEPLOY_US: i64 = PERIOD_START_US + 3 * DAY + 12 * HOUR;

const MAX_TENANTS: u32 = 10_000;
const MAX_RUNS: u32 = 10_000_000;
const MAX_STEPS_PER_RUN: u32 = 200;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// Number of tenants ([`seed`] only).
    pub tenants: u32,
    /// Runs per tenant.
    pub runs: u32,
    /// Trace steps per run.
    pub steps_per_run: u32,
    /// Share of runs, in percent, that carry telemetry samples (a sample set every 0.5-1 s of
    /// the run, three metrics each: by far the most rows per run).
    pub telemetry_percent: u32,
    /// PRNG seed: the same seed gives the same data.
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            tenants: 3,
            runs: 200,
            steps_per_run: 8,
            telemetry_percent: 50,
            seed: 42,
        }
    }
}

impl SeedOptions {
    fn validate(&self, with_tenant_count: bool) -> AppResult<()> {
        if with_tenant_count && !(1..=MAX_TENANTS).contains(&self.tenants) {
            return Err(AppError::bad_input(format!(
                "tenants must be between 1 and {MAX_TENANTS}, got {}",
                self.tenants
            )));
        }
        if self.runs > MAX_RUNS {
            return Err(AppError::bad_input(format!(
                "runs must be at most {MAX_RUNS} per tenant, got {}",
                self.runs
            )));
        }
        if !(1..=MAX_STEPS_PER_RUN).contains(&self.steps_per_run) {
            return Err(AppError::bad_input(format!(
                "steps per run must be between 1 and {MAX_STEPS_PER_RUN}, got {}",
                self.steps_per_run
            )));
        }
        if self.telemetry_percent > 100 {
            return Err(AppError::bad_input(format!(
                "telemetry percent must be between 0 and 100, got {}",
                self.telemetry_percent
            )));
        }
        Ok(())
    }
}

/// Seeds tenants and returns their ids in order.
///
/// Fails with [`AppError::Conflict`] before writing anything when one of the tenants the seed
/// names already exists.
pub async fn seed(db: &Db, opts: &SeedOptions, exports: SeedExports<'_>) -> AppResult<Vec<String>> {
    opts.validate(true)?;
    let specs = tenant_specs(opts.seed, opts.tenants);
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    let existing = tenants::Entity::find()
        .filter(tenants::Column::Id.is_in(ids.clone()))
        .one(&db.conn)
        .await
        .context("look for existing tenants before seeding")?;
    if let Some(t) = existing {
        return Err(already_exists(&t.id, "use another --seed"));
    }
    for (i, spec) in specs.iter().enumerate() {
        // Global records are created once per call, alongside the first tenant's runs.
        let with_globals = i == 0;
        seed_one(db, spec, opts, with_globals, "use another --seed", exports).await?;
    }
    Ok(ids)
}

/// Seeds exactly one tenant with the given id/name (used by `serve --demo`), global system
/// records included.
pub async fn seed_tenant(
    db: &Db,
    tenant_id: &str,
    name: &str,
    opts: &SeedOptions,
    exports: SeedExports<'_>,
) -> AppResult<()> {
    opts.validate(false)?;
    let mut rng = Prng::derive(opts.seed, &[STREAM_TENANT, fnv1a(tenant_id)]);
    let frameworks = *rng.pick(&[FRAMEWORKS_GENERAL, FRAMEWORKS_HEALTH, FRAMEWORKS_AI]);
    let spec = TenantSpec {
        id: tenant_id.to_string(),
        name: name.to_string(),
        frameworks,
    };
    seed_one(db, &spec, opts, true, "use another tenant id", exports).await
}

/// What a database holds, as far as demo seeding is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    /// No tenant at all.
    Empty,
    /// The tenant asked about exists.
    HasTenant,
    /// Other tenants exist, not this one.
    OtherTenantsOnly,
}

/// Whether the database is empty, holds `tenant_id`, or only other tenants.
pub async fn database_state(db: &Db, tenant_id: &str) -> AppResult<DatabaseState> {
    let own = tenants::Entity::find_by_id(tenant_id.to_string())
        .one(&db.conn)
        .await
        .with_context(|| format!("look up tenant {tenant_id}"))?;
    if own.is_some() {
        return Ok(DatabaseState::HasTenant);
    }
    let any = tenants::Entity::find()
        .one(&db.conn)
        .await
        .context("look for any tenant")?;
    Ok(if any.is_some() {
        DatabaseState::OtherTenantsOnly
    } else {
        DatabaseState::Empty
    })
}

fn already_exists(tenant_id: &str, hint: &str) -> AppError {
    AppError::Conflict(format!(
        "tenant `{tenant_id}` already exists; seed a fresh database or {hint}"
    ))
}

async fn seed_one(
    db: &Db,
    spec: &TenantSpec,
    opts: &SeedOptions,
    with_globals: bool,
    hint: &str,
    exports: SeedExports<'_>,
) -> AppResult<()> {
    let tenant_id = spec.id.as_str();
    if !auth::ensure_tenant(db, tenant_id, &spec.name, spec.frameworks).await? {
        return Err(already_exists(tenant_id, hint));
    }
    let generator = TenantGenerator::new(tenant_id, opts, with_globals);
    let batches = opts.runs.div_ceil(RUNS_PER_BATCH).max(1);
    let mut export_plans = Vec::new();
    for b in 0..batches {
        let from = b * RUNS_PER_BATCH;
        let to = from.saturating_add(RUNS_PER_BATCH).min(opts.runs);
        let (mut batch, mut plans) = generator.batch(from..to);
        bounded(&mut plans, export_plans.len());
        export_plans.extend(plans);
        let runs = batch.runs.len();
        // Global records belong to no tenant: the platform ledger anchors them.
        let (global, own) = std::mem::take(&mut batch.system_records)
            .into_iter()
            .partition::<Vec<_>, _>(|s| s.tenant_id.is_none());
        batch.system_records = own;
        let stored = ingest::store(db, tenant_id, batch).await?;
        if !global.is_empty() {
            let platform = EvidenceBatch {
                system_records: global,
                ..EvidenceBatch::default()
            };
            let anchored = ingest::store(db, ledger::PLATFORM_LEDGER, platform).await?;
            tracing::info!(
                batch = b + 1,
                records = anchored.records,
                merkle_root = anchored.merkle_root.as_deref().unwrap_or("-"),
                "seeded global system records"
            );
        }
        tracing::info!(
            tenant = %tenant_id,
            batch = b + 1,
            batches,
            runs,
            records = stored.records,
            ledger_entries = stored.ledger.len(),
            merkle_root = stored.merkle_root.as_deref().unwrap_or("-"),
            "seeded evidence batch"
        );
    }
    export_plans.extend(generator.tenant_export_plans());
    let requested = export_plans.len();
    exports::request_all(db, tenant_id, export_plans, exports).await?;
    tracing::info!(tenant = %tenant_id, exports = requested, "seeded exports");
    Ok(())
}
