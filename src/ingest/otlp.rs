//! OpenTelemetry traces (OTLP) as evidence: spans become runs and steps, whatever order and
//! grouping they arrive in.
//!
//! - The trace id (hex) is the trace id of the run and its steps.
//! - The root span of a trace (no parent; or a parent in another service: the span's flags say
//!   so, or, when they do not say, an agent span whose parent is not among the request's
//!   spans) is the run record, and the record holds only what the root span itself says: run
//!   id from `runledger.run.id` (else the trace id), provider, model (response model before
//!   request model), tokens and cost, session, status (ERROR makes it FAILED), agent, human,
//!   and the resource's `service.name` as system. Nothing in it depends on other spans, so the
//!   record is the same whichever spans came before or with it, and a re-send is a no-op.
//! - Every other span is a step of its trace, keyed by its span id, carrying its own usage
//!   (provider, request and response model, tokens by kind, cost), its session, its content
//!   (per the tenant's [`ContentPolicy`]; the digest always) and what mapped to no field. Its
//!   index follows the trace's stored steps in time order.
//! - A run's totals over its steps are derived when read (`facade::runs::usage`), never stored,
//!   so no total is frozen before its spans have all arrived.
//!
//! Which attribute becomes which field is [`super::conventions`]. Spans that cannot be evidence
//! (bad ids, no name, end before start, far-future times) are rejected one by one and reported
//! in the OTLP partial-success answer with the reason.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, SpanFlags, status::StatusCode};
use serde_json::{Value, json};

use super::EvidenceBatch;
use super::conventions as conv;
use super::input::{MAX_CLOCK_SKEW_SECONDS, MAX_ID_CHARS, MAX_JSON_BYTES};
use super::span_json::{Part, any_json, attributes_json};
use crate::canonical::{canonical_json, micros, sha256_hex, timestamp};
use crate::domain::{Origin, RunStatus, StepStatus};
use entity::{llm_runs, trace_steps};

/// Most spans accepted in one request.
pub const MAX_SPANS: usize = 20_000;

/// Largest JSON of a step's unmapped attributes and events, in bytes.
pub const MAX_UNMAPPED_BYTES: usize = MAX_JSON_BYTES;

/// What a tenant keeps of span content (prompts, completions, system instructions, tool
/// arguments and results). The SHA-256 digest of a span's whole content is kept either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentPolicy {
    /// Keep the content itself (off by default).
    pub capture: bool,
    /// Largest kept content of one step, in bytes of canonical JSON.
    pub max_bytes: usize,
}

impl ContentPolicy {
    /// Default limit of kept content per step.
    pub const DEFAULT_MAX_BYTES: usize = 32 * 1024;
    /// Highest limit a tenant may set.
    pub const MAX_MAX_BYTES: usize = 1024 * 1024;
}

impl Default for ContentPolicy {
    fn default() -> Self {
        ContentPolicy {
            capture: false,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// The evidence of one OTLP request, and the spans it could not take.
pub struct Mapped {
    pub batch: EvidenceBatch,
    pub rejected: usize,
    /// Why spans were rejected (the first few reasons, with counts).
    pub reasons: Vec<String>,
    /// Traces of which no accepted span of this request names a model or a provider, with
    /// how many spans each: whether the trace's stored spans do is checked where it is stored.
    pub unattributed: Vec<(String, usize)>,
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

/// The span that is the run: the trace's parentless span; else (an agent called from another
/// service) the span whose flags say its parent is remote; else, when the producer's SDK does
/// not set those flags, the earliest agent span whose parent is not among the trace's spans
/// here — the one rule that depends on the grouping (a sub-agent sent without its parent would
/// be taken for the root), which is why the flags come first.
fn root_of(spans: &[Checked<'_>]) -> Option<usize> {
    if let Some(i) = spans.iter().position(|c| c.span.parent_span_id.is_empty()) {
        return Some(i);
    }
    if let Some(i) = spans
        .iter()
        .position(|c| parent_is_remote(c.span) == Some(true))
    {
        return Some(i);
    }
    spans.iter().position(|c| {
        let a = &c.span.attributes;
        parent_is_remote(c.span).is_none()
            && conv::is_agent_kind(
                attr_str(a, conv::GENAI_OPERATION).as_deref(),
                attr_str(a, conv::OPENINFERENCE_KIND).as_deref(),
                attr_str(a, conv::TRACELOOP_KIND).as_deref(),
            )
            && !spans
                .iter()
                .any(|p| p.span.span_id == c.span.parent_span_id)
    })
}

/// Whether the span's parent is in another process, when the producer said (OTLP span flags).
fn parent_is_remote(span: &Span) -> Option<bool> {
    let flags = span.flags;
    (flags & SpanFlags::ContextHasIsRemoteMask as u32 != 0)
        .then_some(flags & SpanFlags::ContextIsRemoteMask as u32 != 0)
}

fn failed(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// The usage a span reports about itself, by [`conv`]'s precedence.
struct Usage {
    provider: Option<String>,
    request_model: Option<String>,
    response_model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_creation_tokens: Option<i64>,
    cost_cents: Option<i64>,
    session_id: Option<String>,
}

fn first_int(attrs: &[KeyValue], keys: &[&str]) -> Option<i64> {
    keys.iter()
        .find_map(|k| attr_int(attrs, k))
        .map(|n| n.max(0))
}

fn usage(a: &[KeyValue]) -> Usage {
    Usage {
        provider: first_str(a, conv::PROVIDER),
        request_model: first_str(a, conv::REQUEST_MODEL),
        response_model: first_str(a, conv::RESPONSE_MODEL),
        input_tokens: first_int(a, conv::INPUT_TOKENS),
        output_tokens: first_int(a, conv::OUTPUT_TOKENS),
        cache_read_tokens: first_int(a, conv::CACHE_READ_TOKENS),
        cache_creation_tokens: first_int(a, conv::CACHE_CREATION_TOKENS),
        cost_cents: first_int(a, conv::COST_CENTS),
        session_id: first_str(a, conv::SESSION),
    }
}

impl Usage {
    /// Whether the span names what its usage can be attributed to.
    fn attributable(&self) -> bool {
        self.provider.is_some() || self.request_model.is_some() || self.response_model.is_some()
    }
}

/// A span's content and what of it mapped to no field.
struct Split {
    content: Part,
    unmapped: Part,
}

fn split(span: &Span) -> Split {
    let mut content = Part::default();
    let mut unmapped = Part::default();
    for kv in &span.attributes {
        let value = any_json(kv.value.as_ref());
        if conv::is_content(&kv.key) {
            content.attributes.insert(kv.key.clone(), value);
        } else if !conv::is_mapped(&kv.key) {
            unmapped.attributes.insert(kv.key.clone(), value);
        }
    }
    let mut events: Vec<_> = span.events.iter().collect();
    events.sort_by_key(|e| e.time_unix_nano);
    for e in events {
        let time = nanos(e.time_unix_nano).map(|t| timestamp(&t));
        let entry = |attrs: serde_json::Map<String, Value>| json!({"name": e.name, "time": time, "attributes": attrs});
        if conv::is_content_event(&e.name) {
            content
                .events
                .push(entry(attributes_json(e.attributes.iter())));
            continue;
        }
        let (said, rest): (Vec<&KeyValue>, Vec<&KeyValue>) = e
            .attributes
            .iter()
            .partition(|kv| conv::is_content(&kv.key));
        let had_content = !said.is_empty();
        if had_content {
            content
                .events
                .push(entry(attributes_json(said.into_iter())));
        }
        // An event is kept among the unmapped ones unless all it said was content.
        if !rest.is_empty() || !had_content {
            unmapped
                .events
                .push(entry(attributes_json(rest.into_iter())));
        }
    }
    Split { content, unmapped }
}

/// Maps an OTLP request onto runs and steps of `tenant_id`, recorded at `now`, keeping content
/// as `content` says.
pub fn map(
    tenant_id: &str,
    request: &ExportTraceServiceRequest,
    now: DateTime<Utc>,
    content: ContentPolicy,
) -> Mapped {
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
    let mut unattributed = Vec::new();
    let mut traces: Vec<_> = by_trace.into_iter().collect();
    traces.sort_by(|a, b| a.0.cmp(&b.0));
    for (trace_id, mut spans) in traces {
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
        let mut attributed = false;
        let mut accepted = 0usize;
        for c in spans
            .iter()
            .filter(|c| !is_root(c) && !c.span.parent_span_id.is_empty())
        {
            accepted += 1;
            batch
                .spans
                .push(step(tenant_id, &trace_id, c, now, content, &mut attributed));
        }
        if let Some(root) = root {
            accepted += 1;
            let u = usage(&root.span.attributes);
            attributed |= u.attributable();
            batch
                .runs
                .push(run(tenant_id, &trace_id, root, u, now, content));
        }
        if !attributed && accepted > 0 {
            unattributed.push((trace_id, accepted));
        }
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
        unattributed,
    }
}

/// The step of a non-root span.
fn step(
    tenant_id: &str,
    trace_id: &str,
    c: &Checked<'_>,
    now: DateTime<Utc>,
    policy: ContentPolicy,
    attributed: &mut bool,
) -> trace_steps::Model {
    let a = &c.span.attributes;
    let is_failed = failed(c.span);
    let u = usage(a);
    *attributed |= u.attributable();
    let kept = Kept::of(c.span, policy);
    let traceloop_tool = (attr_str(a, conv::TRACELOOP_KIND).as_deref() == Some("tool"))
        .then(|| attr_str(a, conv::TRACELOOP_ENTITY))
        .flatten();
    trace_steps::Model {
        anchor_id: None,
        tenant_id: tenant_id.to_string(),
        trace_id: trace_id.to_string(),
        step_index: 0,
        occurred_at: c.start,
        skill_name: first_str(a, conv::TOOL)
            .or(traceloop_tool)
            .unwrap_or_else(|| c.span.name.chars().take(MAX_ID_CHARS).collect()),
        status: if is_failed {
            StepStatus::Failed
        } else {
            StepStatus::Succeeded
        }
        .as_str()
        .to_string(),
        outcome_category: if is_failed {
            first_str(a, conv::ERROR_TYPE).unwrap_or_else(|| "ERROR".into())
        } else {
            "SUCCESS".into()
        },
        cost_cents: u.cost_cents.unwrap_or(0),
        duration_ms: (c.end - c.start).num_milliseconds(),
        span_id: Some(c.span_id.clone()),
        recorded_at: now,
        record_hash: String::new(),
        provider: u.provider,
        request_model: u.request_model,
        response_model: u.response_model,
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_tokens,
        cache_creation_tokens: u.cache_creation_tokens,
        session_id: u.session_id,
        attributes: kept.attributes,
        content: kept.content,
        content_sha256: kept.content_sha256,
    }
}

/// What a record keeps of a span besides its fields.
struct Kept {
    attributes: Option<String>,
    content: Option<String>,
    content_sha256: Option<String>,
}

impl Kept {
    fn of(span: &Span, policy: ContentPolicy) -> Kept {
        let Split { content, unmapped } = split(span);
        let (kept, digest) = if content.is_empty() {
            (None, None)
        } else {
            let digest = sha256_hex(canonical_json(&content.whole()).as_bytes());
            (
                policy.capture.then(|| content.bounded(policy.max_bytes)),
                Some(digest),
            )
        };
        Kept {
            attributes: (!unmapped.is_empty()).then(|| unmapped.bounded(MAX_UNMAPPED_BYTES)),
            content: kept,
            content_sha256: digest,
        }
    }
}

/// The run record of a root span: what the root span itself says, nothing of other spans.
fn run(
    tenant_id: &str,
    trace_id: &str,
    root: &Checked<'_>,
    u: Usage,
    now: DateTime<Utc>,
    policy: ContentPolicy,
) -> llm_runs::Model {
    let ra = &root.span.attributes;
    let kept = Kept::of(root.span, policy);
    let human = first_str(ra, conv::HUMAN);
    let agent = first_str(ra, conv::AGENT);
    let origin = if human.is_some() {
        Origin::Human
    } else if agent.is_some() {
        Origin::Agent
    } else {
        Origin::System
    };
    llm_runs::Model {
        anchor_id: None,
        tenant_id: tenant_id.to_string(),
        run_id: first_str(ra, conv::RUN_ID).unwrap_or_else(|| trace_id.to_string()),
        trace_id: Some(trace_id.to_string()),
        provider: u.provider.unwrap_or_else(|| UNKNOWN.into()),
        model: u
            .response_model
            .or(u.request_model)
            .unwrap_or_else(|| UNKNOWN.into()),
        input_tokens: u.input_tokens.unwrap_or(0),
        output_tokens: u.output_tokens.unwrap_or(0),
        cost_cents: u.cost_cents.unwrap_or(0),
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
        session_id: u.session_id,
        cache_read_tokens: u.cache_read_tokens,
        cache_creation_tokens: u.cache_creation_tokens,
        attributes: kept.attributes,
        content: kept.content,
        content_sha256: kept.content_sha256,
    }
}

/// Provider or model of a run record whose root span named none.
pub const UNKNOWN: &str = "unknown";
