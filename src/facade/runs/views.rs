//! O1 to O3 of a run: its canonical envelope, its trace and its policy events, each with its
//! metadata.

use serde_json::Value;

use crate::auth::Permission;
use crate::canonical::{canonical_json, hash_json, run_json, sha256_hex, step_json};
use crate::domain::{SourceDomain, Timestamp};
use crate::error::AppResult;
use crate::facade::Facade;
use crate::facade::decode::{EventColumns, Projected, StepColumns};
use crate::facade::metadata::EvidenceMetadata;
use crate::facade::shared::Rows;
use entity::{governance_events, llm_runs, trace_steps};

/// O1: the canonical record with its checksum.
#[derive(Clone, Debug)]
pub struct RunEnvelope {
    pub run: llm_runs::Model,
    pub canonical: String,
    pub checksum: String,
}

/// O2: the steps in order.
#[derive(Clone, Debug)]
pub struct RunTrace {
    pub run: llm_runs::Model,
    /// The steps, read with the columns the caller shows.
    pub steps: Projected<Rows<trace_steps::Model>, StepColumns>,
}

/// O3: the policy events of this run.
#[derive(Clone, Debug)]
pub struct RunGovernance {
    pub run: llm_runs::Model,
    /// The events, read with the columns the caller shows.
    pub events: Projected<Rows<governance_events::Model>, EventColumns>,
}

impl Facade {
    /// O1: the canonical record and its checksum (metadata: [`Facade::envelope_metadata`]).
    pub async fn run_envelope(&self, run: &llm_runs::Model) -> AppResult<RunEnvelope> {
        self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "envelope");
        let canonical = canonical_json(&run_json(run));
        let checksum = sha256_hex(canonical.as_bytes());
        Ok(RunEnvelope {
            run: run.clone(),
            canonical,
            checksum,
        })
    }

    /// The envelope's metadata: the run's, with the record's checksum. Like every view's
    /// metadata it is computed only when asked for (the correlation spine costs three lookups).
    pub async fn envelope_metadata(&self, envelope: &RunEnvelope) -> AppResult<EvidenceMetadata> {
        let run = &envelope.run;
        let mut metadata = self
            .run_metadata(run, "llm_runs", SourceDomain::Activity)
            .await?;
        metadata.occurred_at = Some(Timestamp(run.started_at));
        metadata.recorded_at = Some(Timestamp(run.recorded_at));
        metadata.checksum = Some(envelope.checksum.clone());
        Ok(metadata)
    }

    /// O2: the run's steps in index order, read with `columns`, the ones the caller will show
    /// (metadata: [`Facade::trace_metadata`]).
    pub async fn run_trace(
        &self,
        run: &llm_runs::Model,
        columns: StepColumns,
    ) -> AppResult<RunTrace> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "trace");
        let steps = self.steps_with(&scope, run, columns).await?;
        Ok(RunTrace {
            run: run.clone(),
            steps: Projected::new(steps, columns),
        })
    }

    /// The trace's metadata: the run's, the steps' time span and the checksum of the steps
    /// (every column of them, read again if the trace holds fewer).
    pub async fn trace_metadata(&self, trace: &RunTrace) -> AppResult<EvidenceMetadata> {
        // A trace whose metadata is selected reads every column (see the GraphQL side); the
        // second read guards any other caller.
        let steps = match trace.steps.complete() {
            Some(steps) => steps.clone(),
            None => {
                let scope = self.scope(Permission::ReadEvidence)?;
                self.steps_of(&scope, &trace.run).await?
            }
        };
        let mut metadata = self
            .run_metadata(&trace.run, "trace_steps", SourceDomain::Activity)
            .await?
            .with_times(steps.iter().map(|s| (s.occurred_at, s.recorded_at)));
        metadata.checksum = Some(hash_json(&Value::Array(
            steps.iter().map(step_json).collect(),
        )));
        Ok(metadata)
    }

    /// O3: the policy events of this run (and only this run), in time order (metadata:
    /// [`Facade::governance_metadata`]).
    pub async fn run_governance(
        &self,
        run: &llm_runs::Model,
        columns: EventColumns,
    ) -> AppResult<RunGovernance> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "governance");
        let events = self.governance_with(&scope, run, columns).await?;
        Ok(RunGovernance {
            run: run.clone(),
            events: Projected::new(events, columns),
        })
    }

    /// The governance view's metadata: the run's, the events' time span and their checksum
    /// (every column of them, read again if the view holds fewer).
    pub async fn governance_metadata(
        &self,
        governance: &RunGovernance,
    ) -> AppResult<EvidenceMetadata> {
        // As for a trace's metadata: normally read whole already.
        let events = match governance.events.complete() {
            Some(events) => events.clone(),
            None => {
                let scope = self.scope(Permission::ReadEvidence)?;
                self.governance_of(&scope, &governance.run).await?
            }
        };
        let mut metadata = self
            .run_metadata(&governance.run, "governance_events", SourceDomain::Policy)
            .await?
            .with_times(events.iter().map(|e| (e.occurred_at, e.recorded_at)));
        metadata.checksum = Some(hash_json(&Value::Array(
            events
                .iter()
                .map(crate::canonical::governance_json)
                .collect(),
        )));
        Ok(metadata)
    }
}
