//! GraphQL mutations that write evidence (role `ingest`): runs with their steps and policy
//! events, steps on their own, system records, telemetry samples, producer audit events.

use async_graphql::{Context, Object, Result};

use super::audit::AuditEntry;
use super::common::facade;
use crate::domain::SourceDomain;
use crate::facade::EvidenceMetadata;
use crate::facade::decode::Projected;
use crate::facade::ingest::IngestOutcome;
use crate::ingest::RecordRef;
use crate::ingest::input::{
    AuditEventInput, RunInput, SystemRecordInput, TelemetrySampleInput, TraceStepInput,
};

/// One record of a write, by kind and key.
pub struct StoredRecord(RecordRef);

#[Object]
impl StoredRecord {
    /// `llm_runs`, `trace_steps`, `governance_events`, `system_records` or `telemetry_samples`.
    async fn kind(&self) -> &str {
        self.0.kind
    }
    /// The record's key (`<traceId>#<stepIndex>` for steps).
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// SHA-256 of the canonical record as stored.
    async fn checksum(&self) -> &str {
        &self.0.checksum
    }
}

/// What a write stored, what was already there, and how it is anchored.
pub struct IngestResult(IngestOutcome);

#[Object]
impl IngestResult {
    /// Records written by this request.
    async fn stored(&self) -> Vec<StoredRecord> {
        self.0
            .stored
            .stored
            .iter()
            .cloned()
            .map(StoredRecord)
            .collect()
    }
    /// Records already stored with the same content (a retry): not written again.
    async fn already_present(&self) -> Vec<StoredRecord> {
        self.0
            .stored
            .already_present
            .iter()
            .cloned()
            .map(StoredRecord)
            .collect()
    }
    async fn stored_count(&self) -> i32 {
        self.0.stored.stored.len() as i32
    }
    async fn already_present_count(&self) -> i32 {
        self.0.stored.already_present.len() as i32
    }
    /// RFC 6962 Merkle root of the records written, committed to by the anchor entry.
    async fn merkle_root(&self) -> Option<&str> {
        self.0.stored.merkle_root.as_deref()
    }
    /// Ledger entries appended: producer audit events, then the batch's anchor.
    async fn ledger_entries(&self) -> Vec<AuditEntry> {
        self.0
            .stored
            .ledger
            .iter()
            .cloned()
            .map(|entry| AuditEntry(Projected::whole(entry)))
            .collect()
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

#[derive(Default)]
pub struct IngestMutation;

#[Object]
impl IngestMutation {
    /// Stores runs with their nested trace steps and policy events, atomically. Re-sending a
    /// stored record is a success that writes nothing; a different record under a stored key
    /// is a CONFLICT.
    async fn ingest_runs(&self, ctx: &Context<'_>, runs: Vec<RunInput>) -> Result<IngestResult> {
        let f = facade(ctx)?;
        let outcome = f
            .ingest(SourceDomain::Activity, |check, tenant| {
                check.runs(tenant, &runs)
            })
            .await?;
        Ok(IngestResult(outcome))
    }

    /// Stores trace steps on their own (before or after their run), keyed by trace and index.
    async fn ingest_trace_steps(
        &self,
        ctx: &Context<'_>,
        steps: Vec<TraceStepInput>,
    ) -> Result<IngestResult> {
        let f = facade(ctx)?;
        let outcome = f
            .ingest(SourceDomain::Activity, |check, tenant| {
                check.steps(tenant, &steps)
            })
            .await?;
        Ok(IngestResult(outcome))
    }

    /// Stores infrastructure events of the caller's tenant.
    async fn ingest_system_records(
        &self,
        ctx: &Context<'_>,
        records: Vec<SystemRecordInput>,
    ) -> Result<IngestResult> {
        let f = facade(ctx)?;
        let outcome = f
            .ingest(SourceDomain::System, |check, tenant| {
                check.system_records(tenant, &records)
            })
            .await?;
        Ok(IngestResult(outcome))
    }

    /// Stores telemetry samples of runs (they make `systemRun { telemetry }` real).
    async fn ingest_telemetry(
        &self,
        ctx: &Context<'_>,
        samples: Vec<TelemetrySampleInput>,
    ) -> Result<IngestResult> {
        let f = facade(ctx)?;
        let outcome = f
            .ingest(SourceDomain::System, |check, tenant| {
                check.telemetry(tenant, &samples)
            })
            .await?;
        Ok(IngestResult(outcome))
    }

    /// Appends producer audit events (a policy rule or limit changed…) to the tenant's ledger
    /// as GOVERNANCE entries.
    async fn record_audit_events(
        &self,
        ctx: &Context<'_>,
        events: Vec<AuditEventInput>,
    ) -> Result<IngestResult> {
        let f = facade(ctx)?;
        let outcome = f
            .ingest(SourceDomain::Logs, |check, tenant| {
                check.audit_events(tenant, &events)
            })
            .await?;
        Ok(IngestResult(outcome))
    }
}
