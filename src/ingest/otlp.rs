//! OpenTelemetry traces (OTLP) as evidence: spans that follow the GenAI semantic conventions
//! become runs and steps.
//!
//! - The trace id (hex) is the trace id of the run and its steps.
//! - The root span of a trace (no parent, e.g. `invoke_agent`) is the run record: run id from
//!   `runledger.run.id` (else the trace id), provider from `gen_ai.provider.name` (or the older
//!   `gen_ai.system`), model from `gen_ai.response.model` or `gen_ai.request.model`, tokens from
//!   `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens`, cost from
//!   `runledger.cost_cents`; where the root span lacks provider, model, tokens or cost, they
//!   come from the other spans of the trace in the same request (summed for tokens and cost).
//!   Span status ERROR makes the run FAILED, anything else SUCCEEDED; agent from
//!   `gen_ai.agent.id` / `gen_ai.agent.name`, human from `enduser.id` / `user.id`, system from
//!   the resource's `service.name`.
//! - Every other span is a step of its trace, keyed by its span id: skill from
//!   `gen_ai.tool.name` or the span name, FAILED on status ERROR (outcome `error.type` or
//!   `ERROR`), SUCCEEDED otherwise; its index follows the trace's stored steps in time order,
//!   so spans of one trace arriving in several requests assemble into one run.
//!
//! Spans that cannot be evidence (bad ids, no name, end before start, far-future times) are
//! rejected one by one and reported in the OTLP partial-success answer with the reason.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};

use super::EvidenceBatch;
use super::input::{MAX_CLOCK_SKEW_SECONDS, MAX_ID_CHARS};
use crate::canonical::micros;
use crate::domain::{Origin, RunStatus, StepStatus};
use entity::{llm_runs, trace_steps};

/// Most spans accepted in one request.
pub const MAX_SPANS: usize = 20_000;

/// The evidence of one OTLP request, and the spans it could not take.
pub struct Mapped {
    pub batch: EvidenceBatch,
    pub rejected: usize,
    /// Why spans were rejected (the first few reasons, with counts).
    pub reasons: Vec<String>,
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn attr_str(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) if !s.trim().is_empty() => {
            Some(s.chars().take(MAX_ID_CHARS).collect())
        }
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attr_int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::DoubleValue(d) if d.is_finite() => Some(d.round() as i64),
        any_value::Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn first_str(attrs: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| attr_str(attrs, k))
}

fn nanos(t: u64) -> Option<DateTime<Utc>> {
    let t = i64::try_from(t).ok()?;
    if t <= 0 {
        return None;
    }
    Some(micros(DateTime::from_timestamp_nanos(t)))
}

/// A span that passed the checks, with what it is needed for.
struct Checked<'a> {
    span: &'a Span,
    service: Option<String>,
    trace_id: String,
    span_id: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

fn check<'a>(
    span: &'a Span,
    service: &Option<String>,
    now: DateTime<Utc>,
) -> Result<Checked<'a>, &'static str> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err("trace id is not 16 bytes or is all zero");
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err("span id is not 8 bytes or is all zero");
    }
    if span.name.trim().is_empty() || span.name.chars().count() > MAX_ID_CHARS {
        return Err("span name is empty or longer than 256 characters");
    }
    let (Some(start), Some(end)) = (
        nanos(span.start_time_unix_nano),
        nanos(span.end_time_unix_nano),
    ) else {
        return Err("start or end time missing");
    };
    if end < start {
        return Err("end time is before start time");
    }
    if end > now + Duration::seconds(MAX_CLOCK_SKEW_SECONDS) {
        return Err("end time is more than 300 s in the future");
    }
    Ok(Checked {
        span,
        service: service.clone(),
        trace_id: hex::encode(&span.trace_id),
        span_id: hex::encode(&span.span_id),
        start,
        end,
    })
}

/// The span that is the run: the trace's parentless span, else (when the agent was called from
/// another service, so its root has a remote parent) the earliest `invoke_agent` span whose
/// parent is not among the trace's spans here.
fn root_of(spans: &[Checked<'_>]) -> Option<usize> {
    if let Some(i) = spans.iter().position(|c| c.span.parent_span_id.is_empty()) {
        return Some(i);
    }
    spans.iter().position(|c| {
        attr_str(&c.span.attributes, "gen_ai.operation.name").as_deref() == Some("invoke_agent")
            && !spans
                .iter()
                .any(|p| p.span.span_id == c.span.parent_span_id)
    })
}

fn failed(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// Maps an OTLP request onto runs and steps of `tenant_id`, recorded at `now`.
pub fn map(tenant_id: &str, request: &ExportTraceServiceRequest, now: DateTime<Utc>) -> Mapped {
    let now = micros(now);
    let mut rejected = 0usize;
    let mut reasons: HashMap<&'static str, usize> = HashMap::new();
    let mut by_trace: HashMap<String, Vec<Checked<'_>>> = HashMap::new();
    let mut seen = 0usize;
    for rs in &request.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| attr_str(&r.attributes, "service.name"));
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                seen += 1;
                let verdict = if seen > MAX_SPANS {
                    Err("more than 20000 spans in one request")
                } else {
                    check(span, &service, now)
                };
                match verdict {
                    Ok(c) => by_trace.entry(c.trace_id.clone()).or_default().push(c),
                    Err(why) => {
                        rejected += 1;
                        *reasons.entry(why).or_default() += 1;
                    }
                }
            }
        }
    }

    let mut batch = EvidenceBatch {
        reject_conflicts: true,
        ..Default::default()
    };
    for (trace_id, mut spans) in by_trace {
        spans.sort_by_key(|c| (c.start, c.span_id.clone()));
        let root = root_of(&spans);
        // A second parentless span cannot be the run as well: refused, not silently dropped.
        let extra_roots = spans
            .iter()
            .enumerate()
            .filter(|(i, c)| c.span.parent_span_id.is_empty() && Some(*i) != root)
            .count();
        if extra_roots > 0 {
            rejected += extra_roots;
            *reasons
                .entry("a second root span in one trace")
                .or_default() += extra_roots;
        }
        let root = root.map(|i| &spans[i]);
        let is_root = |c: &Checked<'_>| root.is_some_and(|r| r.span_id == c.span_id);
        for c in spans
            .iter()
            .filter(|c| !is_root(c) && !c.span.parent_span_id.is_empty())
        {
            let a = &c.span.attributes;
            let is_failed = failed(c.span);
            batch.spans.push(trace_steps::Model {
                anchor_id: None,
                tenant_id: tenant_id.to_string(),
                trace_id: trace_id.clone(),
                step_index: 0,
                occurred_at: c.start,
                skill_name: first_str(a, &["gen_ai.tool.name"])
                    .unwrap_or_else(|| c.span.name.chars().take(MAX_ID_CHARS).collect()),
                status: if is_failed {
                    StepStatus::Failed
                } else {
                    StepStatus::Succeeded
                }
                .as_str()
                .to_string(),
                outcome_category: if is_failed {
                    attr_str(a, "error.type").unwrap_or_else(|| "ERROR".into())
                } else {
                    "SUCCESS".into()
                },
                cost_cents: attr_int(a, "runledger.cost_cents").unwrap_or(0).max(0),
                duration_ms: (c.end - c.start).num_milliseconds(),
                span_id: Some(c.span_id.clone()),
                recorded_at: now,
                record_hash: String::new(),
            });
        }
        let Some(root) = root else { continue };
        let ra = &root.span.attributes;
        let children = || spans.iter().filter(|c| !is_root(c));
        let from_any = |keys: &[&str]| {
            first_str(ra, keys)
                .or_else(|| children().find_map(|c| first_str(&c.span.attributes, keys)))
        };
        let sum = |key: &str| {
            attr_int(ra, key)
                .unwrap_or_else(|| {
                    children()
                        .filter_map(|c| attr_int(&c.span.attributes, key))
                        .sum()
                })
                .max(0)
        };
        let human = first_str(ra, &["enduser.id", "user.id"]);
        let agent = first_str(ra, &["gen_ai.agent.id", "gen_ai.agent.name"]);
        let origin = if human.is_some() {
            Origin::Human
        } else if agent.is_some() {
            Origin::Agent
        } else {
            Origin::System
        };
        batch.runs.push(llm_runs::Model {
            anchor_id: None,
            tenant_id: tenant_id.to_string(),
            run_id: first_str(ra, &["runledger.run.id"]).unwrap_or_else(|| trace_id.clone()),
            trace_id: Some(trace_id.clone()),
            provider: from_any(&["gen_ai.provider.name", "gen_ai.system"])
                .unwrap_or_else(|| "unknown".into()),
            model: from_any(&["gen_ai.response.model", "gen_ai.request.model"])
                .unwrap_or_else(|| "unknown".into()),
            input_tokens: sum("gen_ai.usage.input_tokens"),
            output_tokens: sum("gen_ai.usage.output_tokens"),
            cost_cents: sum("runledger.cost_cents"),
            execution_status: if failed(root.span) {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            }
            .as_str()
            .to_string(),
            started_at: root.start,
            completed_at: Some(root.end),
            source: "otel".into(),
            is_synthetic: false,
            human_actor_id: human,
            agent_id: agent,
            system_id: root.service.clone(),
            origin: origin.as_str().to_string(),
            recorded_at: now,
            record_hash: String::new(),
        });
    }
    let mut reasons: Vec<String> = reasons
        .into_iter()
        .map(|(why, n)| format!("{n} span(s): {why}"))
        .collect();
    reasons.sort();
    Mapped {
        batch,
        rejected,
        reasons,
    }
}
