//! OTLP assembly independent of order and grouping: one agent trace sent whole, children
//! before the root, the root alone later, one span per request, traces interleaved, spans sent
//! concurrently, and by the real exporter one span per export; every derived total is compared
//! with the sum computed here from the spans sent. Identical re-sends are no-ops; a changed
//! span is refused naming it. Traces without a root are listed with what their steps say.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

const T0: u64 = 1_777_000_000_000_000_000;

fn s(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

fn i(key: &str, v: i64) -> Value {
    json!({"key": key, "value": {"intValue": v.to_string()}})
}

/// One LLM call of a trace: (input, output, cache read, cost) tokens.
type Call = (i64, i64, i64, i64);

/// A span of `trace`: id `n` (root is 1), child of 1 unless it is the root.
fn span(trace: &str, n: u64, name: &str, attrs: Vec<Value>) -> Value {
    let parent = if n == 1 {
        String::new()
    } else {
        format!("{:016x}", 1)
    };
    json!({"traceId": trace, "spanId": format!("{n:016x}"), "parentSpanId": parent,
           "name": name, "startTimeUnixNano": (T0 + n * 1_000_000).to_string(),
           "endTimeUnixNano": (T0 + n * 1_000_000 + 500_000).to_string(),
           "attributes": attrs, "status": {"code": 1}})
}

/// An agent trace: a root that names the agent (no model, no usage) and one chat span per
/// call with its usage, then a tool span.
fn agent_trace(trace: &str, calls: &[Call]) -> Vec<Value> {
    let mut spans = vec![span(
        trace,
        1,
        "invoke_agent planner",
        vec![
            s("gen_ai.operation.name", "invoke_agent"),
            s("gen_ai.agent.name", "planner"),
        ],
    )];
    for (k, (input, output, cache, cost)) in calls.iter().enumerate() {
        spans.push(span(
            trace,
            2 + k as u64,
            "chat gpt-4o",
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.response.model", "gpt-4o-2024-08-06"),
                i("gen_ai.usage.input_tokens", *input),
                i("gen_ai.usage.output_tokens", *output),
                i("gen_ai.usage.cache_read.input_tokens", *cache),
                i("runledger.cost_cents", *cost),
            ],
        ));
    }
    spans.push(span(
        trace,
        2 + calls.len() as u64,
        "execute_tool search",
        vec![s("gen_ai.tool.name", "search")],
    ));
    spans
}

/// The totals the trace's usage must show, summed here from the calls.
fn expected(calls: &[Call]) -> Value {
    let sum = |f: fn(&Call) -> i64| calls.iter().map(f).sum::<i64>();
    json!({"provider": "openai", "model": "gpt-4o-2024-08-06",
           "inputTokens": sum(|c| c.0), "outputTokens": sum(|c| c.1),
           "cacheReadTokens": sum(|c| c.2), "costCents": sum(|c| c.3),
           "steps": calls.len() as i64 + 1})
}

fn export(spans: &[&Value]) -> Vec<u8> {
    json!({"resourceSpans": [{
        "resource": {"attributes": [s("service.name", "planner-svc")]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }]})
    .to_string()
    .into_bytes()
}

async fn send(app: &TestApp, key: &str, spans: &[&Value]) -> Value {
    let resp = app
        .client
        .post(format!("{}/v1/traces", app.address))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(export(spans))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

const USAGE: &str =
    "usage { provider model inputTokens outputTokens cacheReadTokens costCents steps }";

async fn usage_of(app: &TestApp, key: &str, run_id: &str) -> Value {
    let q = format!(
        r#"{{ llmRun(runId: "{run_id}") {{ agentId: metadata {{ agentId }} systemId: metadata {{ systemId }}
            trace {{ totalSteps }} {USAGE} }} }}"#
    );
    let d = app.query(key, &q, json!({})).await;
    assert_eq!(d["llmRun"]["agentId"]["agentId"], json!("planner"));
    assert_eq!(d["llmRun"]["systemId"]["systemId"], json!("planner-svc"));
    d["llmRun"]["usage"].clone()
}

async fn totals_are_right_whatever_the_order_and_grouping(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = keys.alpha_ingest.as_str();
    let calls: [&[Call]; 6] = [
        &[(120, 30, 0, 2), (300, 45, 100, 4), (80, 12, 64, 1)],
        &[(500, 60, 0, 5), (70, 7, 7, 1)],
        &[(10, 1, 0, 0), (20, 2, 0, 1), (30, 3, 5, 0), (40, 4, 0, 2)],
        &[(999, 111, 333, 9)],
        &[(11, 22, 0, 3), (33, 44, 0, 4)],
        &[
            (1, 2, 3, 4),
            (5, 6, 7, 8),
            (9, 10, 11, 12),
            (13, 14, 15, 16),
            (17, 18, 19, 20),
        ],
    ];
    let traces: Vec<String> = (0..calls.len())
        .map(|n| format!("{:032x}", 0xa11_0000 + n))
        .collect();
    let spans: Vec<Vec<Value>> = traces
        .iter()
        .zip(calls)
        .map(|(t, c)| agent_trace(t, c))
        .collect();

    // 0: the whole trace in one request.
    send(&app, k, &spans[0].iter().collect::<Vec<_>>()).await;
    // 1: the children first (SimpleSpanProcessor's order), the root alone in a later request.
    send(&app, k, &spans[1][1..].iter().collect::<Vec<_>>()).await;
    send(&app, k, &[&spans[1][0]]).await;
    // 2: one span per request, last first (the root arrives last).
    for sp in spans[2].iter().rev() {
        send(&app, k, &[sp]).await;
    }
    // 3 and 4 interleaved: each request holds part of both, cut where a batch boundary would.
    let (a, b) = (&spans[3], &spans[4]);
    send(&app, k, &[&a[1], &b[2], &b[0]]).await;
    send(&app, k, &[&b[1], &a[0]]).await;
    send(&app, k, &[&a[2], &b[3]]).await;
    // 5: every span in its own request, all at once.
    let singles: Vec<[&Value; 1]> = spans[5].iter().map(|sp| [sp]).collect();
    join_all(singles.iter().map(|one| send(&app, k, one))).await;

    for (n, trace) in traces.iter().enumerate() {
        assert_eq!(
            usage_of(&app, &keys.alpha_viewer, trace).await,
            expected(calls[n]),
            "trace {n}"
        );
    }
    // The run record is what the root said, whatever came with it.
    let ids: Vec<String> = traces.iter().map(|t| format!("'{t}'")).collect();
    let records = app
        .store
        .query_strings(&format!(
            "SELECT provider || '/' || model || '/' || CAST(input_tokens AS TEXT) FROM llm_runs \
             WHERE run_id IN ({}) ORDER BY run_id",
            ids.join(", ")
        ))
        .await;
    assert_eq!(records, vec!["unknown/unknown/0".to_string(); traces.len()]);

    // Identical re-sends, grouped differently, are no-ops.
    let count = "SELECT (SELECT COUNT(*) FROM trace_steps) + (SELECT COUNT(*) FROM llm_runs)";
    let before = app.store.query_i64(count).await;
    let all: Vec<&Value> = spans.iter().flatten().collect();
    for chunk in all.chunks(4).rev() {
        let answer = send(&app, k, chunk).await;
        assert!(answer["partialSuccess"].is_null(), "{answer}");
    }
    assert_eq!(app.store.query_i64(count).await, before);
    for (n, trace) in traces.iter().enumerate() {
        assert_eq!(
            usage_of(&app, &keys.alpha_viewer, trace).await,
            expected(calls[n])
        );
    }

    // A span re-sent with other usage is refused, naming it; the totals stay.
    let mut changed = spans[0][2].clone();
    changed["attributes"][4] = i("gen_ai.usage.input_tokens", 1);
    let answer = send(&app, k, &[&changed]).await;
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], json!(1));
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains(&format!("{:016x}", 3)) && message.contains(&traces[0]),
        "{message}"
    );
    assert_eq!(
        usage_of(&app, &keys.alpha_viewer, &traces[0]).await,
        expected(calls[0])
    );
}
both!(totals_are_right_whatever_the_order_and_grouping);

async fn a_trace_without_its_root_is_listed_with_what_its_steps_say(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let calls: &[Call] = &[(40, 4, 0, 1), (60, 6, 10, 2)];
    let trace = format!("{:032x}", 0xbeef);
    let spans = agent_trace(&trace, calls);
    // Everything but the root.
    send(
        &app,
        &keys.alpha_ingest,
        &spans[1..].iter().collect::<Vec<_>>(),
    )
    .await;

    let q = format!("{{ openTraces {{ traceId firstStepAt lastStepAt {USAGE} }} }}");
    let d = app.query(&keys.alpha_viewer, &q, json!({})).await;
    let want = expected(calls);
    assert_eq!(
        d["openTraces"],
        json!([{"traceId": trace, "firstStepAt": "2026-04-24T03:06:40.002000Z",
                "lastStepAt": "2026-04-24T03:06:40.004000Z", "usage": want}])
    );
    // Once the root arrives the trace is a run, and no longer open.
    send(&app, &keys.alpha_ingest, &[&spans[0]]).await;
    let d = app.query(&keys.alpha_viewer, &q, json!({})).await;
    assert_eq!(d["openTraces"], json!([]));
    assert_eq!(
        usage_of(&app, &keys.alpha_viewer, &trace).await,
        expected(calls)
    );
}
both!(a_trace_without_its_root_is_listed_with_what_its_steps_say);

async fn a_viewer_with_a_malformed_body_is_forbidden(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let denials = "SELECT COUNT(*) FROM audit_ledger WHERE event_type = 'PERMISSION_DENIED' \
                   AND tenant_id = 'alpha' AND entity_id = 'write:evidence'";
    let before = app.store.query_i64(denials).await[0];
    for (content_type, body) in [
        ("application/x-protobuf", vec![0xff; 32]),
        ("application/json", b"{not json".to_vec()),
    ] {
        let resp = app
            .client
            .post(format!("{}/v1/traces", app.address))
            .bearer_auth(&keys.alpha_viewer)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{content_type}");
    }
    // The refusals are recorded as decisions.
    assert_eq!(app.store.query_i64(denials).await, vec![before + 2]);
    // The ingest key's malformed body is still a 400.
    let resp = app
        .client
        .post(format!("{}/v1/traces", app.address))
        .bearer_auth(&keys.alpha_ingest)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
both!(a_viewer_with_a_malformed_body_is_forbidden);

async fn the_real_exporter_one_span_per_export_interleaved(backend: Backend) {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let provider = crate::otlp::provider(&app, &keys.alpha_ingest);
    let tracer = provider.tracer("agent");
    // Two agent runs at once; every child is exported on its own (a flush after each), the
    // two traces' children alternate, and each root is exported last, alone.
    let calls: [&[Call]; 2] = [
        &[(100, 10, 5, 1), (200, 20, 0, 2), (300, 30, 50, 3)],
        &[(7, 1, 0, 0), (8, 2, 3, 1), (9, 3, 0, 0)],
    ];
    let roots: Vec<_> = ["run-x", "run-y"]
        .iter()
        .map(|id| {
            let mut root = tracer.start("invoke_agent planner");
            root.set_attribute(KeyValue::new("gen_ai.operation.name", "invoke_agent"));
            root.set_attribute(KeyValue::new("gen_ai.agent.name", "planner"));
            root.set_attribute(KeyValue::new("runledger.run.id", id.to_string()));
            opentelemetry::Context::current_with_span(root)
        })
        .collect();
    for k in 0..3 {
        for (cx, c) in roots.iter().zip(calls) {
            let (input, output, cache, cost) = c[k];
            let mut chat = tracer.start_with_context("chat gpt-4o", cx);
            chat.set_attribute(KeyValue::new("gen_ai.provider.name", "openai"));
            chat.set_attribute(KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"));
            chat.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", input));
            chat.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", output));
            chat.set_attribute(KeyValue::new("gen_ai.usage.cache_read.input_tokens", cache));
            chat.set_attribute(KeyValue::new("runledger.cost_cents", cost));
            chat.end();
            crate::otlp::flush(&provider).await;
        }
    }
    for cx in &roots {
        let mut tool = tracer.start_with_context("execute_tool search", cx);
        tool.set_attribute(KeyValue::new("gen_ai.tool.name", "search"));
        tool.end();
    }
    crate::otlp::flush(&provider).await;
    for cx in &roots {
        cx.span().end();
        crate::otlp::flush(&provider).await;
    }
    for (id, c) in ["run-x", "run-y"].iter().zip(calls) {
        let q = format!(r#"{{ llmRun(runId: "{id}") {{ {USAGE} }} }}"#);
        let d = app.query(&keys.alpha_viewer, &q, json!({})).await;
        assert_eq!(d["llmRun"]["usage"], expected(c), "{id}");
    }
    provider.shutdown().ok();
}
both!(the_real_exporter_one_span_per_export_interleaved);
