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
use crate::ledger::vocabulary::EntityType;
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
    /// Whether the records of the newest completed export built by runledger (a BUNDLE) are
    /// the run's records as stored now; `None` when there is no such export.
    pub latest_built_matches: Option<bool>,
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
        self.note_read("runs", EntityType::LlmRun, &run.run_id, "export");
        let (steps, governance, exports, mut metadata) = futures_util::try_join!(
            self.steps_of(&scope, run),
            self.governance_of(&scope, run),
            self.exports_of(&scope, run),
            self.run_metadata(run, "log_exports", SourceDomain::Logs)
        )?;
        let frameworks = self.compliance_frameworks().await?;
        let latest_built_matches = self
            .latest_built_matches(&scope, run, &steps, &governance, &exports)
            .await?;
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
            latest_built_matches,
        })
    }

    /// Compares the newest completed built export of the run with its records as stored now
    /// (by [`crate::export::evidence_digest`]).
    async fn latest_built_matches(
        &self,
        scope: &crate::facade::Scope<'_>,
        run: &llm_runs::Model,
        steps: &[entity::trace_steps::Model],
        governance: &[entity::governance_events::Model],
        exports: &[log_exports::Model],
    ) -> AppResult<Option<bool>> {
        use crate::canonical::{
            governance_json, run_json, sha256_hex, step_json, system_json, telemetry_json,
        };
        let Some(latest) = exports.iter().find(|e| {
            e.status == ExportStatus::Completed.as_str()
                && e.format == ExportFormat::Bundle.as_str()
        }) else {
            return Ok(None);
        };
        let Some(digest) = scope
            .loaders
            .export_jobs
            .load_one(latest.id.clone())
            .await?
            .and_then(|j| j.evidence_digest)
        else {
            return Ok(None);
        };
        let system = self.correlated_system_of(scope, run).await?;
        let telemetry = scope
            .loaders
            .telemetry
            .load_one(run.run_id.clone())
            .await?
            .unwrap_or_default();
        let hash = |v: Value| -> [u8; 32] {
            let hex_text = sha256_hex(crate::canonical::canonical_json(&v).as_bytes());
            crate::ledger::merkle::parse_hash(&hex_text).unwrap_or_default()
        };
        let mut hashes = vec![hash(run_json(run))];
        hashes.extend(steps.iter().map(|s| hash(step_json(s))));
        hashes.extend(governance.iter().map(|g| hash(governance_json(g))));
        hashes.extend(
            system
                .iter()
                .filter(|s| s.tenant_id.as_deref() == Some(run.tenant_id.as_str()))
                .map(|s| hash(system_json(s))),
        );
        hashes.extend(telemetry.iter().map(|t| hash(telemetry_json(t))));
        Ok(Some(crate::export::evidence_digest(hashes) == digest))
    }
}
