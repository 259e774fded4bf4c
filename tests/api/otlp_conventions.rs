//! The conventions OTLP spans are read by, each built here the way its instrumentations emit
//! it (from their published conventions): OpenInference (Phoenix/Arize), OpenLLMetry
//! (Traceloop) and the current OpenTelemetry GenAI conventions with their events. Usage, tools,
//! sessions, unmapped attributes and the content digest are read back; a trace naming no model
//! or provider is accepted with a warning; sessions are listed and filtered.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

const T0: u64 = 1_777_100_000_000_000_000;

fn s(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

fn i(key: &str, v: i64) -> Value {
    json!({"key": key, "value": {"intValue": v.to_string()}})
}

fn span(trace: &str, n: u64, parent: u64, name: &str, attrs: Vec<Value>) -> Value {
    let parent = if parent == 0 {
        String::new()
    } else {
        format!("{parent:016x}")
    };
    json!({"traceId": trace, "spanId": format!("{n:016x}"), "parentSpanId": parent,
           "name": name, "startTimeUnixNano": (T0 + n * 1_000_000).to_string(),
           "endTimeUnixNano": (T0 + n * 1_000_000 + 500_000).to_string(),
           "attributes": attrs, "status": {"code": 1}})
}

async fn send(app: &TestApp, key: &str, spans: Vec<Value>) -> Value {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [s("service.name", "conv-svc")]},
        "scopeSpans": [{"scope": {"name": "instrumentation"}, "spans": spans}]
    }]});
    let resp = app
        .client
        .post(format!("{}/v1/traces", app.address))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// SHA-256 of `{"attributes": {…}}` in canonical JSON: keys sorted, no white space (the
/// values here are ASCII strings and integers, whose canonical form is serde_json's).
fn digest_of(attrs: &[(&str, Value)]) -> String {
    let mut sorted: Vec<&(&str, Value)> = attrs.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let mut text = String::from("{\"attributes\":{");
    for (n, (k, v)) in sorted.iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&format!("{}:{}", json!(k), v));
    }
    text.push_str("}}");
    hex::encode(Sha256::digest(text.as_bytes()))
}

const STEP: &str = "stepIndex skillName provider requestModel responseModel inputTokens \
                    outputTokens cacheReadTokens sessionId attributes content contentSha256";

async fn run_of(app: &TestApp, key: &str, run_id: &str) -> Value {
    let q = format!(
        r#"{{ llmRun(runId: "{run_id}") {{ provider model sessionId attributes
            metadata {{ humanActorId agentId }}
            usage {{ provider model inputTokens outputTokens cacheReadTokens steps }}
            trace {{ steps {{ {STEP} }} }} }} }}"#
    );
    app.query(key, &q, json!({})).await["llmRun"].clone()
}

async fn openinference_spans_are_understood(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let trace = "0123456789abcdef0123456789abcdef";
    let question = "What is the refund policy?";
    let answer = "Refunds within 30 days.";
    // A LangChain agent as openinference-instrumentation-langchain emits it.
    let llm_content = [
        ("input.value", json!(question)),
        ("output.value", json!(answer)),
        ("llm.input_messages.0.message.role", json!("user")),
        ("llm.input_messages.0.message.content", json!(question)),
        ("llm.output_messages.0.message.content", json!(answer)),
    ];
    let mut llm_attrs = vec![
        s("openinference.span.kind", "LLM"),
        s("llm.model_name", "gpt-4o-mini"),
        s("llm.provider", "openai"),
        s("llm.system", "openai"),
        i("llm.token_count.prompt", 200),
        i("llm.token_count.completion", 50),
        i("llm.token_count.total", 250),
        i("llm.token_count.prompt_details.cache_read", 20),
        s("llm.invocation_parameters", "{\"temperature\":0}"),
        s("session.id", "sess-oi"),
    ];
    for (k, v) in &llm_content {
        llm_attrs.push(s(k, v.as_str().unwrap()));
    }
    let tool_content = [
        ("input.value", json!("{\"query\": \"refund\"}")),
        ("output.value", json!("30 days")),
    ];
    let mut tool_attrs = vec![
        s("openinference.span.kind", "TOOL"),
        s("tool.name", "policy_search"),
        s("tool.description", "Searches the policy base"),
    ];
    for (k, v) in &tool_content {
        tool_attrs.push(s(k, v.as_str().unwrap()));
    }
    let answer_json = send(
        &app,
        &keys.alpha_ingest,
        vec![
            span(
                trace,
                1,
                0,
                "AgentExecutor",
                vec![
                    s("openinference.span.kind", "AGENT"),
                    s("session.id", "sess-oi"),
                    s("user.id", "user-7"),
                    s("agent.name", "support"),
                    s("metadata", "{\"ls_run\": 1}"),
                ],
            ),
            span(trace, 2, 1, "ChatOpenAI", llm_attrs),
            span(trace, 3, 1, "policy_search", tool_attrs),
        ],
    )
    .await;
    assert!(answer_json["partialSuccess"].is_null(), "{answer_json}");

    let run = run_of(&app, &keys.alpha_viewer, trace).await;
    assert_eq!(run["sessionId"], json!("sess-oi"));
    assert_eq!(
        run["metadata"],
        json!({"humanActorId": "user-7", "agentId": "support"})
    );
    assert_eq!(
        run["attributes"],
        json!({"attributes": {"metadata": "{\"ls_run\": 1}"}})
    );
    assert_eq!(
        run["usage"],
        json!({"provider": "openai", "model": "gpt-4o-mini", "inputTokens": 200,
               "outputTokens": 50, "cacheReadTokens": 20, "steps": 2})
    );
    let steps = &run["trace"]["steps"];
    assert_eq!(
        steps[0],
        json!({"stepIndex": 0, "skillName": "ChatOpenAI", "provider": "openai",
               "requestModel": null, "responseModel": "gpt-4o-mini", "inputTokens": 200,
               "outputTokens": 50, "cacheReadTokens": 20, "sessionId": "sess-oi",
               "attributes": {"attributes": {"llm.invocation_parameters": "{\"temperature\":0}",
                                             "llm.token_count.total": 250}},
               "content": null, "contentSha256": digest_of(&llm_content)})
    );
    assert_eq!(steps[1]["skillName"], json!("policy_search"));
    assert_eq!(
        steps[1]["attributes"],
        json!({"attributes": {"tool.description": "Searches the policy base"}})
    );
    assert_eq!(steps[1]["contentSha256"], json!(digest_of(&tool_content)));
}
both!(openinference_spans_are_understood);

async fn openllmetry_spans_are_understood(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let trace = "fedcba9876543210fedcba9876543210";
    // A Traceloop workflow: two LLM calls (the gen_ai.* and the llm.usage.* spellings) and a
    // tool task.
    let prompt = [
        ("gen_ai.prompt.0.role", json!("user")),
        ("gen_ai.prompt.0.content", json!("hi")),
        ("gen_ai.completion.0.content", json!("hello")),
    ];
    let mut first = vec![
        s("traceloop.span.kind", "llm"),
        s("gen_ai.system", "openai"),
        s("gen_ai.request.model", "gpt-4o"),
        s("gen_ai.response.model", "gpt-4o-2024-08-06"),
        i("gen_ai.usage.prompt_tokens", 321),
        i("gen_ai.usage.completion_tokens", 12),
        i("llm.usage.total_tokens", 333),
        s("llm.request.type", "chat"),
    ];
    for (k, v) in &prompt {
        first.push(s(k, v.as_str().unwrap()));
    }
    send(
        &app,
        &keys.alpha_ingest,
        vec![
            span(
                trace,
                1,
                0,
                "support_flow.workflow",
                vec![
                    s("traceloop.span.kind", "workflow"),
                    s("traceloop.entity.name", "support_flow"),
                    s("traceloop.workflow.name", "support_flow"),
                ],
            ),
            span(trace, 2, 1, "openai.chat", first),
            span(
                trace,
                3,
                1,
                "anthropic.chat",
                vec![
                    s("gen_ai.system", "anthropic"),
                    s("llm.request.model", "claude-3-5-haiku"),
                    i("llm.usage.prompt_tokens", 40),
                    i("llm.usage.completion_tokens", 4),
                    i("gen_ai.usage.cache_read_input_tokens", 30),
                ],
            ),
            span(
                trace,
                4,
                1,
                "lookup.tool",
                vec![
                    s("traceloop.span.kind", "tool"),
                    s("traceloop.entity.name", "lookup"),
                    s("traceloop.entity.input", "{\"id\": 1}"),
                ],
            ),
        ],
    )
    .await;
    let run = run_of(&app, &keys.alpha_viewer, trace).await;
    assert_eq!(
        run["usage"],
        json!({"provider": "openai", "model": "gpt-4o-2024-08-06", "inputTokens": 361,
               "outputTokens": 16, "cacheReadTokens": 30, "steps": 3})
    );
    let steps = &run["trace"]["steps"];
    assert_eq!(
        (
            &steps[0]["provider"],
            &steps[0]["requestModel"],
            &steps[0]["inputTokens"]
        ),
        (&json!("openai"), &json!("gpt-4o"), &json!(321))
    );
    assert_eq!(
        steps[0]["attributes"],
        json!({"attributes": {"llm.request.type": "chat", "llm.usage.total_tokens": 333}})
    );
    assert_eq!(steps[0]["contentSha256"], json!(digest_of(&prompt)));
    assert_eq!(
        (
            &steps[1]["provider"],
            &steps[1]["requestModel"],
            &steps[1]["outputTokens"]
        ),
        (&json!("anthropic"), &json!("claude-3-5-haiku"), &json!(4))
    );
    assert_eq!(steps[2]["skillName"], json!("lookup"));
    assert_eq!(
        steps[2]["contentSha256"],
        json!(digest_of(&[(
            "traceloop.entity.input",
            json!("{\"id\": 1}")
        )]))
    );
    assert_eq!(
        run["attributes"],
        json!({"attributes": {"traceloop.workflow.name": "support_flow"}})
    );
}
both!(openllmetry_spans_are_understood);

async fn genai_events_and_unmapped_attributes_are_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let trace = "aaaabbbbccccddddeeeeffff00001111";
    let messages = "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi\"}]}]";
    let mut chat = span(
        trace,
        2,
        1,
        "chat gpt-4.1",
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", "gpt-4.1"),
            s("gen_ai.response.model", "gpt-4.1-2025-04-14"),
            s("gen_ai.response.id", "chatcmpl-123"),
            json!({"key": "gen_ai.response.finish_reasons",
                   "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}}),
            s("gen_ai.conversation.id", "conv-9"),
            i("gen_ai.usage.input_tokens", 70),
            i("gen_ai.usage.output_tokens", 9),
            i("gen_ai.usage.cache_read.input_tokens", 64),
        ],
    );
    chat["events"] = json!([
        {"timeUnixNano": (T0 + 2_100_000).to_string(),
         "name": "gen_ai.client.inference.operation.details",
         "attributes": [s("gen_ai.input.messages", messages),
                        s("gen_ai.system_instructions", "Be brief.")]},
        {"timeUnixNano": (T0 + 2_200_000).to_string(), "name": "retry",
         "attributes": [i("attempt", 2)]}
    ]);
    let mut tool = span(
        trace,
        3,
        1,
        "execute_tool get_weather",
        vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "get_weather"),
            s("gen_ai.tool.call.id", "call_1"),
            s("gen_ai.tool.call.arguments", "{\"city\":\"Paris\"}"),
            s("gen_ai.tool.call.result", "{\"temp\":21}"),
        ],
    );
    tool["status"] = json!({"code": 2, "message": "boom"});
    send(
        &app,
        &keys.alpha_ingest,
        vec![
            span(
                trace,
                1,
                0,
                "invoke_agent weather",
                vec![
                    s("gen_ai.operation.name", "invoke_agent"),
                    s("gen_ai.conversation.id", "conv-9"),
                ],
            ),
            chat,
            tool,
        ],
    )
    .await;
    let run = run_of(&app, &keys.alpha_viewer, trace).await;
    assert_eq!(run["sessionId"], json!("conv-9"));
    let steps = &run["trace"]["steps"];
    assert_eq!(
        (&steps[0]["cacheReadTokens"], &steps[0]["responseModel"]),
        (&json!(64), &json!("gpt-4.1-2025-04-14"))
    );
    assert_eq!(
        steps[0]["attributes"],
        json!({"attributes": {"gen_ai.response.finish_reasons": ["stop"],
                              "gen_ai.response.id": "chatcmpl-123"},
               "events": [{"name": "retry", "time": "2026-04-25T06:53:20.002200Z",
                           "attributes": {"attempt": 2}}]})
    );
    // The event's content is content (its digest: the event as stored).
    let event = json!({"attributes": {"gen_ai.input.messages": messages,
                                      "gen_ai.system_instructions": "Be brief."},
                       "name": "gen_ai.client.inference.operation.details",
                       "time": "2026-04-25T06:53:20.002100Z"});
    let text = format!(
        "{{\"events\":[{}]}}",
        serde_json::to_string(&sorted(&event)).unwrap()
    );
    assert_eq!(
        steps[0]["contentSha256"],
        json!(hex::encode(Sha256::digest(text.as_bytes())))
    );
    assert_eq!(
        steps[1]["attributes"],
        json!({"attributes": {"gen_ai.tool.call.id": "call_1"}})
    );
    assert_eq!(
        steps[1]["contentSha256"],
        json!(digest_of(&[
            ("gen_ai.tool.call.arguments", json!("{\"city\":\"Paris\"}")),
            ("gen_ai.tool.call.result", json!("{\"temp\":21}")),
        ]))
    );
}
both!(genai_events_and_unmapped_attributes_are_kept);

/// A JSON value with every object's keys in order.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

async fn unattributable_spans_are_accepted_with_a_warning(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let trace = "99999999999999998888888888888888";
    let answer = send(
        &app,
        &keys.alpha_ingest,
        vec![
            span(trace, 1, 0, "handle_request", vec![]),
            span(trace, 2, 1, "step", vec![i("llm.token_count.prompt", 5)]),
        ],
    )
    .await;
    assert_eq!(
        answer["partialSuccess"]["rejectedSpans"],
        json!(0),
        "{answer}"
    );
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("2 span(s)") && message.contains(trace) && message.contains("model"),
        "{message}"
    );
    // Once a span of the trace names a model, later spans of it are attributable.
    let answer = send(
        &app,
        &keys.alpha_ingest,
        vec![span(trace, 3, 1, "chat", vec![s("llm.model_name", "m1")])],
    )
    .await;
    assert!(answer["partialSuccess"].is_null(), "{answer}");
    let answer = send(
        &app,
        &keys.alpha_ingest,
        vec![span(trace, 4, 1, "more", vec![])],
    )
    .await;
    assert!(answer["partialSuccess"].is_null(), "{answer}");
}
both!(unattributable_spans_are_accepted_with_a_warning);

async fn sessions_are_listed_and_filtered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = keys.alpha_ingest.as_str();
    // Two OTLP runs of conversation `c-1` (GenAI and OpenInference spellings), one of another,
    // one GraphQL run of `c-1`, and a trace of `c-1` whose root has not arrived.
    let chat = |trace: &str, n: u64, session_key: &str, tokens: i64| {
        span(
            trace,
            n,
            1,
            "chat",
            vec![
                s(session_key, "c-1"),
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.response.model", "gpt-4o"),
                i("gen_ai.usage.input_tokens", tokens),
                i("gen_ai.usage.output_tokens", tokens / 10),
            ],
        )
    };
    let (a, b, c, d) = (
        "a0000000000000000000000000000001",
        "b0000000000000000000000000000002",
        "c0000000000000000000000000000003",
        "d0000000000000000000000000000004",
    );
    send(
        &app,
        k,
        vec![
            span(
                a,
                1,
                0,
                "invoke_agent",
                vec![s("gen_ai.conversation.id", "c-1")],
            ),
            chat(a, 2, "gen_ai.conversation.id", 100),
            span(b, 1, 0, "agent", vec![s("session.id", "c-1")]),
            chat(b, 5, "session.id", 300),
            span(c, 1, 0, "agent", vec![s("session.id", "c-2")]),
            chat(d, 7, "session.id", 50),
        ],
    )
    .await;
    let run = json!({"runId": "gql-run", "provider": "anthropic", "model": "claude",
        "inputTokens": 7, "outputTokens": 3, "costCents": 2, "executionStatus": "SUCCEEDED",
        "startedAt": "2026-04-25T07:00:00Z", "completedAt": "2026-04-25T07:00:01Z",
        "sessionId": "c-1"});
    app.query(
        k,
        "mutation($r: [RunInput!]!) { ingestRuns(runs: $r) { storedCount } }",
        json!({"r": [run]}),
    )
    .await;

    let d_json = app
        .query(
            &keys.alpha_viewer,
            r#"{ session(id: "c-1") { id runs { runId sessionId }
                 openTraces { traceId sessionId usage { inputTokens } }
                 totals { inputTokens outputTokens costCents steps provider } }
               llmRuns(filter: {sessionId: "c-1"}, orderBy: {field: STARTED_AT, direction: ASC}) {
                 edges { node { runId } } } }"#,
            json!({}),
        )
        .await;
    let session = &d_json["session"];
    assert_eq!(session["id"], json!("c-1"));
    assert_eq!(
        session["runs"],
        json!([{"runId": a, "sessionId": "c-1"}, {"runId": b, "sessionId": "c-1"},
               {"runId": "gql-run", "sessionId": "c-1"}])
    );
    assert_eq!(
        session["openTraces"],
        json!([{"traceId": d, "sessionId": "c-1", "usage": {"inputTokens": 50}}])
    );
    assert_eq!(
        session["totals"],
        json!({"inputTokens": 100 + 300 + 7 + 50, "outputTokens": 10 + 30 + 3 + 5,
               "costCents": 2, "steps": 3, "provider": null})
    );
    let ids: Vec<&Value> = d_json["llmRuns"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["runId"])
        .collect();
    assert_eq!(ids, vec![&json!(a), &json!(b), &json!("gql-run")]);
    let (code, _) = app
        .query_error(
            Some(keys.alpha_viewer.as_str()),
            r#"{ session(id: "nope") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}
both!(sessions_are_listed_and_filtered);

async fn content_is_kept_when_the_tenant_captures_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let (admin, _) = runledger::auth::create_key(
        app.db(),
        "alpha",
        runledger::domain::Role::Admin,
        None,
        None,
    )
    .await
    .unwrap();
    let q = "{ contentCapture { enabled maxBytes } }";
    assert_eq!(
        app.query(&keys.alpha_viewer, q, json!({})).await["contentCapture"],
        json!({"enabled": false, "maxBytes": 32768})
    );
    let set = "mutation($on: Boolean!, $max: Int) { setContentCapture(enabled: $on, maxBytes: $max) { enabled maxBytes } }";
    let (code, _) = app
        .query_error(Some(keys.alpha_viewer.as_str()), set, json!({"on": true}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, message) = app
        .query_error(Some(admin.as_str()), set, json!({"on": true, "max": 10}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("maxBytes"), "{message}");
    assert_eq!(
        app.query(&admin, set, json!({"on": true, "max": 400}))
            .await["setContentCapture"],
        json!({"enabled": true, "maxBytes": 400})
    );
    let changed = app
        .store
        .query_strings(
            "SELECT after_state FROM audit_ledger WHERE event_type = 'TENANT_SETTINGS_CHANGED' \
             AND tenant_id = 'alpha'",
        )
        .await;
    assert_eq!(changed.len(), 1);
    let after: Value = serde_json::from_str(&changed[0]).unwrap();
    assert_eq!(
        after,
        json!({"content_capture": true, "content_max_bytes": 400})
    );

    let trace = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
    let long = "x".repeat(1000);
    let content = [
        ("gen_ai.input.messages", json!("[{\"role\":\"user\"}]")),
        ("gen_ai.output.messages", json!(long)),
    ];
    let mut chat_attrs = vec![s("gen_ai.provider.name", "openai")];
    for (k, v) in &content {
        chat_attrs.push(s(k, v.as_str().unwrap()));
    }
    send(
        &app,
        &keys.alpha_ingest,
        vec![
            span(
                trace,
                1,
                0,
                "invoke_agent",
                vec![s("input.value", "help me")],
            ),
            span(trace, 2, 1, "chat", chat_attrs),
        ],
    )
    .await;
    let d = app
        .query(
            &keys.alpha_viewer,
            &format!(
                r#"{{ llmRun(runId: "{trace}") {{ content contentSha256
                    envelope {{ canonicalJson checksumMatchesStored }}
                    trace {{ steps {{ content contentSha256 }} }} }} }}"#
            ),
            json!({}),
        )
        .await;
    let run = &d["llmRun"];
    assert_eq!(
        run["content"],
        json!({"attributes": {"input.value": "help me"}})
    );
    assert_eq!(
        run["contentSha256"],
        json!(digest_of(&[("input.value", json!("help me"))]))
    );
    // Content is part of the record and its hash.
    assert!(
        run["envelope"]["canonicalJson"]
            .as_str()
            .unwrap()
            .contains("help me")
    );
    assert_eq!(run["envelope"]["checksumMatchesStored"], json!(true));
    let step = &run["trace"]["steps"][0];
    // The digest is of the whole content; what is kept is cut to the limit, with a marker.
    assert_eq!(step["contentSha256"], json!(digest_of(&content)));
    let kept = &step["content"];
    assert_eq!(
        kept["attributes"]["gen_ai.input.messages"],
        json!("[{\"role\":\"user\"}]")
    );
    let cut = kept["attributes"]["gen_ai.output.messages"]
        .as_str()
        .unwrap();
    assert!(cut.starts_with("xxx") && cut.ends_with("…[truncated]") && cut.len() < 400);
    assert_eq!(kept["truncated"]["cut_values"], json!(1));
    assert!(serde_json::to_string(kept).unwrap().len() <= 400);
    // A full verification recomputes the new records' hashes, content included, from the
    // stored columns.
    let i = &app
        .query(
            &keys.alpha_auditor,
            "{ audit { integrity(mode: FULL) { status anomalies { kind record } } } }",
            json!({}),
        )
        .await["audit"]["integrity"];
    assert_eq!(i["anomalies"], json!([]), "{i}");
}
both!(content_is_kept_when_the_tenant_captures_it);
