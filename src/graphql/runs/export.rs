//! O5 of a run: its export metadata, and the compliance export rows (`LogExport`).

use async_graphql::{Json, Result};

use crate::domain::{ExportFormat, ExportStatus, Timestamp};
use crate::facade::EvidenceMetadata;
use crate::facade::runs::RunExport;
use crate::graphql::common::{NodeKind, global_id};
use crate::graphql::rows::{row_type, stored, view_type};
use entity::log_exports;

/// A compliance export of evidence.
#[derive(Clone)]
pub struct LogExport(pub log_exports::Model);

row_type! {
    LogExport(log_exports::Model) as e in log_exports, names: log_export_field,
        key: [e.tenant_id, e.id], node: [Id]
        => global_id(NodeKind::LogExport, &[&e.id]);
    plain {
        export_id "exportId": &str [Id] => &e.id;
        /// The exported run, when the scope is one run.
        run_id "runId": Option<&str> [RunId] => e.run_id.as_deref();
        /// What was exported, e.g. `run:<runId>`.
        scope "scope": &str [Scope] => &e.scope;
        format "format": Result<ExportFormat> [Format] => stored(&e.format, || LogExport::row_key(e));
        requested_by "requestedBy": &str [RequestedBy] => &e.requested_by;
        status "status": Result<ExportStatus> [Status] => stored(&e.status, || LogExport::row_key(e));
        /// SHA-256 of the delivered bundle, once completed.
        checksum "checksum": Option<&str> [Checksum] => e.checksum.as_deref();
        requested_at "requestedAt": Timestamp [RequestedAt] => Timestamp(e.requested_at);
        delivered_at "deliveredAt": Option<Timestamp> [DeliveredAt] => e.delivered_at.map(Timestamp);
        /// Where a COMPLETED export built by runledger is downloaded (`GET`, with an auditor
        /// or admin key of the tenant); null otherwise.
        download_path "downloadPath": Option<String> [Id, Status, Format] =>
            (e.status == ExportStatus::Completed.as_str() && e.format != ExportFormat::Json.as_str())
                .then(|| format!("/exports/{}", e.id));
    }
    resolvers {
        /// The build's progress, size and failure reason (null for exports made before
        /// runledger built them, e.g. the seeder's run bundles).
        async fn build["build"](&self, ctx: &async_graphql::Context<'_>) -> Result<Option<ExportBuild>> {
            Ok(crate::graphql::common::facade(ctx)?
                .export_job(&self.0.id)
                .await?
                .map(ExportBuild))
        }
    }
}

/// How an export's build went.
pub struct ExportBuild(entity::export_jobs::Model);

#[async_graphql::Object]
impl ExportBuild {
    /// QUEUED, RUNNING, DONE or FAILED.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// Records (or ledger entries) written so far.
    async fn records_written(&self) -> i64 {
        self.0.records_written
    }
    /// Records the export holds, once counted (an upper bound while building).
    async fn records_total(&self) -> Option<i64> {
        self.0.records_total
    }
    /// Bytes of the finished file.
    async fn size_bytes(&self) -> Option<i64> {
        self.0.size_bytes
    }
    /// Tree size of the signed checkpoint the bundle is pinned to.
    async fn checkpoint_size(&self) -> Option<i64> {
        self.0.checkpoint_size
    }
    /// Builds started (a build interrupted by a restart starts over).
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the export failed.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

/// O5: export metadata of a run.
pub struct LlmRunExport(pub(super) RunExport);

view_type! {
    LlmRunExport, names: llm_run_export_field;
    async fn run_id["runId"](&self) -> &str {
        &self.0.run_id
    }
    /// Formats `requestExport` builds for the run's evidence.
    async fn available_formats["availableFormats"](&self) -> &[ExportFormat] {
        &self.0.available_formats
    }
    /// SHA-256 of the run's canonical evidence bundle as stored now.
    async fn bundle_checksum["bundleChecksum"](&self) -> &str {
        &self.0.bundle_checksum
    }
    /// The canonical evidence bundle itself (run, steps, governance events).
    async fn bundle["bundle"](&self) -> Json<serde_json::Value> {
        Json(self.0.bundle.clone())
    }
    /// Checksum of the newest completed export, if any.
    async fn checksum["checksum"](&self) -> Option<&str> {
        self.0
            .latest_completed()
            .and_then(|e| e.checksum.as_deref())
    }
    /// Whether the newest completed export still matches the evidence as stored now (null when
    /// nothing was exported): for a run bundle (JSON), its checksum against `bundleChecksum`;
    /// otherwise, the newest signed BUNDLE's records against the run's records as stored now.
    async fn latest_export_matches_bundle["latestExportMatchesBundle"](&self) -> Option<bool> {
        match self.0.latest_completed() {
            Some(e) if e.format == ExportFormat::Json.as_str() => {
                Some(e.checksum.as_deref() == Some(self.0.bundle_checksum.as_str()))
            }
            Some(_) => self.0.latest_built_matches,
            None => None,
        }
    }
    /// The tenant's compliance frameworks plus tags derived from the evidence
    /// (POLICY_GOVERNED, POLICY_BLOCKED, HUMAN_ATTRIBUTED, SYNTHETIC, INCIDENT_CORRELATED).
    async fn compliance_tags["complianceTags"](&self) -> &[String] {
        &self.0.compliance_tags
    }
    /// The run's exports, newest first.
    async fn exports["exports"](&self) -> Vec<LogExport> {
        self.0.exports.iter().cloned().map(LogExport).collect()
    }
    async fn metadata["metadata"](&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}
