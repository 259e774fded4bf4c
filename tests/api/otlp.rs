//! OpenTelemetry in: spans sent by the real OTLP/HTTP exporter (opentelemetry-otlp, protobuf,
//! gzip) and OTLP/JSON, read back through GraphQL as runs with their trace, tokens and status;
//! partial success, idempotent re-sends and errors.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

pub(crate) fn provider(app: &TestApp, key: &str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", app.address))
        .with_headers(HashMap::from([(
            "Authorization".to_string(),
            format!("Bearer {key}"),
        )]))
        .with_compression(Compression::Gzip)
        .build()
        .expect("OTLP exporter");
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("support-agent")
                .build(),
        )
        .build()
}

/// Flushes on a blocking thread: the exporter's HTTP client blocks, the server runs on this
/// test's runtime.
pub(crate) async fn flush(provider: &SdkTracerProvider) {
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .expect("flush");
}

async fn spans_from_the_real_exporter_become_a_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let provider = provider(&app, &keys.alpha_ingest);
    let tracer = provider.tracer("agent");

    // The root span (an agent invocation) and two children: a chat call and a failed tool call.
    let mut root = tracer.start("invoke_agent support-bot");
    root.set_attribute(KeyValue::new("gen_ai.operation.name", "invoke_agent"));
    root.set_attribute(KeyValue::new("gen_ai.provider.name", "openai"));
    root.set_attribute(KeyValue::new("gen_ai.agent.name", "support-bot"));
    root.set_attribute(KeyValue::new("runledger.run.id", "otel-run-1"));
    let cx = opentelemetry::Context::current_with_span(root);
    let mut chat = tracer.start_with_context("chat gpt-4o", &cx);
    chat.set_attribute(KeyValue::new("gen_ai.request.model", "gpt-4o"));
    chat.set_attribute(KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"));
    chat.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 150_i64));
    chat.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 40_i64));
    chat.set_attribute(KeyValue::new("runledger.cost_cents", 3_i64));
    chat.end();
    let mut tool = tracer.start_with_context("execute_tool lookup_order", &cx);
    tool.set_attribute(KeyValue::new("gen_ai.tool.name", "lookup_order"));
    tool.set_attribute(KeyValue::new("error.type", "timeout"));
    tool.set_status(Status::error("order service timed out"));
    tool.end();
    cx.span().set_status(Status::error("tool failed"));
    cx.span().end();
    flush(&provider).await;

    let q = r#"{ llmRun(runId: "otel-run-1") {
        provider model inputTokens outputTokens costCents executionStatus source traceId
        usage { provider model inputTokens outputTokens cacheReadTokens costCents steps }
        metadata { agentId systemId origin }
        trace { steps { stepIndex skillName status outcomeCategory costCents } }
        replay { inflection { reason } }
    } }"#;
    let d = app.query(&keys.alpha_viewer, q, json!({})).await;
    let run = &d["llmRun"];
    // The record is what the root span says: a provider, no model, no tokens.
    assert_eq!(
        (
            &run["provider"],
            &run["model"],
            &run["inputTokens"],
            &run["costCents"]
        ),
        (&json!("openai"), &json!("unknown"), &json!(0), &json!(0))
    );
    // The totals are derived from the steps; the response model wins.
    assert_eq!(
        run["usage"],
        json!({"provider": "openai", "model": "gpt-4o-2024-08-06", "inputTokens": 150,
               "outputTokens": 40, "cacheReadTokens": 0, "costCents": 3, "steps": 2})
    );
    assert_eq!(run["executionStatus"], json!("FAILED"));
    assert_eq!(run["source"], json!("otel"));
    assert_eq!(run["traceId"].as_str().map(str::len), Some(32));
    assert_eq!(
        run["metadata"],
        json!({"agentId": "support-bot", "systemId": "support-agent", "origin": "AGENT"})
    );
    assert_eq!(
        run["trace"]["steps"],
        json!([
            {"stepIndex": 0, "skillName": "chat gpt-4o", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS", "costCents": 3},
            {"stepIndex": 1, "skillName": "lookup_order", "status": "FAILED", "outcomeCategory": "timeout", "costCents": 0}
        ])
    );
    assert_eq!(
        run["replay"]["inflection"]["reason"],
        json!("FIRST_FAILED_STEP")
    );

    // Spans of one trace in several requests assemble into one run: children first, root later.
    let mut root = tracer.start("invoke_agent billing-bot");
    root.set_attribute(KeyValue::new("gen_ai.provider.name", "anthropic"));
    root.set_attribute(KeyValue::new("gen_ai.request.model", "claude-sonnet-4"));
    root.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 900_i64));
    root.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 100_i64));
    root.set_attribute(KeyValue::new("runledger.run.id", "otel-run-2"));
    let cx = opentelemetry::Context::current_with_span(root);
    for name in ["chat claude-sonnet-4", "execute_tool refund"] {
        let mut child = tracer.start_with_context(name, &cx);
        child.set_status(Status::Ok);
        child.end();
        flush(&provider).await;
    }
    cx.span().end();
    flush(&provider).await;
    let d = app
        .query(&keys.alpha_viewer, r#"{ llmRun(runId: "otel-run-2") { model inputTokens executionStatus trace { steps { stepIndex skillName } } } }"#, json!({}))
        .await;
    assert_eq!(
        d["llmRun"],
        json!({"model": "claude-sonnet-4", "inputTokens": 900, "executionStatus": "SUCCEEDED",
               "trace": {"steps": [{"stepIndex": 0, "skillName": "chat claude-sonnet-4"}, {"stepIndex": 1, "skillName": "execute_tool refund"}]}})
    );
    provider.shutdown().ok();
}
both!(spans_from_the_real_exporter_become_a_run);

fn otlp_json(trace: &str, spans: Value) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }], "_trace": trace})
}

async fn post_otlp(
    app: &TestApp,
    key: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut req = app
        .client
        .post(format!("{}/v1/traces", app.address))
        .header("content-type", content_type)
        .body(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

async fn otlp_json_partial_success_retries_and_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let trace = "5b8efff798038103d269b633813fc60c";
    let span = |id: &str, parent: &str, name: &str, start: u64, end: u64| {
        json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": 1,
               "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
               "attributes": [{"key": "gen_ai.provider.name", "value": {"stringValue": "mistral"}},
                              {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}],
               "status": {"code": 1}})
    };
    let t0: u64 = 1_777_000_000_000_000_000;
    let body = otlp_json(
        trace,
        json!([
            span(
                "eee19b7ec3c1b174",
                "",
                "invoke_agent json",
                t0,
                t0 + 5_000_000_000
            ),
            span(
                "eee19b7ec3c1b175",
                "eee19b7ec3c1b174",
                "chat mistral-large",
                t0 + 1_000_000,
                t0 + 2_000_000_000
            ),
            // End before start: refused on its own, the rest is stored.
            span(
                "eee19b7ec3c1b176",
                "eee19b7ec3c1b174",
                "broken",
                t0 + 3_000_000_000,
                t0
            ),
        ]),
    );
    let (status, bytes) = post_otlp(
        &app,
        Some(&keys.alpha_ingest),
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], json!(1));
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("end time is before start time")
    );

    let q = format!(
        r#"{{ llmRun(runId: "{trace}") {{ provider inputTokens trace {{ totalSteps }} metadata {{ systemId }} }} }}"#
    );
    let d = app.query(&keys.alpha_viewer, &q, json!({})).await;
    assert_eq!(
        d["llmRun"],
        json!({"provider": "mistral", "inputTokens": 12, "trace": {"totalSteps": 1}, "metadata": {"systemId": "json-agent"}})
    );

    // The same export again writes nothing new.
    let steps_before = app
        .store
        .query_i64("SELECT COUNT(*) FROM trace_steps")
        .await;
    let (status, _) = post_otlp(
        &app,
        Some(&keys.alpha_ingest),
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.store
            .query_i64("SELECT COUNT(*) FROM trace_steps")
            .await,
        steps_before
    );

    // Errors, in the request's encoding.
    let (status, _) = post_otlp(
        &app,
        None,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, bytes) = post_otlp(
        &app,
        Some(&keys.alpha_viewer),
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 403);
    let err: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(err["code"], json!(7));
    let (status, _) = post_otlp(
        &app,
        Some(&keys.alpha_ingest),
        "text/plain",
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = post_otlp(
        &app,
        Some(&keys.alpha_ingest),
        "application/x-protobuf",
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_otlp(
        &app,
        Some(&keys.alpha_ingest),
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
}
both!(otlp_json_partial_success_retries_and_errors);

async fn concurrent_exports_of_one_trace_get_distinct_step_indexes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let t0: u64 = 1_777_000_000_000_000_000;
    let export = |i: u64| {
        json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": format!("00f067aa0ba902b{i}"), "parentSpanId": "00f067aa0ba90200",
            "name": format!("execute_tool t{i}"), "startTimeUnixNano": (t0 + i * 1_000_000).to_string(),
            "endTimeUnixNano": (t0 + i * 1_000_000 + 500).to_string()
        }]}]}]})
        .to_string()
        .into_bytes()
    };
    let sends = (1..=6).map(|i| {
        post_otlp(
            &app,
            Some(&keys.alpha_ingest),
            "application/json",
            export(i),
        )
    });
    for (status, bytes) in futures_util::future::join_all(sends).await {
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    }
    let indexes = app
        .store
        .query_i64(&format!("SELECT CAST(step_index AS BIGINT) FROM trace_steps WHERE trace_id = '{trace}' ORDER BY step_index"))
        .await;
    assert_eq!(indexes, vec![0, 1, 2, 3, 4, 5]);
}
both!(concurrent_exports_of_one_trace_get_distinct_step_indexes);

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

async fn otlp_roots_conflicts_and_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = Some(keys.alpha_ingest.as_str());
    let t0: u64 = 1_777_000_000_000_000_000;
    let span = |trace: &str, id: &str, parent: &str, name: &str, attrs: Value, status: i32| {
        json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name,
               "startTimeUnixNano": t0.to_string(), "endTimeUnixNano": (t0 + 1_000_000).to_string(),
               "attributes": attrs, "status": {"code": status}})
    };
    let export = |spans: Value| {
        json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
            .to_string()
            .into_bytes()
    };

    // An agent called from another service: its invoke_agent span has a remote parent.
    let remote = "1111111111111111aaaaaaaaaaaaaaaa";
    let body = export(json!([
        span(
            remote,
            "2222222222222222",
            "9999999999999999",
            "invoke_agent remote",
            json!([{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}}]),
            1
        ),
        span(
            remote,
            "3333333333333333",
            "2222222222222222",
            "chat",
            json!([]),
            1
        ),
    ]));
    // Sent gzip-compressed.
    let resp = app
        .client
        .post(format!("{}/v1/traces", app.address))
        .bearer_auth(&keys.alpha_ingest)
        .header("content-type", "application/json")
        .header("content-encoding", "GZIP")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let d = app
        .query(
            &keys.alpha_viewer,
            &format!(r#"{{ llmRun(runId: "{remote}") {{ provider trace {{ totalSteps }} }} }}"#),
            json!({}),
        )
        .await;
    assert_eq!(
        d["llmRun"],
        json!({"provider": "openai", "trace": {"totalSteps": 1}})
    );

    // Two parentless spans in one trace: the first is the run, the second is refused.
    let twins = "4444444444444444bbbbbbbbbbbbbbbb";
    let (status, bytes) = post_otlp(
        &app,
        k,
        "application/json",
        export(json!([
            span(
                twins,
                "5555555555555555",
                "",
                "invoke_agent a",
                json!([]),
                1
            ),
            span(
                twins,
                "6666666666666666",
                "",
                "invoke_agent b",
                json!([]),
                1
            ),
        ])),
    )
    .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], json!(1));
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("second root")
    );

    // A re-sent span that changed is refused alone; the rest of the export is stored.
    let (status, _) = post_otlp(
        &app,
        k,
        "application/json",
        export(json!([
            span(
                remote,
                "3333333333333333",
                "2222222222222222",
                "chat",
                json!([]),
                2
            ),
            span(
                remote,
                "7777777777777777",
                "2222222222222222",
                "respond",
                json!([]),
                1
            ),
        ])),
    )
    .await;
    assert_eq!(status, 200);
    let d = app
        .query(
            &keys.alpha_viewer,
            &format!(
                r#"{{ llmRun(runId: "{remote}") {{ trace {{ steps {{ skillName status }} }} }} }}"#
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        d["llmRun"]["trace"]["steps"],
        json!([{"skillName": "chat", "status": "SUCCEEDED"}, {"skillName": "respond", "status": "SUCCEEDED"}])
    );

    // Nothing is decoded for an unknown caller; oversized exports are refused before decoding.
    let (status, _) = post_otlp(&app, None, "application/x-protobuf", vec![0xff; 64]).await;
    assert_eq!(status, 401);
    let many: Vec<u8> = {
        // 20001 empty spans: field 2 (spans) inside field 2 (scope_spans) inside field 1.
        let spans: Vec<u8> = std::iter::repeat_n([0x12u8, 0x00], 20_001)
            .flatten()
            .collect();
        let mut scope = vec![0x12];
        prost_len(&mut scope, spans.len());
        scope.extend(spans);
        let mut resource = vec![0x0a];
        prost_len(&mut resource, scope.len());
        resource.extend(scope);
        resource
    };
    let (status, bytes) = post_otlp(&app, k, "application/x-protobuf", many).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&bytes));

    // Step indexes stay bounded.
    let (code, message) = app
        .query_error(k, "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }",
            json!({"s": [{"traceId": "t", "stepIndex": 2147483647, "timestamp": "2026-05-01T10:00:00Z", "skillName": "x", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"}]}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("steps[0].stepIndex"), "{message}");
}
both!(otlp_roots_conflicts_and_limits);

/// Appends a protobuf length (varint).
fn prost_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
