//! GraphQL surface of exports (permission `export:evidence`, roles `auditor` and `admin`):
//! request one, cancel one. The scope input is parsed here into the export's spec; the facade
//! receives only a valid one. Exports are read through `llmRun { export }`, `audit { exports }`
//! and `node`, and downloaded at `GET /exports/{id}`.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::common::facade;
use super::runs::LogExport;
use crate::domain::{ExportFormat, LedgerCategory, Severity, Timestamp};
use crate::error::AppError;
use crate::export::spec::{ExportSpec, LedgerSelection, RunSelection, SystemSelection, time_text};
use crate::facade::runs::RunFilter;

/// Audit ledger entries to export; every field narrows, absent fields do not.
#[derive(Clone, Debug, Default, InputObject)]
pub struct LedgerExportScope {
    /// Entries from this seq on.
    pub from_seq: Option<i64>,
    /// Entries up to this seq.
    pub to_seq: Option<i64>,
    /// Entries that occurred at or after this instant.
    pub occurred_after: Option<Timestamp>,
    /// Entries that occurred at or before this instant.
    pub occurred_before: Option<Timestamp>,
    /// Only entries of these categories.
    pub categories: Option<Vec<LedgerCategory>>,
}

/// The tenant's system records to export; every field narrows, absent fields do not.
#[derive(Clone, Debug, Default, InputObject)]
pub struct SystemExportScope {
    /// Records of this component.
    pub component: Option<String>,
    /// Records of any of these severities.
    pub severities: Option<Vec<Severity>>,
    /// Records correlated to this id (e.g. a run id).
    pub correlation_id: Option<String>,
    /// Records that occurred at or after this instant.
    pub occurred_after: Option<Timestamp>,
    /// Records that occurred at or before this instant.
    pub occurred_before: Option<Timestamp>,
}

/// What an export holds: exactly one of the fields.
#[derive(Clone, Debug, Default, InputObject)]
pub struct ExportScopeInput {
    /// One run with its steps, policy events, correlated system records and telemetry.
    pub run_id: Option<ID>,
    /// The runs the run list's filter selects, each with what `runId` exports.
    pub runs: Option<RunFilter>,
    /// Entries of the tenant's audit ledger (up to the export's own request).
    pub ledger: Option<LedgerExportScope>,
    /// The tenant's system records.
    pub system: Option<SystemExportScope>,
}

fn time(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(|t| time_text(&t.0))
}

impl ExportScopeInput {
    /// The spec this input asks for; BAD_USER_INPUT unless exactly one scope is given.
    fn spec(self) -> Result<ExportSpec, AppError> {
        let given = [
            self.run_id.is_some(),
            self.runs.is_some(),
            self.ledger.is_some(),
            self.system.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err(AppError::bad_input(format!(
                "scope must give exactly one of runId, runs, ledger, system ({given} given)"
            )));
        }
        if let Some(run_id) = self.run_id {
            return Ok(ExportSpec::Run {
                run_id: run_id.to_string(),
            });
        }
        if let Some(filter) = self.runs {
            filter.validate()?;
            let filter: RunSelection = serde_json::from_value(filter.applied())
                .map_err(|e| AppError::internal("read the run filter of an export", e))?;
            return Ok(ExportSpec::Runs { filter });
        }
        if let Some(l) = self.ledger {
            return Ok(ExportSpec::Ledger(LedgerSelection {
                from_seq: l.from_seq,
                to_seq: l.to_seq,
                occurred_after: time(&l.occurred_after),
                occurred_before: time(&l.occurred_before),
                categories: l
                    .categories
                    .map(|c| c.iter().map(|c| c.as_str().to_string()).collect()),
            }));
        }
        let s = self.system.unwrap_or_default();
        Ok(ExportSpec::System(SystemSelection {
            component: s.component,
            severities: s
                .severities
                .map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
            correlation_id: s.correlation_id,
            occurred_after: time(&s.occurred_after),
            occurred_before: time(&s.occurred_before),
        }))
    }
}

#[derive(Default)]
pub struct ExportsMutation;

#[Object]
impl ExportsMutation {
    /// Requests an export of the caller's tenant's evidence (permission `export:evidence`).
    /// Answers at once with the export in PENDING; it is built in the background, pinned to a
    /// signed checkpoint taken at or after the request, and recorded as EXPORT_REQUESTED, then
    /// EXPORT_COMPLETED or EXPORT_FAILED. Download it at `downloadPath` once COMPLETED.
    async fn request_export(
        &self,
        ctx: &Context<'_>,
        scope: ExportScopeInput,
        #[graphql(default_with = "ExportFormat::Bundle")] format: ExportFormat,
    ) -> Result<LogExport> {
        let spec = scope.spec()?;
        Ok(LogExport(facade(ctx)?.request_export(spec, format).await?))
    }

    /// Cancels a PENDING export (permission `export:evidence`): it becomes FAILED with the
    /// reason `cancelled by key:<id>`, recorded as EXPORT_FAILED.
    async fn cancel_export(&self, ctx: &Context<'_>, export_id: ID) -> Result<LogExport> {
        Ok(LogExport(facade(ctx)?.cancel_export(&export_id).await?))
    }
}
