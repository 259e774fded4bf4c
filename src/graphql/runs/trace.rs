//! O2 of a run: its trace, the steps in order (`TraceStep` rows), and the step columns a
//! selection of it shows.

use async_graphql::{Context, Json, Result, SelectionField};

use crate::domain::{StepStatus, Timestamp};
use crate::facade::EvidenceMetadata;
use crate::facade::decode::{Projected, StepColumns};
use crate::facade::runs::{RunTrace, step_ref};
use crate::facade::shared::Shared;
use crate::graphql::common::{NodeKind, facade, global_id, json_column};
use crate::graphql::plain::Plain;
use crate::graphql::rows::{row_type, stored, view_columns, view_type};
use entity::trace_steps;

/// A step, read with the columns a view shows.
pub type StepRow = Projected<Shared<trace_steps::Model>, StepColumns>;

/// One step of a trace.
#[derive(Clone)]
pub struct TraceStep(pub StepRow);

row_type! {
    TraceStep(StepRow) as s in trace_steps, names: trace_step_field,
        key: [s.tenant_id, s.trace_id, s.step_index], node: [TraceId, StepIndex]
        => global_id(NodeKind::TraceStep, &[&s.trace_id, &s.step_index.to_string()]);
    plain {
        /// Reference `<traceId>#<stepIndex>`.
        step_ref "stepRef": String [TraceId, StepIndex] => step_ref(s);
        trace_id "traceId": &str [TraceId] => &s.trace_id;
        /// Position in the trace, from 0.
        step_index "stepIndex": i32 [StepIndex] => s.step_index;
        /// When the step happened.
        timestamp "timestamp": Timestamp [OccurredAt] => Timestamp(s.occurred_at);
        /// Skill or tool the step ran.
        skill_name "skillName": &str [SkillName] => &s.skill_name;
        status "status": Result<StepStatus> [Status] => stored(&s.status, || TraceStep::row_key(s));
        /// Outcome class, e.g. `SUCCESS`, `TOOL_ERROR`, `POLICY_BLOCK`.
        outcome_category "outcomeCategory": &str [OutcomeCategory] => &s.outcome_category;
        cost_cents "costCents": i64 [CostCents] => s.cost_cents;
        duration_ms "durationMs": i64 [DurationMs] => s.duration_ms;
        recorded_at "recordedAt": Timestamp [RecordedAt] => Timestamp(s.recorded_at);
        /// OpenTelemetry span id (hex), for a step that arrived as a span.
        span_id "spanId": Option<&str> [SpanId] => s.span_id.as_deref();
        /// Provider the span named.
        provider "provider": Option<&str> [Provider] => s.provider.as_deref();
        /// Model the span asked for.
        request_model "requestModel": Option<&str> [RequestModel] => s.request_model.as_deref();
        /// Model that answered.
        response_model "responseModel": Option<&str> [ResponseModel] => s.response_model.as_deref();
        /// Prompt tokens the span reported.
        input_tokens "inputTokens": Option<i64> [InputTokens] => s.input_tokens;
        /// Completion tokens the span reported.
        output_tokens "outputTokens": Option<i64> [OutputTokens] => s.output_tokens;
        /// Prompt-cache read tokens the span reported.
        cache_read_tokens "cacheReadTokens": Option<i64> [CacheReadTokens] => s.cache_read_tokens;
        /// Prompt-cache creation tokens the span reported.
        cache_creation_tokens "cacheCreationTokens": Option<i64> [CacheCreationTokens]
            => s.cache_creation_tokens;
        /// Session (conversation) the span named.
        session_id "sessionId": Option<&str> [SessionId] => s.session_id.as_deref();
        /// The span's attributes and events that map to no field, as JSON (bounded: a
        /// `truncated` member says what was left out).
        attributes "attributes": Option<Json<serde_json::Value>> [Attributes] opaque
            => json_column(&s.attributes);
        /// The span's content (prompts, completions, system instructions, tool arguments and
        /// results), when the tenant captures content (bounded like `attributes`).
        content "content": Option<Json<serde_json::Value>> [Content] opaque
            => json_column(&s.content);
        /// SHA-256 (hex) of the span's whole content in canonical JSON, kept whether the
        /// content is or not.
        content_sha256 "contentSha256": Option<&str> [ContentSha256] => s.content_sha256.as_deref();
    }
}

/// O2: the step-by-step trace of a run.
pub struct LlmRunTrace(pub(super) RunTrace);

view_type! {
    LlmRunTrace, names: llm_run_trace_field;
    async fn run_id["runId"](&self) -> &str {
        &self.0.run.run_id
    }
    async fn trace_id["traceId"](&self) -> Option<&str> {
        self.0.run.trace_id.as_deref()
    }
    /// Steps in index order.
    async fn steps["steps"](&self) -> Vec<Plain<TraceStep>> {
        self.0
            .steps
            .each()
            .into_iter()
            .map(|step| Plain(TraceStep(step)))
            .collect()
    }
    async fn total_steps["totalSteps"](&self) -> i32 {
        self.0.steps.len() as i32
    }
    /// Sum of the steps' costs in cents.
    async fn total_cost_cents["totalCostCents"](&self) -> Result<i64> {
        let steps = self.0.steps.read_or_fail(&[trace_steps::Column::CostCents], "totalCostCents")?;
        Ok(steps.iter().map(|s| s.cost_cents).sum())
    }
    /// Sum of the steps' durations in milliseconds.
    async fn total_duration_ms["totalDurationMs"](&self) -> Result<i64> {
        let steps = self.0.steps.read_or_fail(&[trace_steps::Column::DurationMs], "totalDurationMs")?;
        Ok(steps.iter().map(|s| s.duration_ms).sum())
    }
    async fn metadata["metadata"](&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.trace_metadata(&self.0).await?)
    }
}

/// The step columns a selection of a run's `trace` shows: its steps' fields (as [`TraceStep`]
/// declares them) and totals. Any other field (metadata, a field added later) reads every
/// column.
pub(super) fn trace_step_columns(trace: &SelectionField<'_>) -> StepColumns {
    use llm_run_trace_field as view;
    use trace_steps::Column;
    view_columns(
        trace,
        (StepColumns::KEY, StepColumns::all(), StepColumns::with),
        view::steps,
        TraceStep::columns_of,
        &[
            (view::run_id, &[]),
            (view::trace_id, &[]),
            (view::total_steps, &[]),
            (view::total_cost_cents, &[Column::CostCents]),
            (view::total_duration_ms, &[Column::DurationMs]),
        ],
    )
}
