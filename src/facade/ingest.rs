//! Writing evidence on behalf of an `ingest` key: validate the producer's input into records of
//! the caller's tenant, store them idempotently and anchored, and describe what happened.

use chrono::Utc;

use super::Facade;
use super::metadata::EvidenceMetadata;
use crate::auth::Permission;
use crate::domain::{Origin, SourceDomain, Timestamp};
use crate::error::AppResult;
use crate::ingest::input::Check;
use crate::ingest::{self, EvidenceBatch, StoredBatch};

/// What a write did.
pub struct IngestOutcome {
    pub stored: StoredBatch,
    pub metadata: EvidenceMetadata,
}

impl Facade {
    /// Validates with `build` (given the checker and the caller's tenant) and stores the batch.
    pub async fn ingest<F>(&self, domain: SourceDomain, build: F) -> AppResult<IngestOutcome>
    where
        F: FnOnce(&Check, &str) -> AppResult<EvidenceBatch>,
    {
        let caller = self.authorize(Permission::WriteEvidence)?;
        let now = Utc::now();
        let batch = build(&Check::new(now), &caller.tenant_id)?;
        let stored = ingest::store(&self.db, &caller.tenant_id, batch).await?;
        let mut metadata = EvidenceMetadata::new(&caller.tenant_id, domain, "ingest").with_actors(
            None,
            None,
            Some(format!("key:{}", caller.key_id)),
        );
        metadata.recorded_at = stored.ledger.last().map(|e| Timestamp(e.recorded_at));
        metadata.checksum = stored.merkle_root.clone();
        metadata.origin = Some(Origin::System);
        Ok(IngestOutcome { stored, metadata })
    }
}

/// What an OTLP export did: what was stored, and the spans refused with why.
pub struct OtlpOutcome {
    pub stored: StoredBatch,
    pub rejected: usize,
    pub reasons: Vec<String>,
}

impl Facade {
    /// Maps an OTLP trace export onto runs and steps of the caller's tenant and stores them.
    pub async fn ingest_otlp(
        &self,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) -> AppResult<OtlpOutcome> {
        let caller = self.authorize(Permission::WriteEvidence)?;
        let mapped = ingest::otlp::map(&caller.tenant_id, request, Utc::now());
        let stored = ingest::store(&self.db, &caller.tenant_id, mapped.batch).await?;
        let mut reasons = mapped.reasons;
        // Spans that conflict with stored records are refused one by one.
        reasons.extend(stored.rejected.iter().take(10).cloned());
        Ok(OtlpOutcome {
            rejected: mapped.rejected + stored.rejected.len(),
            reasons,
            stored,
        })
    }
}
