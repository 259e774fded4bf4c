//! GraphQL surface of the LLM-runs topic: the run list, one run and its five depth views.

use crate::domain::Timestamp;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputType, Json, Object, Result, SelectionField, Value};

use super::common::{NodeKind, connection, facade, global_id, page_args};
use super::plain::{Plain, PlainFields};
use super::system::SystemRun;
use crate::domain::{
    ExportFormat, ExportStatus, RunStatus, SourceDomain, StepStatus, WindowSeconds,
};
use crate::facade::EvidenceMetadata;
use crate::facade::decode::{EventColumns, StepColumns};
use crate::facade::runs::{
    Inflection, ReplayEvent, RunEnvelope, RunExport, RunFilter, RunGovernance, RunOrder,
    RunPrefetch, RunReplay, RunTrace, step_ref,
};
use crate::facade::shared::Shared;
use entity::{governance_events, llm_runs, log_exports, trace_steps};

/// One LLM run: an immutable record of a model invocation by an agent, with its depth views.
#[derive(Clone)]
pub struct LlmRun(pub llm_runs::Model);

fn parse_status<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T> {
    parse(text).ok_or_else(|| {
        crate::error::AppError::internal(
            format!("read a stored {what}"),
            format!("unknown value `{text}`"),
        )
        .into()
    })
}

#[Object]
impl LlmRun {
    /// Global id (Relay).
    pub async fn id(&self) -> ID {
        self.node_id()
    }
    /// The producer's run id, unique within the tenant.
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    /// Trace the run's steps belong to.
    async fn trace_id(&self) -> Option<&str> {
        self.0.trace_id.as_deref()
    }
    /// LLM provider, e.g. `openai`.
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// Model, e.g. `gpt-4o`.
    async fn model(&self) -> &str {
        &self.0.model
    }
    /// Prompt tokens.
    async fn input_tokens(&self) -> i64 {
        self.0.input_tokens
    }
    /// Completion tokens.
    async fn output_tokens(&self) -> i64 {
        self.0.output_tokens
    }
    /// Cost in US cents.
    async fn cost_cents(&self) -> i64 {
        self.0.cost_cents
    }
    /// Final status.
    async fn execution_status(&self) -> Result<RunStatus> {
        parse_status(&self.0.execution_status, RunStatus::parse, "run status")
    }
    /// When the run started.
    async fn started_at(&self) -> Timestamp {
        self.0.started_at.into()
    }
    /// When the run completed, if it did.
    async fn completed_at(&self) -> Option<Timestamp> {
        self.0.completed_at.map(Timestamp)
    }
    /// Wall-clock duration in milliseconds, when the run completed.
    async fn duration_ms(&self) -> Option<i64> {
        self.elapsed_ms()
    }
    /// Producer of the record, e.g. `sdk`, `otel`.
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// Whether the run is synthetic (a replay or test), not production traffic.
    async fn is_synthetic(&self) -> bool {
        self.0.is_synthetic
    }
    /// When runledger stored the record.
    async fn recorded_at(&self) -> Timestamp {
        self.0.recorded_at.into()
    }
    /// Evidence metadata of the run, with its correlation spine.
    async fn metadata(&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        let mut m = facade(ctx)?
            .run_metadata(&self.0, "llm_runs", SourceDomain::Activity)
            .await?;
        m.occurred_at = Some(Timestamp(self.0.started_at));
        m.recorded_at = Some(Timestamp(self.0.recorded_at));
        Ok(m)
    }
    /// O1: the canonical record, its checksum and metadata.
    async fn envelope(&self, ctx: &Context<'_>) -> Result<LlmRunEnvelope> {
        Ok(LlmRunEnvelope(facade(ctx)?.run_envelope(&self.0).await?))
    }
    /// O2: the step-by-step trace.
    async fn trace(&self, ctx: &Context<'_>) -> Result<LlmRunTrace> {
        let columns = trace_step_columns(&ctx.field());
        Ok(LlmRunTrace(facade(ctx)?.run_trace(&self.0, columns).await?))
    }
    /// O3: the policy events of this run.
    async fn governance(&self, ctx: &Context<'_>) -> Result<LlmRunGovernance> {
        let columns = governance_event_columns(&ctx.field());
        Ok(LlmRunGovernance(
            facade(ctx)?.run_governance(&self.0, columns).await?,
        ))
    }
    /// O4: steps, policy and system events within ±`windowSeconds` (default 30, at most 3600)
    /// of the run's inflection point.
    async fn replay(&self, ctx: &Context<'_>, window_seconds: Option<i32>) -> Result<LlmRunReplay> {
        let window = WindowSeconds::parse(window_seconds)?;
        Ok(LlmRunReplay(
            facade(ctx)?.run_replay(&self.0, window).await?,
        ))
    }
    /// O5: export formats, the evidence bundle checksum, the run's exports and compliance tags.
    async fn export(&self, ctx: &Context<'_>) -> Result<LlmRunExport> {
        Ok(LlmRunExport(facade(ctx)?.run_export(&self.0).await?))
    }
    /// The system-logs view of this run (snapshot, telemetry, events, replay, attribution).
    async fn system(&self) -> SystemRun {
        SystemRun(self.0.clone())
    }
}

impl LlmRun {
    /// The run's global id.
    fn node_id(&self) -> ID {
        global_id(NodeKind::LlmRun, &[&self.0.run_id])
    }

    /// Wall-clock duration in milliseconds, when the run completed.
    fn elapsed_ms(&self) -> Option<i64> {
        self.0
            .completed_at
            .map(|c| (c - self.0.started_at).num_milliseconds())
    }
}

impl PlainFields for LlmRun {
    fn plain_field(&self, name: &str) -> Option<Value> {
        let r = &self.0;
        Some(match name {
            "id" => self.node_id().0.into(),
            "runId" => r.run_id.as_str().into(),
            "traceId" => r.trace_id.as_deref().into(),
            "provider" => r.provider.as_str().into(),
            "model" => r.model.as_str().into(),
            "inputTokens" => r.input_tokens.into(),
            "outputTokens" => r.output_tokens.into(),
            "costCents" => r.cost_cents.into(),
            "executionStatus" => RunStatus::parse(&r.execution_status)?.to_value(),
            "startedAt" => Timestamp(r.started_at).to_value(),
            "completedAt" => r.completed_at.map(|t| Timestamp(t).to_value()).into(),
            "durationMs" => self.elapsed_ms().into(),
            "source" => r.source.as_str().into(),
            "isSynthetic" => r.is_synthetic.into(),
            "recordedAt" => Timestamp(r.recorded_at).to_value(),
            _ => return None,
        })
    }
}

/// O1: the canonical immutable run record.
pub struct LlmRunEnvelope(RunEnvelope);

#[Object]
impl LlmRunEnvelope {
    /// The run record.
    async fn record(&self) -> LlmRun {
        LlmRun(self.0.run.clone())
    }
    /// The record in canonical JSON (RFC 8785) as hashed.
    async fn canonical_json(&self) -> &str {
        &self.0.canonical
    }
    /// SHA-256 (hex) of the canonical JSON.
    async fn checksum(&self) -> &str {
        &self.0.checksum
    }
    /// Whether the checksum equals the hash stored when the record was written; false means
    /// the stored record was altered.
    async fn checksum_matches_stored(&self) -> bool {
        self.0.checksum == self.0.run.record_hash
    }
    async fn metadata(&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.envelope_metadata(&self.0).await?)
    }
}

/// One step of a trace.
#[derive(Clone)]
pub struct TraceStep(pub Shared<trace_steps::Model>);

#[Object]
impl TraceStep {
    /// Global id (Relay).
    pub async fn id(&self) -> ID {
        self.node_id()
    }
    /// Reference `<traceId>#<stepIndex>`.
    async fn step_ref(&self) -> String {
        step_ref(&self.0)
    }
    async fn trace_id(&self) -> &str {
        &self.0.trace_id
    }
    /// Position in the trace, from 0.
    async fn step_index(&self) -> i32 {
        self.0.step_index
    }
    /// When the step happened.
    async fn timestamp(&self) -> Timestamp {
        self.0.occurred_at.into()
    }
    /// Skill or tool the step ran.
    async fn skill_name(&self) -> &str {
        &self.0.skill_name
    }
    async fn status(&self) -> Result<StepStatus> {
        parse_status(&self.0.status, StepStatus::parse, "step status")
    }
    /// Outcome class, e.g. `SUCCESS`, `TOOL_ERROR`, `POLICY_BLOCK`.
    async fn outcome_category(&self) -> &str {
        &self.0.outcome_category
    }
    async fn cost_cents(&self) -> i64 {
        self.0.cost_cents
    }
    async fn duration_ms(&self) -> i64 {
        self.0.duration_ms
    }
    async fn recorded_at(&self) -> Timestamp {
        self.0.recorded_at.into()
    }
}

impl TraceStep {
    /// The step's global id.
    fn node_id(&self) -> ID {
        global_id(
            NodeKind::TraceStep,
            &[&self.0.trace_id, &self.0.step_index.to_string()],
        )
    }
}

impl PlainFields for TraceStep {
    fn plain_field(&self, name: &str) -> Option<Value> {
        let s = &*self.0;
        Some(match name {
            "id" => self.node_id().0.into(),
            "stepRef" => step_ref(s).into(),
            "traceId" => s.trace_id.as_str().into(),
            "stepIndex" => s.step_index.into(),
            "timestamp" => Timestamp(s.occurred_at).to_value(),
            "skillName" => s.skill_name.as_str().into(),
            "status" => StepStatus::parse(&s.status)?.to_value(),
            "outcomeCategory" => s.outcome_category.as_str().into(),
            "costCents" => s.cost_cents.into(),
            "durationMs" => s.duration_ms.into(),
            "recordedAt" => Timestamp(s.recorded_at).to_value(),
            _ => return None,
        })
    }
}

/// The step columns a selection of a run's `trace` shows: its steps' fields and totals. Any
/// field not listed here (metadata, a field added later) reads every column.
fn trace_step_columns(trace: &SelectionField<'_>) -> StepColumns {
    use trace_steps::Column;
    let mut columns = StepColumns::KEY;
    for field in trace.selection_set() {
        match field.name() {
            "__typename" | "runId" | "traceId" | "totalSteps" => {}
            "totalCostCents" => columns = columns.with(Column::CostCents),
            "totalDurationMs" => columns = columns.with(Column::DurationMs),
            "steps" => {
                for step in field.selection_set() {
                    columns = match step.name() {
                        "__typename" | "id" | "stepRef" | "traceId" | "stepIndex" => columns,
                        "timestamp" => columns.with(Column::OccurredAt),
                        "skillName" => columns.with(Column::SkillName),
                        "status" => columns.with(Column::Status),
                        "outcomeCategory" => columns.with(Column::OutcomeCategory),
                        "costCents" => columns.with(Column::CostCents),
                        "durationMs" => columns.with(Column::DurationMs),
                        "recordedAt" => columns.with(Column::RecordedAt),
                        _ => return StepColumns::all(),
                    }
                }
            }
            _ => return StepColumns::all(),
        }
    }
    columns
}

/// O2: the step-by-step trace of a run.
pub struct LlmRunTrace(RunTrace);

#[Object]
impl LlmRunTrace {
    async fn run_id(&self) -> &str {
        &self.0.run.run_id
    }
    async fn trace_id(&self) -> Option<&str> {
        self.0.run.trace_id.as_deref()
    }
    /// Steps in index order.
    async fn steps(&self) -> Vec<Plain<TraceStep>> {
        Shared::each(&self.0.steps)
            .into_iter()
            .map(|step| Plain(TraceStep(step)))
            .collect()
    }
    async fn total_steps(&self) -> i32 {
        self.0.steps.len() as i32
    }
    /// Sum of the steps' costs in cents.
    async fn total_cost_cents(&self) -> i64 {
        self.0.steps.iter().map(|s| s.cost_cents).sum()
    }
    /// Sum of the steps' durations in milliseconds.
    async fn total_duration_ms(&self) -> i64 {
        self.0.steps.iter().map(|s| s.duration_ms).sum()
    }
    async fn metadata(&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.trace_metadata(&self.0).await?)
    }
}

/// A policy interaction: which policy and rule decided what about which entity.
#[derive(Clone)]
pub struct GovernanceEvent(pub Shared<governance_events::Model>);

#[Object]
impl GovernanceEvent {
    /// Global id (Relay).
    pub async fn id(&self) -> ID {
        self.node_id()
    }
    /// The producer's event id.
    async fn event_id(&self) -> &str {
        &self.0.id
    }
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    async fn timestamp(&self) -> Timestamp {
        self.0.occurred_at.into()
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn policy_id(&self) -> Option<&str> {
        self.0.policy_id.as_deref()
    }
    async fn rule_id(&self) -> Option<&str> {
        self.0.rule_id.as_deref()
    }
    /// The decision as stored.
    async fn decision(&self) -> Result<crate::domain::PolicyDecision> {
        parse_status(
            &self.0.decision,
            crate::domain::PolicyDecision::parse,
            "policy decision",
        )
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> &str {
        &self.0.entity_id
    }
    /// Why the policy decided so.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn recorded_at(&self) -> Timestamp {
        self.0.recorded_at.into()
    }
}

impl GovernanceEvent {
    /// The event's global id.
    fn node_id(&self) -> ID {
        global_id(NodeKind::GovernanceEvent, &[&self.0.id])
    }
}

impl PlainFields for GovernanceEvent {
    fn plain_field(&self, name: &str) -> Option<Value> {
        let e = &*self.0;
        Some(match name {
            "id" => self.node_id().0.into(),
            "eventId" => e.id.as_str().into(),
            "runId" => e.run_id.as_str().into(),
            "timestamp" => Timestamp(e.occurred_at).to_value(),
            "eventType" => e.event_type.as_str().into(),
            "policyId" => e.policy_id.as_deref().into(),
            "ruleId" => e.rule_id.as_deref().into(),
            "decision" => crate::domain::PolicyDecision::parse(&e.decision)?.to_value(),
            "entityType" => e.entity_type.as_str().into(),
            "entityId" => e.entity_id.as_str().into(),
            "reason" => e.reason.as_deref().into(),
            "recordedAt" => Timestamp(e.recorded_at).to_value(),
            _ => return None,
        })
    }
}

/// The policy-event columns a selection of a run's `governance` shows. Any field not listed
/// here (metadata, a field added later) reads every column.
fn governance_event_columns(governance: &SelectionField<'_>) -> EventColumns {
    use governance_events::Column;
    let mut columns = EventColumns::KEY;
    for field in governance.selection_set() {
        match field.name() {
            "__typename" | "runId" | "totalEvents" => {}
            "events" => {
                for event in field.selection_set() {
                    columns = match event.name() {
                        "__typename" | "id" | "eventId" | "runId" => columns,
                        "timestamp" => columns.with(Column::OccurredAt),
                        "eventType" => columns.with(Column::EventType),
                        "policyId" => columns.with(Column::PolicyId),
                        "ruleId" => columns.with(Column::RuleId),
                        "decision" => columns.with(Column::Decision),
                        "entityType" => columns.with(Column::EntityType),
                        "entityId" => columns.with(Column::EntityId),
                        "reason" => columns.with(Column::Reason),
                        "recordedAt" => columns.with(Column::RecordedAt),
                        _ => return EventColumns::all(),
                    }
                }
            }
            _ => return EventColumns::all(),
        }
    }
    columns
}

/// O3: the policy events of one run.
pub struct LlmRunGovernance(RunGovernance);

#[Object]
impl LlmRunGovernance {
    async fn run_id(&self) -> &str {
        &self.0.run.run_id
    }
    /// Events in time order.
    async fn events(&self) -> Vec<Plain<GovernanceEvent>> {
        Shared::each(&self.0.events)
            .into_iter()
            .map(|event| Plain(GovernanceEvent(event)))
            .collect()
    }
    async fn total_events(&self) -> i32 {
        self.0.events.len() as i32
    }
    async fn metadata(&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.governance_metadata(&self.0).await?)
    }
}

/// O4: the merged timeline around the run's inflection point.
pub struct LlmRunReplay(RunReplay);

#[Object]
impl LlmRunReplay {
    async fn run_id(&self) -> &str {
        &self.0.run.run_id
    }
    /// The point the window is centred on, and why.
    async fn inflection(&self) -> &Inflection {
        &self.0.inflection
    }
    /// Half-width of the window.
    async fn window_seconds(&self) -> i64 {
        self.0.window_seconds
    }
    async fn window_start(&self) -> Timestamp {
        self.0.window_start.into()
    }
    async fn window_end(&self) -> Timestamp {
        self.0.window_end.into()
    }
    /// Steps, policy events and system events in the window, in time order.
    async fn events(&self) -> &[ReplayEvent] {
        &self.0.events
    }
    async fn metadata(&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.replay_metadata(&self.0).await?)
    }
}

/// A compliance export of evidence.
#[derive(Clone)]
pub struct LogExport(pub log_exports::Model);

#[Object]
impl LogExport {
    /// Global id (Relay).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::LogExport, &[&self.0.id])
    }
    async fn export_id(&self) -> &str {
        &self.0.id
    }
    /// The exported run, when the scope is one run.
    async fn run_id(&self) -> Option<&str> {
        self.0.run_id.as_deref()
    }
    /// What was exported, e.g. `run:<runId>`.
    async fn scope(&self) -> &str {
        &self.0.scope
    }
    async fn format(&self) -> Result<ExportFormat> {
        parse_status(&self.0.format, ExportFormat::parse, "export format")
    }
    async fn requested_by(&self) -> &str {
        &self.0.requested_by
    }
    async fn status(&self) -> Result<ExportStatus> {
        parse_status(&self.0.status, ExportStatus::parse, "export status")
    }
    /// SHA-256 of the delivered bundle, once completed.
    async fn checksum(&self) -> Option<&str> {
        self.0.checksum.as_deref()
    }
    async fn requested_at(&self) -> Timestamp {
        self.0.requested_at.into()
    }
    async fn delivered_at(&self) -> Option<Timestamp> {
        self.0.delivered_at.map(Timestamp)
    }
}

/// O5: export metadata of a run.
pub struct LlmRunExport(RunExport);

#[Object]
impl LlmRunExport {
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    /// Formats the run's evidence can be exported in.
    async fn available_formats(&self) -> &[ExportFormat] {
        &self.0.available_formats
    }
    /// SHA-256 of the run's canonical evidence bundle as stored now.
    async fn bundle_checksum(&self) -> &str {
        &self.0.bundle_checksum
    }
    /// The canonical evidence bundle itself (run, steps, governance events).
    async fn bundle(&self) -> Json<serde_json::Value> {
        Json(self.0.bundle.clone())
    }
    /// Checksum of the newest completed export, if any.
    async fn checksum(&self) -> Option<&str> {
        self.0
            .latest_completed()
            .and_then(|e| e.checksum.as_deref())
    }
    /// Whether the newest completed export still matches the evidence as stored now (null when
    /// nothing was exported).
    async fn latest_export_matches_bundle(&self) -> Option<bool> {
        self.0
            .latest_completed()
            .map(|e| e.checksum.as_deref() == Some(self.0.bundle_checksum.as_str()))
    }
    /// The tenant's compliance frameworks plus tags derived from the evidence
    /// (POLICY_GOVERNED, POLICY_BLOCKED, HUMAN_ATTRIBUTED, SYNTHETIC, INCIDENT_CORRELATED).
    async fn compliance_tags(&self) -> &[String] {
        &self.0.compliance_tags
    }
    /// The run's exports, newest first.
    async fn exports(&self) -> Vec<LogExport> {
        self.0.exports.iter().cloned().map(LogExport).collect()
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// Fields of the run list besides its edges.
pub struct LlmRunListInfo {
    filter: RunFilter,
    metadata: EvidenceMetadata,
}

#[Object]
impl LlmRunListInfo {
    /// Number of runs matching the filter (counted only when selected).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(facade(ctx)?.count_llm_runs(&self.filter).await? as i64)
    }
    /// The filters applied, as JSON.
    async fn filters_applied(&self) -> Json<serde_json::Value> {
        Json(self.filter.applied())
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.metadata
    }
}

/// What the selections of runs (a connection's nodes and edges, or one run) will load,
/// including every replay window size asked for (through aliases, the same view can be asked
/// with several).
fn prefetch_for(nodes: &[async_graphql::Lookahead<'_>]) -> RunPrefetch {
    let selected = |name: &str| nodes.iter().any(|n| n.field(name).exists());
    let system = selected("system");
    // Metadata (of the run or of a view) is the only reader of the correlation spine besides
    // export and the system views.
    let metadata = selected("metadata")
        || ["envelope", "trace", "governance", "replay"]
            .iter()
            .any(|view| {
                nodes
                    .iter()
                    .any(|n| n.field(view).field("metadata").exists())
            });
    let mut windows: Vec<WindowSeconds> = Vec::new();
    for node in nodes {
        let system = node.field("system");
        for view in [
            node.field("replay"),
            system.field("replay"),
            system.field("attribution"),
        ] {
            for field in view.selection_fields() {
                let size = field
                    .arguments()
                    .ok()
                    .and_then(|args| {
                        args.into_iter()
                            .find(|(name, _)| name.as_str() == "windowSeconds")
                            .and_then(|(_, v)| match v {
                                async_graphql::Value::Number(n) => n.as_i64(),
                                _ => None,
                            })
                    })
                    .and_then(|n| i32::try_from(n).ok());
                // An invalid size is left for the resolver to report.
                match WindowSeconds::parse(size) {
                    Ok(w) if !windows.contains(&w) => windows.push(w),
                    _ => {}
                }
            }
        }
    }
    // Each trace reads the columns it shows; every other view of steps reads them all.
    let mut steps: Vec<StepColumns> = nodes
        .iter()
        .flat_map(|n| n.field("trace").selection_fields())
        .map(|trace| trace_step_columns(&trace))
        .collect();
    if selected("replay") || selected("export") || system {
        steps.push(StepColumns::all());
    }
    // Likewise for each governance view's policy events.
    let mut governance: Vec<EventColumns> = nodes
        .iter()
        .flat_map(|n| n.field("governance").selection_fields())
        .map(|view| governance_event_columns(&view))
        .collect();
    if metadata || selected("replay") || selected("export") {
        governance.push(EventColumns::all());
    }
    RunPrefetch {
        governance,
        spine: metadata || selected("export") || system,
        steps,
        telemetry: nodes
            .iter()
            .any(|n| n.field("system").field("telemetry").exists()),
        windows,
    }
}

#[derive(Default)]
pub struct RunsQuery;

#[Object]
impl RunsQuery {
    /// LLM runs of the caller's tenant, newest first by default (keyset-paginated).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn llm_runs(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
        order_by: Option<RunOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Plain<LlmRun>, LlmRunListInfo>> {
        let order = order_by.unwrap_or_default();
        let args = page_args(order.list_kind(), first, after, last, before)?;
        let f = facade(ctx)?;
        let list = f
            .list_llm_runs(filter.unwrap_or_default(), order, args)
            .await?;
        let runs: Vec<llm_runs::Model> = list.page.items.iter().map(|(_, r)| r.clone()).collect();
        let look_ahead = ctx.look_ahead();
        let nodes = [
            look_ahead.field("nodes"),
            look_ahead.field("edges").field("node"),
        ];
        f.prefetch_runs(&runs, prefetch_for(&nodes)).await?;
        Ok(connection(
            list.page,
            |run| Plain(LlmRun(run)),
            LlmRunListInfo {
                filter: list.filter,
                metadata: list.metadata,
            },
        ))
    }

    /// One run by its run id; NOT_FOUND when the tenant has no such run.
    async fn llm_run(&self, ctx: &Context<'_>, run_id: String) -> Result<LlmRun> {
        let f = facade(ctx)?;
        let run = f.llm_run(&run_id).await?;
        // Its views find their rows loaded, one statement per kind of data, as in a list.
        f.prefetch_runs(
            std::slice::from_ref(&run),
            prefetch_for(&[ctx.look_ahead()]),
        )
        .await?;
        Ok(LlmRun(run))
    }
}
