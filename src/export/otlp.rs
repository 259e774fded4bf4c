//! The `OTLP_JSON` format: runs and their steps as OpenTelemetry spans in the GenAI semantic
//! conventions that `ingest::otlp` reads, so any OpenTelemetry backend (runledger itself
//! included) can import them. JSON Lines: one OTLP/JSON `ExportTraceServiceRequest` per run, in
//! run id order, each line the body of one `POST /v1/traces` (docs/exports.md, "OTLP_JSON").
//!
//! - The run is the root span (no parent): trace id as stored, span id the first 8 bytes of
//!   SHA-256(`"runledger.run:" + run id`) (runs keep no span id of their own), name
//!   `invoke_agent`, `runledger.run.id`, provider, model (as `gen_ai.response.model`), tokens,
//!   cost, session, agent, human, and the system as the resource's `service.name`.
//! - Each step is a child of the root: span id as stored, name the skill, its usage, session,
//!   `error.type` when it failed, and the unmapped attributes and events it kept.
//! - Times are unix nanoseconds (strings, per OTLP/JSON); a step ends `duration_ms` after it
//!   started; a run without a completion time ends when it started.
//! - A trace id that is not 32 hex digits (a run not ingested through OTLP) is replaced by the
//!   first 16 bytes of SHA-256(`"runledger.trace:" + trace id`) (of the run id when it has none);
//!   a step without a span id gets SHA-256(`"runledger.step:" + trace id + "#" + index`).
//!
//! Content (prompts, completions) is not written: only its digest is evidence here, and a
//! digest is not content. Policy events, system records and telemetry have no span form and are
//! left out. Not signed: the checksum chained in `EXPORT_COMPLETED` is what an auditor compares.

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::select::{Chunk, Walk};
use crate::error::{AppResult, Context};

/// The instrumentation scope the spans are written under.
pub const SCOPE: &str = "runledger.export";

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn put_str(attrs: &mut Vec<KeyValue>, key: &str, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        attrs.push(kv(key, any_value::Value::StringValue(s.to_string())));
    }
}

/// The usage and session attributes a run and a step both carry.
fn put_usage<'a>(attrs: &mut Vec<KeyValue>, g: impl Fn(&str) -> Option<&'a Value>) {
    put_int(attrs, "gen_ai.usage.input_tokens", g("input_tokens"));
    put_int(attrs, "gen_ai.usage.output_tokens", g("output_tokens"));
    put_int(
        attrs,
        "gen_ai.usage.cache_read.input_tokens",
        g("cache_read_tokens"),
    );
    put_int(
        attrs,
        "gen_ai.usage.cache_creation.input_tokens",
        g("cache_creation_tokens"),
    );
    put_int(attrs, "runledger.cost_cents", g("cost_cents"));
    put_str(attrs, "gen_ai.conversation.id", g("session_id"));
}

fn put_int(attrs: &mut Vec<KeyValue>, key: &str, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_i64) {
        attrs.push(kv(key, any_value::Value::IntValue(n)));
    }
}

/// A JSON value (as `ingest::span_json` keeps one) as an OTLP value.
fn any_of(v: &Value) -> Option<any_value::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        Value::Array(a) => any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().map(|x| AnyValue { value: any_of(x) }).collect(),
        }),
        Value::Object(m) => any_value::Value::KvlistValue(KeyValueList {
            values: attributes_of(Some(&Value::Object(m.clone()))),
        }),
    })
}

fn attributes_of(v: Option<&Value>) -> Vec<KeyValue> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| any_of(v).map(|v| kv(k, v)))
                .collect()
        })
        .unwrap_or_default()
}

fn nanos_of(v: Option<&Value>) -> Option<u64> {
    let t = DateTime::parse_from_rfc3339(v?.as_str()?).ok()?;
    u64::try_from(t.with_timezone(&Utc).timestamp_nanos_opt()?).ok()
}

fn digest(prefix: &str, text: &str, len: usize) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prefix.as_bytes());
    h.update(text.as_bytes());
    h.finalize()[..len].to_vec()
}

/// The trace id a run is written with.
fn trace_id_of(run: &Value) -> Vec<u8> {
    let stored = run.get("trace_id").and_then(Value::as_str);
    if let Some(bytes) = stored
        .and_then(|t| hex::decode(t).ok())
        .filter(|b| b.len() == 16 && b.iter().any(|x| *x != 0))
    {
        return bytes;
    }
    let basis = stored
        .or_else(|| run.get("run_id").and_then(Value::as_str))
        .unwrap_or_default();
    digest("runledger.trace:", basis, 16)
}

/// The span id of a run's root span.
pub fn root_span_id(run_id: &str) -> Vec<u8> {
    digest("runledger.run:", run_id, 8)
}

fn root_span(run: &Value, trace_id: &[u8]) -> Span {
    let g = |k: &str| run.get(k);
    let run_id = g("run_id").and_then(Value::as_str).unwrap_or_default();
    let mut a = vec![
        kv(
            "gen_ai.operation.name",
            any_value::Value::StringValue("invoke_agent".into()),
        ),
        kv(
            "runledger.run.id",
            any_value::Value::StringValue(run_id.to_string()),
        ),
    ];
    put_str(&mut a, "gen_ai.provider.name", g("provider"));
    put_str(&mut a, "gen_ai.response.model", g("model"));
    put_usage(&mut a, g);
    put_str(&mut a, "gen_ai.agent.id", g("agent_id"));
    put_str(&mut a, "enduser.id", g("human_actor_id"));
    let kept = kept_of(g("attributes"));
    a.extend(attributes_of(
        kept.as_ref().and_then(|k| k.get("attributes")),
    ));
    let start = nanos_of(g("started_at")).unwrap_or_default();
    let end = nanos_of(g("completed_at")).unwrap_or(start);
    let failed = g("execution_status").and_then(Value::as_str) == Some("FAILED");
    Span {
        trace_id: trace_id.to_vec(),
        span_id: root_span_id(run_id),
        name: "invoke_agent".into(),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        attributes: a,
        events: events_of(kept.as_ref()),
        status: Some(status_of(failed)),
        ..Default::default()
    }
}

fn status_of(failed: bool) -> Status {
    Status {
        message: String::new(),
        code: if failed {
            status::StatusCode::Error
        } else {
            status::StatusCode::Ok
        } as i32,
    }
}

/// The kept unmapped attributes and events (`{"attributes": …, "events": …}` as JSON text).
fn kept_of(v: Option<&Value>) -> Option<Value> {
    serde_json::from_str(v?.as_str()?).ok()
}

fn events_of(kept: Option<&Value>) -> Vec<Event> {
    kept.and_then(|k| k.get("events"))
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .map(|e| Event {
                    name: e
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    time_unix_nano: nanos_of(e.get("time")).unwrap_or_default(),
                    attributes: attributes_of(e.get("attributes")),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step_span(step: &Value, trace_id: &[u8], parent: &[u8]) -> Span {
    let g = |k: &str| step.get(k);
    let span_id = g("span_id")
        .and_then(Value::as_str)
        .and_then(|s| hex::decode(s).ok())
        .filter(|b| b.len() == 8 && b.iter().any(|x| *x != 0))
        .unwrap_or_else(|| {
            let key = format!(
                "{}#{}",
                g("trace_id").and_then(Value::as_str).unwrap_or_default(),
                g("step_index").and_then(Value::as_i64).unwrap_or_default()
            );
            digest("runledger.step:", &key, 8)
        });
    let failed = g("status").and_then(Value::as_str) == Some("FAILED");
    let mut a = Vec::new();
    put_str(&mut a, "gen_ai.provider.name", g("provider"));
    put_str(&mut a, "gen_ai.request.model", g("request_model"));
    put_str(&mut a, "gen_ai.response.model", g("response_model"));
    put_usage(&mut a, g);
    if failed {
        put_str(&mut a, "error.type", g("outcome_category"));
    }
    let kept = kept_of(g("attributes"));
    a.extend(attributes_of(
        kept.as_ref().and_then(|k| k.get("attributes")),
    ));
    let start = nanos_of(g("occurred_at")).unwrap_or_default();
    let duration_ms = g("duration_ms").and_then(Value::as_u64).unwrap_or_default();
    Span {
        trace_id: trace_id.to_vec(),
        span_id,
        parent_span_id: parent.to_vec(),
        name: g("skill_name")
            .and_then(Value::as_str)
            .unwrap_or("step")
            .to_string(),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(duration_ms.saturating_mul(1_000_000)),
        attributes: a,
        events: events_of(kept.as_ref()),
        status: Some(status_of(failed)),
        ..Default::default()
    }
}

/// One run and its steps as one OTLP request.
pub fn request_of(run: &Value, steps: &[Value]) -> ExportTraceServiceRequest {
    let trace_id = trace_id_of(run);
    let root = root_span(run, &trace_id);
    let parent = root.span_id.clone();
    let mut spans = vec![root];
    spans.extend(steps.iter().map(|s| step_span(s, &trace_id, &parent)));
    let mut resource = Vec::new();
    put_str(&mut resource, "service.name", run.get("system_id"));
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Writes the runs of `walk` with their steps as OTLP/JSON lines to `out`; returns how many runs
/// and the hashes of the records written (for the export's evidence digest).
pub(crate) async fn write_runs<C: sea_orm::ConnectionTrait>(
    db: &C,
    walk: &mut Walk,
    mut emit: impl FnMut(&[u8]) -> AppResult<()>,
) -> AppResult<(u64, Vec<[u8; 32]>)> {
    let mut runs = 0u64;
    let mut hashes = Vec::new();
    let mut current: Option<(Value, Vec<Value>)> = None;
    let mut flush = |cur: Option<(Value, Vec<Value>)>| -> AppResult<()> {
        if let Some((run, steps)) = cur {
            let mut line = serde_json::to_string(&request_of(&run, &steps))
                .context("write a run as OTLP/JSON")?;
            line.push('\n');
            emit(line.as_bytes())?;
        }
        Ok(())
    };
    while let Some(chunk) = walk.next(db).await? {
        let Chunk::Records(records) = chunk else {
            continue;
        };
        // The walk yields each run followed by its steps.
        for r in records {
            let is_run = r.table == "llm_runs";
            if !is_run && r.table != "trace_steps" {
                continue;
            }
            let record: Value =
                serde_json::from_str(&r.canonical).context("read a record to export")?;
            hashes.push(Sha256::digest(r.canonical.as_bytes()).into());
            if is_run {
                flush(current.take())?;
                current = Some((record, Vec::new()));
                runs += 1;
            } else if let Some((_, steps)) = current.as_mut() {
                steps.push(record);
            }
        }
    }
    flush(current.take())?;
    Ok((runs, hashes))
}
