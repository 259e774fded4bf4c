//! A run's row (`LlmRun`) and its O1 view, the canonical envelope.

use async_graphql::{Context, Json, Result};

use super::export::LlmRunExport;
use super::governance::{LlmRunGovernance, governance_event_columns};
use super::replay::LlmRunReplay;
use super::trace::{LlmRunTrace, trace_step_columns};
use super::usage::LlmRunUsage;
use crate::domain::{RunStatus, SourceDomain, Timestamp, WindowSeconds};
use crate::facade::EvidenceMetadata;
use crate::facade::runs::RunEnvelope;
use crate::graphql::common::{NodeKind, facade, global_id, json_column};
use crate::graphql::rows::{row_type, stored, view_type};
use crate::graphql::system::SystemRun;
use entity::llm_runs;

/// One LLM run: an immutable record of a model invocation by an agent, with its depth views.
#[derive(Clone)]
pub struct LlmRun(pub llm_runs::Model);

/// Wall-clock duration in milliseconds, when the run completed.
fn elapsed_ms(r: &llm_runs::Model) -> Option<i64> {
    r.completed_at
        .map(|c| (c - r.started_at).num_milliseconds())
}

row_type! {
    LlmRun(llm_runs::Model) as r in llm_runs, names: llm_run_field,
        key: [r.tenant_id, r.run_id], node: [RunId]
        => global_id(NodeKind::LlmRun, &[&r.run_id]);
    plain {
        /// The producer's run id, unique within the tenant.
        run_id "runId": &str [RunId] => &r.run_id;
        /// Trace the run's steps belong to.
        trace_id "traceId": Option<&str> [TraceId] => r.trace_id.as_deref();
        /// LLM provider, e.g. `openai`.
        provider "provider": &str [Provider] => &r.provider;
        /// Model, e.g. `gpt-4o`.
        model "model": &str [Model] => &r.model;
        /// Prompt tokens.
        input_tokens "inputTokens": i64 [InputTokens] => r.input_tokens;
        /// Completion tokens.
        output_tokens "outputTokens": i64 [OutputTokens] => r.output_tokens;
        /// Cost in US cents.
        cost_cents "costCents": i64 [CostCents] => r.cost_cents;
        /// Final status.
        execution_status "executionStatus": Result<RunStatus> [ExecutionStatus]
            => stored(&r.execution_status, || LlmRun::row_key(r));
        /// When the run started.
        started_at "startedAt": Timestamp [StartedAt] => Timestamp(r.started_at);
        /// When the run completed, if it did.
        completed_at "completedAt": Option<Timestamp> [CompletedAt] => r.completed_at.map(Timestamp);
        /// Wall-clock duration in milliseconds, when the run completed.
        duration_ms "durationMs": Option<i64> [StartedAt, CompletedAt] => elapsed_ms(r);
        /// Producer of the record, e.g. `sdk`, `otel`.
        source "source": &str [Source] => &r.source;
        /// Whether the run is synthetic (a replay or test), not production traffic.
        is_synthetic "isSynthetic": bool [IsSynthetic] => r.is_synthetic;
        /// When runledger stored the record.
        recorded_at "recordedAt": Timestamp [RecordedAt] => Timestamp(r.recorded_at);
        /// Session (conversation) the run belongs to.
        session_id "sessionId": Option<&str> [SessionId] => r.session_id.as_deref();
        /// Prompt-cache read tokens the run's record (its root span) reports.
        cache_read_tokens "cacheReadTokens": Option<i64> [CacheReadTokens] => r.cache_read_tokens;
        /// Prompt-cache creation tokens the run's record (its root span) reports.
        cache_creation_tokens "cacheCreationTokens": Option<i64> [CacheCreationTokens]
            => r.cache_creation_tokens;
        /// The root span's attributes and events that map to no field, as JSON (bounded: a
        /// `truncated` member says what was left out).
        attributes "attributes": Option<Json<serde_json::Value>> [Attributes] opaque
            => json_column(&r.attributes);
        /// The root span's content (prompts, completions, tool arguments and results), when the
        /// tenant captures content (bounded like `attributes`).
        content "content": Option<Json<serde_json::Value>> [Content] opaque
            => json_column(&r.content);
        /// SHA-256 (hex) of the root span's whole content in canonical JSON, kept whether the
        /// content is or not.
        content_sha256 "contentSha256": Option<&str> [ContentSha256] => r.content_sha256.as_deref();
    }
    resolvers {
        /// Totals over the run's record and steps (tokens by kind, cost, provider, model),
        /// derived when read: right whatever order and grouping the run's spans arrived in.
        /// The `inputTokens`… fields of the run are what its record says.
        async fn usage["usage"](&self, ctx: &Context<'_>) -> Result<LlmRunUsage> {
            Ok(LlmRunUsage(facade(ctx)?.run_usage(&self.0).await?))
        }
        /// Evidence metadata of the run, with its correlation spine.
        async fn metadata["metadata"](&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
            let mut m = facade(ctx)?
                .run_metadata(&self.0, "llm_runs", SourceDomain::Activity)
                .await?;
            m.occurred_at = Some(Timestamp(self.0.started_at));
            m.recorded_at = Some(Timestamp(self.0.recorded_at));
            Ok(m)
        }
        /// O1: the canonical record, its checksum and metadata.
        async fn envelope["envelope"](&self, ctx: &Context<'_>) -> Result<LlmRunEnvelope> {
            Ok(LlmRunEnvelope(facade(ctx)?.run_envelope(&self.0).await?))
        }
        /// O2: the step-by-step trace.
        async fn trace["trace"](&self, ctx: &Context<'_>) -> Result<LlmRunTrace> {
            let columns = trace_step_columns(&ctx.field());
            Ok(LlmRunTrace(facade(ctx)?.run_trace(&self.0, columns).await?))
        }
        /// O3: the policy events of this run.
        async fn governance["governance"](&self, ctx: &Context<'_>) -> Result<LlmRunGovernance> {
            let columns = governance_event_columns(&ctx.field());
            Ok(LlmRunGovernance(
                facade(ctx)?.run_governance(&self.0, columns).await?,
            ))
        }
        /// O4: steps, policy and system events within ±`windowSeconds` (default 30, at most 3600)
        /// of the run's inflection point.
        async fn replay["replay"](&self, ctx: &Context<'_>, window_seconds: Option<i32>) -> Result<LlmRunReplay> {
            let window = WindowSeconds::parse(window_seconds)?;
            Ok(LlmRunReplay(
                facade(ctx)?.run_replay(&self.0, window).await?,
            ))
        }
        /// O5: export formats, the evidence bundle checksum, the run's exports and compliance tags.
        async fn export["export"](&self, ctx: &Context<'_>) -> Result<LlmRunExport> {
            Ok(LlmRunExport(facade(ctx)?.run_export(&self.0).await?))
        }
        /// The system-logs view of this run (snapshot, telemetry, events, replay, attribution).
        async fn system["system"](&self) -> SystemRun {
            SystemRun(self.0.clone())
        }
    }
}

/// O1: the canonical immutable run record.
pub struct LlmRunEnvelope(RunEnvelope);

view_type! {
    LlmRunEnvelope, names: llm_run_envelope_field;
    /// The run record.
    async fn record["record"](&self) -> LlmRun {
        LlmRun(self.0.run.clone())
    }
    /// The record in canonical JSON (RFC 8785) as hashed.
    async fn canonical_json["canonicalJson"](&self) -> &str {
        &self.0.canonical
    }
    /// SHA-256 (hex) of the canonical JSON.
    async fn checksum["checksum"](&self) -> &str {
        &self.0.checksum
    }
    /// Whether the checksum equals the hash stored when the record was written; false means
    /// the stored record was altered.
    async fn checksum_matches_stored["checksumMatchesStored"](&self) -> bool {
        self.0.checksum == self.0.run.record_hash
    }
    async fn metadata["metadata"](&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.envelope_metadata(&self.0).await?)
    }
}
