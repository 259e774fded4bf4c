//! Writing evidence on behalf of an `ingest` key: validate the producer's input into records of
//! the caller's tenant, store them idempotently and anchored, and describe what happened.

use chrono::Utc;

use super::Facade;
use super::metadata::EvidenceMetadata;
use crate::auth::Permission;
use crate::domain::{Origin, SourceDomain, Timestamp};
use crate::error::{AppResult, Context};
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

/// What an OTLP export did: what was stored, the spans refused with why, and warnings about
/// spans accepted but not attributable.
pub struct OtlpOutcome {
    pub stored: StoredBatch,
    pub rejected: usize,
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
}

/// Proof that the caller may ingest OTLP, obtained before the body is decoded: a caller
/// without the permission is refused without the server reading what it sent.
pub struct OtlpPermit {
    tenant_id: String,
}

/// Traces looked up per statement when checking attribution.
const TRACES_PER_CHECK: usize = 500;

impl Facade {
    /// Checks (and records) the caller's permission to write evidence.
    pub fn permit_otlp(&self) -> AppResult<OtlpPermit> {
        let caller = self.authorize(Permission::WriteEvidence)?;
        Ok(OtlpPermit {
            tenant_id: caller.tenant_id.clone(),
        })
    }

    /// Maps an OTLP trace export onto runs and steps of the permitted tenant and stores them.
    pub async fn ingest_otlp(
        &self,
        permit: OtlpPermit,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) -> AppResult<OtlpOutcome> {
        let tenant_id = permit.tenant_id;
        let policy = self.content_policy_of(&tenant_id).await?;
        let mapped = ingest::otlp::map(&tenant_id, request, Utc::now(), policy);
        let unattributed = mapped.unattributed;
        let stored = ingest::store(&self.db, &tenant_id, mapped.batch).await?;
        let mut reasons = mapped.reasons;
        // Spans that conflict with stored records are refused one by one.
        reasons.extend(stored.rejected.iter().take(10).cloned());
        let warnings = self.unattributed(&tenant_id, unattributed).await?;
        Ok(OtlpOutcome {
            rejected: mapped.rejected + stored.rejected.len(),
            reasons,
            warnings,
            stored,
        })
    }

    /// The warning for traces of which no span, stored or just sent, names a model or a
    /// provider: their usage is stored but cannot be attributed.
    async fn unattributed(
        &self,
        tenant_id: &str,
        traces: Vec<(String, usize)>,
    ) -> AppResult<Vec<String>> {
        use sea_orm::sea_query::Condition;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        use std::collections::HashSet;
        if traces.is_empty() {
            return Ok(Vec::new());
        }
        let mut named: HashSet<String> = HashSet::new();
        for chunk in traces.chunks(TRACES_PER_CHECK) {
            let ids: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
            use entity::{llm_runs, trace_steps};
            let steps: Vec<String> = trace_steps::Entity::find()
                .select_only()
                .column(trace_steps::Column::TraceId)
                .distinct()
                .filter(trace_steps::Column::TenantId.eq(tenant_id))
                .filter(trace_steps::Column::TraceId.is_in(ids.iter().copied()))
                .filter(
                    Condition::any()
                        .add(trace_steps::Column::Provider.is_not_null())
                        .add(trace_steps::Column::RequestModel.is_not_null())
                        .add(trace_steps::Column::ResponseModel.is_not_null()),
                )
                .into_tuple()
                .all(&self.db.conn)
                .await
                .context("look up the attribution of traces")?;
            let unknown = ingest::otlp::UNKNOWN;
            let runs: Vec<Option<String>> = llm_runs::Entity::find()
                .select_only()
                .column(llm_runs::Column::TraceId)
                .filter(llm_runs::Column::TenantId.eq(tenant_id))
                .filter(llm_runs::Column::TraceId.is_in(ids.iter().copied()))
                .filter(
                    Condition::any()
                        .add(llm_runs::Column::Provider.ne(unknown))
                        .add(llm_runs::Column::Model.ne(unknown)),
                )
                .into_tuple()
                .all(&self.db.conn)
                .await
                .context("look up the attribution of runs")?;
            named.extend(steps);
            named.extend(runs.into_iter().flatten());
        }
        let left: Vec<&(String, usize)> =
            traces.iter().filter(|(t, _)| !named.contains(t)).collect();
        if left.is_empty() {
            return Ok(Vec::new());
        }
        let spans: usize = left.iter().map(|(_, n)| n).sum();
        let mut names: Vec<&str> = left.iter().take(5).map(|(t, _)| t.as_str()).collect();
        if left.len() > names.len() {
            names.push("…");
        }
        Ok(vec![format!(
            "{spans} span(s) accepted but not attributable: no span of trace(s) {} names a model \
             or provider (gen_ai.provider.name, gen_ai.request.model, llm.model_name, \
             llm.provider…); their usage is stored without one",
            names.join(", ")
        )])
    }
}
