//! The seeded exports: the exports a tenant's auditors ask for, made through the product's own
//! path once the evidence is stored — [`crate::export::request`] as the auditor's key, then built
//! by [`crate::export::worker::build_now`] (signed, downloadable, verifiable), cancelled through
//! [`crate::export::cancel`], or left queued for a server's export workers. The seeder never
//! writes an export row or an EXPORT ledger entry itself.

use super::*;
use crate::export::spec::{LedgerSelection, RunSelection, SystemSelection};
use crate::export::{self, ExportSettings, ExportSpec};
use crate::ledger::checkpoint::LedgerKeys;
use crate::ledger::vocabulary::key_actor;

/// Share of runs (beyond the first, always exported) an auditor exports.
pub(super) const EXPORTED_RUN_SHARE: f64 = 0.01;
/// Run exports requested per tenant at most, whatever the run count (each is a real build).
const MAX_RUN_EXPORTS: usize = 25;
/// Exports left queued per tenant at most (well under the pending limit a tenant has).
const MAX_QUEUED: usize = 2;

/// What building exports needs: the key that signs the checkpoint a bundle is pinned to, and
/// where finished files go (the server that serves them must use the same directory).
#[derive(Clone, Copy)]
pub struct SeedExports<'a> {
    pub keys: &'a LedgerKeys,
    pub settings: &'a ExportSettings,
}

/// What happens to a requested export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExportOutcome {
    /// Built at once.
    Built,
    /// Left in the queue: a server's workers build it when they run.
    Queued,
    /// Cancelled by the auditor who asked for it.
    Cancelled,
}

/// One export an auditor asks for.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ExportPlan {
    pub(super) spec: ExportSpec,
    pub(super) format: ExportFormat,
    /// The requester as the server records it: the auditor's key.
    pub(super) requested_by: String,
    pub(super) outcome: ExportOutcome,
}

impl TenantGenerator {
    /// The export of a run an auditor asks for (the first run's is a built bundle).
    pub(super) fn export_plan(&self, rng: &mut Prng, ctx: &RunContext) -> ExportPlan {
        let (format, outcome) = if ctx.index == 0 {
            (ExportFormat::Bundle, ExportOutcome::Built)
        } else {
            (
                rng.weighted(&[
                    (ExportFormat::Bundle, 60),
                    (ExportFormat::OtlpJson, 25),
                    (ExportFormat::Csv, 15),
                ]),
                rng.weighted(&[
                    (ExportOutcome::Built, 85),
                    (ExportOutcome::Cancelled, 10),
                    (ExportOutcome::Queued, 5),
                ]),
            )
        };
        ExportPlan {
            spec: ExportSpec::Run {
                run_id: ctx.run_id.clone(),
            },
            format,
            requested_by: key_actor(&self.keys.auditor),
            outcome,
        }
    }

    /// The tenant-wide exports asked for after the runs: the access and authorization trail of
    /// the ledger as a bundle (what a security review takes away), the failed runs as CSV, and
    /// the system records as a bundle, cancelled by the auditor who asked for it.
    pub(super) fn tenant_export_plans(&self) -> Vec<ExportPlan> {
        let requested_by = key_actor(&self.keys.auditor);
        vec![
            ExportPlan {
                spec: ExportSpec::Ledger(LedgerSelection {
                    categories: Some(vec!["ACCESS".into(), "AUTHORIZATION".into()]),
                    ..LedgerSelection::default()
                }),
                format: ExportFormat::Bundle,
                requested_by: requested_by.clone(),
                outcome: ExportOutcome::Built,
            },
            ExportPlan {
                spec: ExportSpec::Runs {
                    filter: RunSelection {
                        execution_status: Some(vec![RunStatus::Failed.as_str().to_string()]),
                        ..RunSelection::default()
                    },
                },
                format: ExportFormat::Csv,
                requested_by: requested_by.clone(),
                outcome: ExportOutcome::Built,
            },
            ExportPlan {
                spec: ExportSpec::System(SystemSelection::default()),
                format: ExportFormat::Bundle,
                requested_by,
                outcome: ExportOutcome::Cancelled,
            },
        ]
    }
}

/// Requests `plans` in order through the product's export path and carries each out; queued
/// ones beyond [`MAX_QUEUED`] are built instead (run exports are bounded by [`bounded`]).
pub(super) async fn request_all(
    db: &Db,
    tenant_id: &str,
    plans: Vec<ExportPlan>,
    exports: SeedExports<'_>,
) -> AppResult<()> {
    let mut queued = 0;
    for plan in plans {
        let outcome = match plan.outcome {
            ExportOutcome::Queued if queued >= MAX_QUEUED => ExportOutcome::Built,
            ExportOutcome::Queued => {
                queued += 1;
                ExportOutcome::Queued
            }
            other => other,
        };
        let row = export::request(
            db,
            exports.settings.max_pending_per_tenant,
            tenant_id,
            &plan.requested_by,
            &plan.spec,
            plan.format,
        )
        .await?;
        match outcome {
            ExportOutcome::Built => {
                let done =
                    export::worker::build_now(db, exports.keys, exports.settings, &row).await?;
                if done.status != ExportStatus::Completed.as_str() {
                    let why = export::job_of(db, tenant_id, &row.id)
                        .await?
                        .and_then(|j| j.error)
                        .unwrap_or(done.status);
                    return Err(AppError::internal(
                        "build a seeded export",
                        format!("export {} did not complete: {why}", row.id),
                    ));
                }
            }
            ExportOutcome::Cancelled => {
                let reason = format!("cancelled by {}", plan.requested_by);
                export::cancel(db, tenant_id, &row.id, &reason).await?;
            }
            ExportOutcome::Queued => {}
        }
    }
    Ok(())
}

/// Keeps the first [`MAX_RUN_EXPORTS`] run export plans of a tenant.
pub(super) fn bounded(plans: &mut Vec<ExportPlan>, already: usize) {
    plans.truncate(MAX_RUN_EXPORTS.saturating_sub(already));
}
