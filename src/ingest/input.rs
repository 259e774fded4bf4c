//! What producers send, as GraphQL inputs, and its validation into evidence records.
//!
//! Every rule failure is a BAD_USER_INPUT naming the item and field (`runs[3].completedAt: …`);
//! a batch with any bad item is refused whole, so nothing of it is stored.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::EvidenceBatch;
use crate::canonical::{canonical_json, micros};
use crate::domain::{
    ActorType, Origin, PolicyDecision, RunStatus, Severity, StepStatus, Timestamp,
};
use crate::error::{AppError, AppResult};
use crate::ledger::vocabulary::{ProducerEvent, producer_entry_id};
use entity::{governance_events, llm_runs, system_records, telemetry_samples, trace_steps};

/// Longest identifier or name accepted (run ids, models, skills…).
pub const MAX_ID_CHARS: usize = 256;
/// Longest free text accepted (summaries, reasons).
pub const MAX_TEXT_CHARS: usize = 4096;
/// How far in the future a timestamp may be, for clock skew between producer and server.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;
/// Most items of one kind in one mutation.
pub const MAX_ITEMS: usize = 1000;
/// Most records (runs, steps, events, samples together) in one mutation.
pub const MAX_RECORDS: usize = 20_000;
/// Highest step index accepted (so that indexes assigned after it never overflow).
pub const MAX_STEP_INDEX: i32 = 1_000_000;
/// Most nesting of a JSON value (details, states).
pub const MAX_JSON_DEPTH: usize = 10;
/// Largest JSON value in canonical form, in bytes.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

/// A trace step: nested in a run (its trace id is the run's) or on its own.
#[derive(Clone, Debug, async_graphql::InputObject)]
pub struct TraceStepInput {
    /// Trace the step belongs to; required on its own, taken from the run when nested.
    pub trace_id: Option<String>,
    /// Position in the trace, from 0.
    pub step_index: i32,
    /// When the step happened.
    pub timestamp: Timestamp,
    /// Skill or tool the step ran.
    pub skill_name: String,
    pub status: StepStatus,
    /// Outcome class, e.g. `SUCCESS`, `TOOL_ERROR`, `POLICY_BLOCK`.
    pub outcome_category: String,
    /// Cost in US cents.
    #[graphql(default)]
    pub cost_cents: i64,
    /// Duration in milliseconds.
    #[graphql(default)]
    pub duration_ms: i64,
}

/// A policy interaction of a run.
#[derive(Clone, Debug, async_graphql::InputObject)]
pub struct GovernanceEventInput {
    /// The producer's id for the event, unique within the tenant.
    pub event_id: String,
    pub timestamp: Timestamp,
    /// E.g. `POLICY_EVALUATED`.
    pub event_type: String,
    pub policy_id: Option<String>,
    pub rule_id: Option<String>,
    pub decision: PolicyDecision,
    /// What the policy looked at, e.g. `run`, `step`, `tool_call`.
    pub entity_type: String,
    pub entity_id: String,
    /// Why the policy decided so.
    pub reason: Option<String>,
}

/// One LLM run, with its steps and policy events.
#[derive(Clone, Debug, async_graphql::InputObject)]
pub struct RunInput {
    /// The producer's run id, unique within the tenant.
    pub run_id: String,
    /// Trace of the run's steps; required when steps are nested.
    pub trace_id: Option<String>,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Cost in US cents.
    pub cost_cents: i64,
    pub execution_status: RunStatus,
    pub started_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Producer of the record, e.g. `sdk`.
    #[graphql(default_with = "String::from(\"api\")")]
    pub source: String,
    #[graphql(default)]
    pub is_synthetic: bool,
    pub human_actor_id: Option<String>,
    pub agent_id: Option<String>,
    pub system_id: Option<String>,
    /// Where the run came from; derived from the actors when absent (REPLAY when synthetic).
    pub origin: Option<Origin>,
    /// Session (conversation) the run belongs to: runs of one session are listed together by
    /// `session(id)`.
    pub session_id: Option<String>,
    /// The run's trace steps.
    pub steps: Option<Vec<TraceStepInput>>,
    /// The run's policy events.
    pub governance_events: Option<Vec<GovernanceEventInput>>,
}

/// An infrastructure event of the caller's tenant.
#[derive(Clone, Debug, async_graphql::InputObject)]
pub struct SystemRecordInput {
    /// The producer's id for the record.
    pub record_id: String,
    pub component: String,
    pub event_type: String,
    pub severity: Severity,
    pub summary: String,
    /// Structured details (at most 16 KiB, 10 levels deep).
    pub details: Option<async_graphql::Json<Value>>,
    /// Who or what caused it.
    pub caused_by: Option<String>,
    /// The run it concerns.
    pub correlation_id: Option<String>,
    pub occurred_at: Timestamp,
    #[graphql(default_with = "Origin::System")]
    pub origin: Origin,
}

/// One telemetry sample of a run.
#[derive(Clone, Debug, async_graphql::InputObject)]
pub struct TelemetrySampleInput {
    /// The producer's id for the sample.
    pub sample_id: String,
    pub run_id: String,
    pub sampled_at: Timestamp,
    /// E.g. `latency_ms`.
    pub metric: String,
    pub value: f64,
    pub unit: Option<String>,
}

/// A change a producer reports to the audit ledger, e.g. a policy rule or limit changed.
#[derive(Clone, Debug, async_graphql::InputObject)]
pub struct AuditEventInput {
    /// The producer's id for the event, unique within the tenant: a re-sent event with the same
    /// id and content is not appended again.
    pub event_id: String,
    /// E.g. `POLICY_RULE_CHANGED`, `LIMIT_CHANGED`.
    pub event_type: String,
    /// E.g. `policy`, `rule`, `limit`.
    pub entity_type: String,
    pub entity_id: String,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    /// Why the change was made.
    pub action_reason: Option<String>,
    pub before_state: Option<async_graphql::Json<Value>>,
    pub after_state: Option<async_graphql::Json<Value>>,
    pub correlation_id: Option<String>,
    pub occurred_at: Timestamp,
}

/// Validation context: the mutation's time and its item path.
pub struct Check {
    now: DateTime<Utc>,
}

fn bad(path: &str, why: impl std::fmt::Display) -> AppError {
    AppError::bad_input(format!("{path}: {why}"))
}

impl Check {
    pub fn new(now: DateTime<Utc>) -> Self {
        Check { now: micros(now) }
    }

    fn text(&self, path: &str, value: &str, max: usize) -> AppResult<String> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            return Err(bad(path, "must not be empty"));
        }
        if chars > max {
            return Err(bad(
                path,
                format!("is {chars} characters long; at most {max}"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(bad(path, "must not contain control characters"));
        }
        Ok(value.to_string())
    }

    fn id(&self, path: &str, value: &str) -> AppResult<String> {
        self.text(path, value, MAX_ID_CHARS)
    }

    fn opt_id(&self, path: &str, value: &Option<String>) -> AppResult<Option<String>> {
        value.as_deref().map(|v| self.id(path, v)).transpose()
    }

    fn opt_text(&self, path: &str, value: &Option<String>) -> AppResult<Option<String>> {
        value
            .as_deref()
            .map(|v| self.text(path, v, MAX_TEXT_CHARS))
            .transpose()
    }

    fn non_negative(&self, path: &str, value: i64) -> AppResult<i64> {
        if value < 0 {
            return Err(bad(path, format!("must not be negative, got {value}")));
        }
        Ok(value)
    }

    fn time(&self, path: &str, value: Timestamp) -> AppResult<DateTime<Utc>> {
        let t = micros(value.0);
        if t > self.now + Duration::seconds(MAX_CLOCK_SKEW_SECONDS) {
            return Err(bad(
                path,
                format!(
                    "{} is more than {MAX_CLOCK_SKEW_SECONDS} s in the future",
                    crate::canonical::timestamp(&t)
                ),
            ));
        }
        Ok(t)
    }

    fn json(
        &self,
        path: &str,
        value: &Option<async_graphql::Json<Value>>,
    ) -> AppResult<Option<String>> {
        let Some(async_graphql::Json(v)) = value else {
            return Ok(None);
        };
        let depth = json_depth(v);
        if depth > MAX_JSON_DEPTH {
            return Err(bad(
                path,
                format!("nests {depth} levels deep; at most {MAX_JSON_DEPTH}"),
            ));
        }
        let text = canonical_json(v);
        if text.len() > MAX_JSON_BYTES {
            return Err(bad(
                path,
                format!("is {} bytes as JSON; at most {MAX_JSON_BYTES}", text.len()),
            ));
        }
        Ok(Some(text))
    }

    fn count(&self, path: &str, n: usize) -> AppResult<()> {
        if n == 0 {
            return Err(bad(path, "must hold at least one item"));
        }
        if n > MAX_ITEMS {
            return Err(bad(path, format!("holds {n} items; at most {MAX_ITEMS}")));
        }
        Ok(())
    }
}

fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn derived_origin(run: &RunInput) -> Origin {
    if run.is_synthetic {
        Origin::Replay
    } else if run.human_actor_id.is_some() {
        Origin::Human
    } else if run.agent_id.is_some() {
        Origin::Agent
    } else {
        Origin::System
    }
}

impl Check {
    fn step(
        &self,
        path: &str,
        tenant_id: &str,
        trace_from_run: Option<&str>,
        s: &TraceStepInput,
    ) -> AppResult<trace_steps::Model> {
        let trace_id = match (trace_from_run, &s.trace_id) {
            (Some(run_trace), Some(own)) if own != run_trace => {
                return Err(bad(
                    &format!("{path}.traceId"),
                    format!("`{own}` differs from the run's traceId `{run_trace}`"),
                ));
            }
            (Some(run_trace), _) => run_trace.to_string(),
            (None, Some(own)) => self.id(&format!("{path}.traceId"), own)?,
            (None, None) => return Err(bad(&format!("{path}.traceId"), "is required")),
        };
        if !(0..=MAX_STEP_INDEX).contains(&s.step_index) {
            return Err(bad(
                &format!("{path}.stepIndex"),
                format!(
                    "must be between 0 and {MAX_STEP_INDEX}, got {}",
                    s.step_index
                ),
            ));
        }
        Ok(trace_steps::Model {
            anchor_id: None,
            tenant_id: tenant_id.to_string(),
            trace_id,
            step_index: s.step_index,
            occurred_at: self.time(&format!("{path}.timestamp"), s.timestamp)?,
            skill_name: self.id(&format!("{path}.skillName"), &s.skill_name)?,
            status: s.status.as_str().to_string(),
            outcome_category: self.id(&format!("{path}.outcomeCategory"), &s.outcome_category)?,
            cost_cents: self.non_negative(&format!("{path}.costCents"), s.cost_cents)?,
            duration_ms: self.non_negative(&format!("{path}.durationMs"), s.duration_ms)?,
            span_id: None,
            recorded_at: self.now,
            record_hash: String::new(),
            provider: None,
            request_model: None,
            response_model: None,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_creation_tokens: None,
            session_id: None,
            attributes: None,
            content: None,
            content_sha256: None,
        })
    }

    fn governance(
        &self,
        path: &str,
        tenant_id: &str,
        run_id: &str,
        g: &GovernanceEventInput,
    ) -> AppResult<governance_events::Model> {
        Ok(governance_events::Model {
            anchor_id: None,
            tenant_id: tenant_id.to_string(),
            id: self.id(&format!("{path}.eventId"), &g.event_id)?,
            run_id: run_id.to_string(),
            occurred_at: self.time(&format!("{path}.timestamp"), g.timestamp)?,
            event_type: self.id(&format!("{path}.eventType"), &g.event_type)?,
            policy_id: self.opt_id(&format!("{path}.policyId"), &g.policy_id)?,
            rule_id: self.opt_id(&format!("{path}.ruleId"), &g.rule_id)?,
            decision: g.decision.as_str().to_string(),
            entity_type: self.id(&format!("{path}.entityType"), &g.entity_type)?,
            entity_id: self.id(&format!("{path}.entityId"), &g.entity_id)?,
            reason: self.opt_text(&format!("{path}.reason"), &g.reason)?,
            recorded_at: self.now,
            record_hash: String::new(),
        })
    }

    /// Runs with their nested steps and policy events.
    pub fn runs(&self, tenant_id: &str, runs: &[RunInput]) -> AppResult<EvidenceBatch> {
        self.count("runs", runs.len())?;
        let mut batch = EvidenceBatch::default();
        for (i, r) in runs.iter().enumerate() {
            let path = format!("runs[{i}]");
            let p = |f: &str| format!("{path}.{f}");
            let run_id = self.id(&p("runId"), &r.run_id)?;
            let trace_id = self.opt_id(&p("traceId"), &r.trace_id)?;
            let started_at = self.time(&p("startedAt"), r.started_at)?;
            let completed_at = r
                .completed_at
                .map(|t| self.time(&p("completedAt"), t))
                .transpose()?;
            if let Some(done) = completed_at.filter(|done| *done < started_at) {
                return Err(bad(
                    &p("completedAt"),
                    format!(
                        "{} is before startedAt {}",
                        crate::canonical::timestamp(&done),
                        crate::canonical::timestamp(&started_at)
                    ),
                ));
            }
            let steps = r.steps.as_deref().unwrap_or_default();
            if !steps.is_empty() && trace_id.is_none() {
                return Err(bad(&p("traceId"), "is required when steps are nested"));
            }
            if steps.len() > MAX_ITEMS {
                return Err(bad(
                    &p("steps"),
                    format!("holds {} items; at most {MAX_ITEMS}", steps.len()),
                ));
            }
            for (j, s) in steps.iter().enumerate() {
                batch.steps.push(self.step(
                    &format!("{path}.steps[{j}]"),
                    tenant_id,
                    trace_id.as_deref(),
                    s,
                )?);
            }
            let events = r.governance_events.as_deref().unwrap_or_default();
            if events.len() > MAX_ITEMS {
                return Err(bad(
                    &p("governanceEvents"),
                    format!("holds {} items; at most {MAX_ITEMS}", events.len()),
                ));
            }
            for (j, g) in events.iter().enumerate() {
                batch.governance.push(self.governance(
                    &format!("{path}.governanceEvents[{j}]"),
                    tenant_id,
                    &run_id,
                    g,
                )?);
            }
            batch.runs.push(llm_runs::Model {
                anchor_id: None,
                tenant_id: tenant_id.to_string(),
                run_id,
                trace_id,
                provider: self.id(&p("provider"), &r.provider)?,
                model: self.id(&p("model"), &r.model)?,
                input_tokens: self.non_negative(&p("inputTokens"), r.input_tokens)?,
                output_tokens: self.non_negative(&p("outputTokens"), r.output_tokens)?,
                cost_cents: self.non_negative(&p("costCents"), r.cost_cents)?,
                execution_status: r.execution_status.as_str().to_string(),
                started_at,
                completed_at,
                source: self.id(&p("source"), &r.source)?,
                is_synthetic: r.is_synthetic,
                human_actor_id: self.opt_id(&p("humanActorId"), &r.human_actor_id)?,
                agent_id: self.opt_id(&p("agentId"), &r.agent_id)?,
                system_id: self.opt_id(&p("systemId"), &r.system_id)?,
                origin: r
                    .origin
                    .unwrap_or_else(|| derived_origin(r))
                    .as_str()
                    .to_string(),
                recorded_at: self.now,
                record_hash: String::new(),
                session_id: self.opt_id(&p("sessionId"), &r.session_id)?,
                cache_read_tokens: None,
                cache_creation_tokens: None,
                attributes: None,
                content: None,
                content_sha256: None,
            });
        }
        self.total(&batch)?;
        Ok(batch)
    }

    /// Steps sent on their own (before or after their run).
    pub fn steps(&self, tenant_id: &str, steps: &[TraceStepInput]) -> AppResult<EvidenceBatch> {
        self.count("steps", steps.len())?;
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, s)| self.step(&format!("steps[{i}]"), tenant_id, None, s))
            .collect::<AppResult<Vec<_>>>()?;
        Ok(EvidenceBatch {
            steps,
            ..Default::default()
        })
    }

    /// System records of the caller's tenant (global records are written by operators only).
    pub fn system_records(
        &self,
        tenant_id: &str,
        records: &[SystemRecordInput],
    ) -> AppResult<EvidenceBatch> {
        self.system_records_of(Some(tenant_id), records)
    }

    /// System records of a tenant, or global ones (`None`: operators only, never a tenant key).
    pub fn system_records_of(
        &self,
        owner: Option<&str>,
        records: &[SystemRecordInput],
    ) -> AppResult<EvidenceBatch> {
        self.count("records", records.len())?;
        let mut out = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let p = |f: &str| format!("records[{i}].{f}");
            out.push(system_records::Model {
                anchor_id: None,
                id: self.id(&p("recordId"), &r.record_id)?,
                tenant_id: owner.map(str::to_string),
                component: self.id(&p("component"), &r.component)?,
                event_type: self.id(&p("eventType"), &r.event_type)?,
                severity: r.severity.as_str().to_string(),
                summary: self.text(&p("summary"), &r.summary, MAX_TEXT_CHARS)?,
                details: self.json(&p("details"), &r.details)?,
                caused_by: self.opt_id(&p("causedBy"), &r.caused_by)?,
                correlation_id: self.opt_id(&p("correlationId"), &r.correlation_id)?,
                origin: r.origin.as_str().to_string(),
                occurred_at: self.time(&p("occurredAt"), r.occurred_at)?,
                recorded_at: self.now,
                record_hash: String::new(),
            });
        }
        Ok(EvidenceBatch {
            system_records: out,
            ..Default::default()
        })
    }

    /// Telemetry samples of runs.
    pub fn telemetry(
        &self,
        tenant_id: &str,
        samples: &[TelemetrySampleInput],
    ) -> AppResult<EvidenceBatch> {
        self.count("samples", samples.len())?;
        let mut out = Vec::with_capacity(samples.len());
        for (i, t) in samples.iter().enumerate() {
            let p = |f: &str| format!("samples[{i}].{f}");
            if !t.value.is_finite() {
                return Err(bad(&p("value"), "must be a finite number"));
            }
            out.push(telemetry_samples::Model {
                anchor_id: None,
                tenant_id: tenant_id.to_string(),
                id: self.id(&p("sampleId"), &t.sample_id)?,
                run_id: self.id(&p("runId"), &t.run_id)?,
                sampled_at: self.time(&p("sampledAt"), t.sampled_at)?,
                metric: self.id(&p("metric"), &t.metric)?,
                value: t.value,
                unit: self.opt_id(&p("unit"), &t.unit)?,
                recorded_at: self.now,
                record_hash: String::new(),
            });
        }
        Ok(EvidenceBatch {
            telemetry: out,
            ..Default::default()
        })
    }

    /// Producer audit events, appended to the ledger as GOVERNANCE entries: the one kind of
    /// entry a client submits ([`crate::ledger::vocabulary`], client-submitted). Each entry's
    /// id is derived from the tenant and the producer's event id, so a re-send is recognised.
    pub fn audit_events(
        &self,
        tenant_id: &str,
        events: &[AuditEventInput],
    ) -> AppResult<EvidenceBatch> {
        self.count("events", events.len())?;
        let mut out = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let p = |f: &str| format!("events[{i}].{f}");
            let state =
                |f: &str, v: &Option<async_graphql::Json<Value>>| -> AppResult<Option<Value>> {
                    self.json(&p(f), v)?;
                    Ok(v.as_ref().map(|j| j.0.clone()))
                };
            let event = ProducerEvent {
                entry_id: producer_entry_id(tenant_id, &self.id(&p("eventId"), &e.event_id)?),
                event_type: self.id(&p("eventType"), &e.event_type)?,
                entity_type: self.id(&p("entityType"), &e.entity_type)?,
                entity_id: self.id(&p("entityId"), &e.entity_id)?,
                actor_type: e.actor_type,
                actor_id: self.opt_id(&p("actorId"), &e.actor_id)?,
                action_reason: self.opt_text(&p("actionReason"), &e.action_reason)?,
                before_state: state("beforeState", &e.before_state)?,
                after_state: state("afterState", &e.after_state)?,
                correlation_id: self.opt_id(&p("correlationId"), &e.correlation_id)?,
                occurred_at: self.time(&p("occurredAt"), e.occurred_at)?,
            };
            out.push(event.into_entry());
        }
        Ok(EvidenceBatch {
            ledger_entries: out,
            ..Default::default()
        })
    }

    fn total(&self, batch: &EvidenceBatch) -> AppResult<()> {
        let n = batch.evidence_records();
        if n > MAX_RECORDS {
            return Err(AppError::bad_input(format!(
                "the batch holds {n} records; at most {MAX_RECORDS}"
            )));
        }
        Ok(())
    }
}
