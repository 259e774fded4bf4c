//! O5 of a run: the formats, the evidence bundle and its checksum, the run's exports and its
//! compliance tags.

use serde_json::Value;

use crate::auth::Permission;
use crate::canonical::{hash_json, run_bundle_json};
use crate::domain::{ExportFormat, ExportStatus, PolicyDecision, SourceDomain, Timestamp};
use crate::error::AppResult;
use crate::facade::Facade;
use crate::facade::metadata::{EvidenceMetadata, distinct_sorted};
use crate::facade::shared::Rows;
use entity::{llm_runs, log_exports};

/// O5: what can be exported and what was.
#[derive(Clone, Debug)]
pub struct RunExport {
    pub run_id: String,
    pub available_formats: Vec<ExportFormat>,
    pub bundle: Value,
    pub bundle_checksum: String,
    pub exports: Rows<log_exports::Model>,
    pub compliance_tags: Vec<String>,
    pub metadata: EvidenceMetadata,
}

impl RunExport {
    /// The newest completed export.
    pub fn latest_completed(&self) -> Option<&log_exports::Model> {
        self.exports
            .iter()
            .find(|e| e.status == ExportStatus::Completed.as_str())
    }
}

impl Facade {
    /// O5: formats, the bundle and its checksum, the run's exports, compliance tags.
    pub async fn run_export(&self, run: &llm_runs::Model) -> AppResult<RunExport> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "export");
        let (steps, governance, exports, mut metadata) = futures_util::try_join!(
            self.steps_of(&scope, run),
            self.governance_of(&scope, run),
            self.exports_of(&scope, run),
            self.run_metadata(run, "log_exports", SourceDomain::Logs)
        )?;
        let frameworks = self.compliance_frameworks().await?;
        let bundle = run_bundle_json(run, &steps, &governance);
        let bundle_checksum = hash_json(&bundle);
        let mut tags = frameworks;
        if !governance.is_empty() {
            tags.push("POLICY_GOVERNED".into());
        }
        if governance
            .iter()
            .any(|g| g.decision == PolicyDecision::Block.as_str())
        {
            tags.push("POLICY_BLOCKED".into());
        }
        if run.human_actor_id.is_some() {
            tags.push("HUMAN_ATTRIBUTED".into());
        }
        if run.is_synthetic {
            tags.push("SYNTHETIC".into());
        }
        if !metadata.incident_ids.is_empty() {
            tags.push("INCIDENT_CORRELATED".into());
        }
        metadata.checksum = Some(bundle_checksum.clone());
        metadata.occurred_at = Some(Timestamp(run.started_at));
        metadata.recorded_at = Some(Timestamp(run.recorded_at));
        Ok(RunExport {
            run_id: run.run_id.clone(),
            available_formats: crate::export::REQUESTABLE.to_vec(),
            bundle,
            bundle_checksum,
            exports,
            compliance_tags: distinct_sorted(tags),
            metadata,
        })
    }
}
