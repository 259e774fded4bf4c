//! Live subscriptions end to end, with the clients people use: a websocket client speaking
//! graphql-transport-ws (tokio-tungstenite) and an event-stream reader that parses
//! `text/event-stream` as the WHATWG HTML standard says browsers do. Every subscription type;
//! tenant isolation; the role matrix; revocation; resume from a cursor across random
//! disconnects while ingest runs; two server instances on one database; a slow consumer cut
//! off while others keep receiving; deliveries in the ledger; the protocol's close codes.
//!
//! Expected values come from what the test wrote (in the order it wrote them, each write
//! committed before the next) and from the list queries, never from the live code.

use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use runledger::facade::live::LiveSettings;
use runledger::http::HttpSettings;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::both;
use crate::fixture::{self, Keys};
use crate::helpers::{Backend, TestApp};

/// How long a test waits for something the server owes it before it fails.
const WAIT: Duration = Duration::from_secs(30);

const RUNS: &str = "subscription($f: LlmRunFilter, $after: String) {
    llmRunAdded(filter: $f, after: $after) { cursor run { runId provider executionStatus } } }";

// -- clients --------------------------------------------------------------------------------------

/// A graphql-transport-ws client connection.
struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

fn ws_url(address: &str) -> String {
    format!("{}/graphql", address.replacen("http://", "ws://", 1))
}

impl Ws {
    /// Opens the websocket (offering `protocol`, if any) without initialising.
    async fn open(address: &str, protocol: Option<&str>) -> Ws {
        let mut request = ws_url(address).into_client_request().unwrap();
        if let Some(p) = protocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket upgrade");
        if let Some(p) = protocol {
            assert_eq!(
                response.headers()["sec-websocket-protocol"],
                p,
                "the server picks the offered subprotocol"
            );
        }
        Ws { socket }
    }

    /// Opens the websocket over a socket whose receive buffer is as small as the kernel
    /// allows: a client that stops reading stalls the server's writes quickly.
    async fn open_small(address: &str) -> Ws {
        let host = address.trim_start_matches("http://");
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(1024).unwrap();
        let stream = socket.connect(host.parse().unwrap()).await.unwrap();
        let mut request = ws_url(address).into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket upgrade");
        Ws { socket }
    }

    /// Opens, initialises with `key` in the payload and waits for the acknowledgement.
    async fn connect(address: &str, key: &str) -> Ws {
        let mut ws = Ws::open(address, Some("graphql-transport-ws")).await;
        ws.init(key).await;
        ws
    }

    async fn init(&mut self, key: &str) {
        self.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}}))
            .await;
        assert_eq!(
            self.recv().await.expect("connection_ack"),
            json!({"type": "connection_ack"})
        );
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send a message");
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next protocol message (pings answered), or None once the server closed.
    async fn recv(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message within the wait")?;
            match message {
                Ok(Message::Text(text)) => {
                    let v: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                    if v["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    return Some(v);
                }
                Ok(Message::Close(f)) => {
                    eprintln!("closed: {f:?}");
                    return None;
                }
                Err(e) => {
                    eprintln!("ws error: {e}");
                    return None;
                }
                Ok(_) => {}
            }
        }
    }

    /// The payload of the next `next` message, which must be for `id`.
    async fn next(&mut self, id: &str) -> Value {
        let m = self.recv().await.expect("a next message");
        assert_eq!(m["id"], json!(id), "{m}");
        assert_eq!(m["type"], json!("next"), "{m}");
        m["payload"].clone()
    }

    /// The data of the next event for `id`, which must carry no errors.
    async fn event(&mut self, id: &str) -> Value {
        let payload = self.next(id).await;
        assert!(payload.get("errors").is_none(), "{payload}");
        payload["data"].clone()
    }

    /// Reads until the server closes; returns the close code and reason.
    async fn close_code(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the server closes within the wait");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.as_str().to_string());
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("websocket error before the close frame: {e}"),
            }
        }
    }
}

/// A GraphQL-over-SSE response read as an event stream (WHATWG HTML, "Interpreting an event
/// stream": lines split on CR, LF or CRLF; `field: value`, one leading space dropped; a blank
/// line dispatches; comments start with a colon).
struct EventStream {
    body: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    text: String,
    event: String,
    data: Option<String>,
}

impl EventStream {
    async fn open(app: &TestApp, key: Option<&str>, query: &str, variables: Value) -> EventStream {
        let (status, content_type, stream) =
            EventStream::request(app, &app.address, key, query, variables).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "text/event-stream");
        stream
    }

    async fn request(
        app: &TestApp,
        address: &str,
        key: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, String, EventStream) {
        let mut req = app
            .client
            .post(format!("{address}/graphql"))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(json!({"query": query, "variables": variables}).to_string());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.expect("POST /graphql");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let stream = EventStream {
            body: Box::pin(resp.bytes_stream()),
            text: String::new(),
            event: String::new(),
            data: None,
        };
        (status, content_type, stream)
    }

    /// The next dispatched event's type and data, or None at the end of the stream.
    async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            while let Some(end) = self.text.find(['\r', '\n']) {
                let line = self.text[..end].to_string();
                let skip = if self.text[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                self.text.drain(..end + skip);
                if line.is_empty() {
                    let event = std::mem::take(&mut self.event);
                    if let Some(mut data) = self.data.take() {
                        data.pop();
                        let kind = if event.is_empty() {
                            "message".into()
                        } else {
                            event
                        };
                        return Some((kind, data));
                    }
                    continue;
                }
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                    None => (line.clone(), String::new()),
                };
                match field.as_str() {
                    "event" => self.event = value,
                    "data" => {
                        let data = self.data.get_or_insert_with(String::new);
                        data.push_str(&value);
                        data.push('\n');
                    }
                    _ => {}
                }
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("an event within the wait")?;
            self.text
                .push_str(std::str::from_utf8(&chunk.expect("body chunk")).expect("UTF-8"));
        }
    }

    /// The JSON of the next `next` event.
    async fn next(&mut self) -> Value {
        let (kind, data) = self.next_event().await.expect("a next event");
        assert_eq!(kind, "next", "{data}");
        serde_json::from_str(&data).expect("JSON data")
    }
}

// -- writing evidence -----------------------------------------------------------------------------

fn run(run_id: &str, provider: &str, status: &str) -> Value {
    json!({
        "runId": run_id, "provider": provider, "model": "gpt-4o",
        "inputTokens": 10, "outputTokens": 5, "costCents": 1, "executionStatus": status,
        "startedAt": "2026-05-01T10:00:00Z"
    })
}

/// Ingests runs through the server at `address`; returns the ids of the ledger entries the
/// write appended (its anchor).
async fn ingest_runs(app: &TestApp, address: &str, key: &str, runs: Vec<Value>) -> Vec<Value> {
    let resp = app
        .client
        .post(format!("{address}/graphql"))
        .bearer_auth(key)
        .json(&json!({"query": "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { ledgerEntries { entryId } } }", "variables": {"runs": runs}}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    entry_ids(&body["data"]["ingestRuns"])
}

/// Ingests one run of provider `openai`; returns its anchor's entry id.
async fn ingest_run(app: &TestApp, key: &str, run_id: &str, status: &str) -> Vec<Value> {
    ingest_runs(app, &app.address, key, vec![run(run_id, "openai", status)]).await
}

fn entry_ids(result: &Value) -> Vec<Value> {
    result["ledgerEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entryId"].clone())
        .collect()
}

fn system_record(id: &str, severity: &str, details: Value) -> Value {
    json!({"recordId": id, "component": "live-test", "eventType": "WORKER_RESTART", "severity": severity,
           "summary": format!("record {id}"), "details": details, "occurredAt": "2026-05-01T10:00:00Z"})
}

async fn ingest_system(app: &TestApp, key: &str, records: Vec<Value>) -> Vec<Value> {
    let d = app
        .query(
            key,
            "mutation($r: [SystemRecordInput!]!) { ingestSystemRecords(records: $r) { ledgerEntries { entryId } } }",
            json!({"r": records}),
        )
        .await;
    entry_ids(&d["ingestSystemRecords"])
}

async fn live_cursor(app: &TestApp, key: &str) -> String {
    app.query(key, "{ liveCursor }", json!({})).await["liveCursor"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn ingest_key(app: &TestApp, tenant: &str) -> String {
    runledger::auth::create_key(
        app.db(),
        tenant,
        runledger::domain::Role::Ingest,
        None,
        None,
    )
    .await
    .unwrap()
    .0
}

async fn setup(backend: Backend, live: LiveSettings) -> (TestApp, Keys) {
    let app = TestApp::spawn_with(
        backend,
        HttpSettings {
            live,
            ..HttpSettings::default()
        },
    )
    .await;
    let keys = fixture::load(&app).await;
    (app, keys)
}

fn first_error(payload: &Value) -> (String, String) {
    let e = &payload["errors"][0];
    (
        e["extensions"]["code"].as_str().unwrap_or_default().into(),
        e["message"].as_str().unwrap_or_default().into(),
    )
}

// -- tests ----------------------------------------------------------------------------------------

async fn every_subscription_delivers_what_commits_in_order(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let after = live_cursor(&app, &keys.alpha_auditor).await;
    let mut ws = Ws::connect(&app.address, &keys.alpha_auditor).await;
    ws.subscribe(
        "runs",
        RUNS,
        json!({"f": {"executionStatus": ["FAILED"]}, "after": after}),
    )
    .await;
    ws.subscribe("steps", "subscription($after: String) { traceStepAdded(traceId: \"live-trace\", after: $after) { cursor step { stepIndex skillName } } }", json!({"after": after})).await;
    ws.subscribe("system", "subscription($after: String) { systemRecordAdded(filter: {severity: [ERROR], scope: TENANT}, after: $after) { cursor record { recordId severity } } }", json!({"after": after})).await;
    ws.subscribe("audit", "subscription($after: String) { auditEntryAppended(filter: {category: [ANCHOR]}, after: $after) { cursor entry { eventType entryId } } }", json!({"after": after})).await;

    let mut traced = run("lv-2", "anthropic", "FAILED");
    traced["traceId"] = json!("live-trace");
    traced["steps"] = json!([
        {"stepIndex": 0, "timestamp": "2026-05-01T10:00:01Z", "skillName": "plan", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"},
        {"stepIndex": 1, "timestamp": "2026-05-01T10:00:02Z", "skillName": "search", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"}
    ]);
    traced["governanceEvents"] = json!([
        {"eventId": "gov-lv", "timestamp": "2026-05-01T10:00:03Z", "eventType": "POLICY_EVALUATED", "policyId": "p", "ruleId": "r", "decision": "WARN", "entityType": "step", "entityId": "1", "reason": "why"}
    ]);
    let mut anchors = ingest_runs(
        &app,
        &app.address,
        &keys.alpha_ingest,
        vec![
            run("lv-1", "openai", "FAILED"),
            run("lv-ok", "openai", "SUCCEEDED"),
        ],
    )
    .await;
    anchors.extend(ingest_runs(&app, &app.address, &keys.alpha_ingest, vec![traced]).await);
    let d = app.query(&keys.alpha_ingest, "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { ledgerEntries { entryId } } }",
        json!({"s": [{"traceId": "live-trace", "stepIndex": 2, "timestamp": "2026-05-01T10:00:04Z", "skillName": "answer", "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"}]})).await;
    anchors.extend(entry_ids(&d["ingestTraceSteps"]));
    anchors.extend(
        ingest_system(
            &app,
            &keys.alpha_ingest,
            vec![
                system_record("lv-s1", "ERROR", json!({})),
                system_record("lv-s2", "INFO", json!({})),
                system_record("lv-s3", "ERROR", json!({"n": 3})),
            ],
        )
        .await,
    );
    assert_eq!(anchors.len(), 4, "one anchor per write");

    // Messages of the four subscriptions interleave; each one's own order is commit order.
    let mut got: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    let want = [("runs", 2), ("steps", 3), ("system", 2), ("audit", 4)];
    while want
        .iter()
        .any(|(id, n)| got.get(*id).map_or(0, Vec::len) < *n)
    {
        let m = ws.recv().await.expect("an event");
        assert_eq!(m["type"], json!("next"), "{m}");
        assert!(m["payload"].get("errors").is_none(), "{m}");
        let id = m["id"].as_str().unwrap().to_string();
        let data = m["payload"]["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone();
        assert!(
            data["cursor"].as_str().is_some_and(|c| !c.is_empty()),
            "{data}"
        );
        got.entry(id).or_default().push(data);
    }
    let field = |id: &str, path: [&str; 2]| -> Vec<Value> {
        got[id]
            .iter()
            .map(|e| e[path[0]][path[1]].clone())
            .collect()
    };
    assert_eq!(
        field("runs", ["run", "runId"]),
        vec![json!("lv-1"), json!("lv-2")]
    );
    assert_eq!(
        field("steps", ["step", "skillName"]),
        vec![json!("plan"), json!("search"), json!("answer")]
    );
    assert_eq!(
        field("system", ["record", "recordId"]),
        vec![json!("lv-s1"), json!("lv-s3")]
    );
    assert_eq!(field("audit", ["entry", "entryId"]), anchors);
    assert_eq!(
        got["audit"][0]["entry"]["eventType"],
        json!("EVIDENCE_BATCH_ANCHORED")
    );

    // An export's progress: every state change, then complete once it is done.
    let export = app
        .query(
            &keys.alpha_auditor,
            "mutation { requestExport(scope: {runId: \"lv-2\"}) { exportId } }",
            json!({}),
        )
        .await["requestExport"]["exportId"]
        .clone();
    ws.subscribe(
        "export",
        "subscription($id: ID!) { exportProgress(exportId: $id) { exportId status } }",
        json!({"id": export}),
    )
    .await;
    let mut last = Value::Null;
    loop {
        let m = ws.recv().await.expect("export progress");
        assert_eq!(m["id"], json!("export"), "{m}");
        if m["type"] == "complete" {
            break;
        }
        assert!(m["payload"].get("errors").is_none(), "{m}");
        last = m["payload"]["data"]["exportProgress"].clone();
        assert_eq!(last["exportId"], export);
    }
    assert_eq!(last["status"], json!("COMPLETED"));
}
both!(every_subscription_delivers_what_commits_in_order);

async fn server_sent_events_deliver_then_complete(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let after = live_cursor(&app, &keys.alpha_viewer).await;
    let mut runs = EventStream::open(
        &app,
        Some(&keys.alpha_viewer),
        RUNS,
        json!({"after": after}),
    )
    .await;
    ingest_run(&app, &keys.alpha_ingest, "sse-1", "SUCCEEDED").await;
    ingest_run(&app, &keys.alpha_ingest, "sse-2", "FAILED").await;
    for id in ["sse-1", "sse-2"] {
        let v = runs.next().await;
        assert_eq!(v["data"]["llmRunAdded"]["run"]["runId"], json!(id), "{v}");
    }
    drop(runs);

    // A refused operation: its errors as a `next` event, then `complete`.
    let mut refused = EventStream::open(
        &app,
        Some(&keys.alpha_viewer),
        "subscription { auditEntryAppended { cursor } }",
        json!({}),
    )
    .await;
    let (code, _) = first_error(&refused.next().await);
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(
        refused.next_event().await.map(|e| e.0),
        Some("complete".into())
    );
    assert_eq!(
        refused.next_event().await,
        None,
        "the stream ends after complete"
    );

    // A finite one ends with `complete`.
    let export = app
        .query(
            &keys.alpha_auditor,
            "mutation { requestExport(scope: {runId: \"sse-1\"}) { exportId } }",
            json!({}),
        )
        .await["requestExport"]["exportId"]
        .clone();
    let mut progress = EventStream::open(
        &app,
        Some(&keys.alpha_auditor),
        "subscription($id: ID!) { exportProgress(exportId: $id) { status } }",
        json!({"id": export}),
    )
    .await;
    let mut states = Vec::new();
    while let Some((kind, data)) = progress.next_event().await {
        if kind == "complete" {
            break;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        states.push(v["data"]["exportProgress"]["status"].clone());
    }
    assert_eq!(states.last(), Some(&json!("COMPLETED")), "{states:?}");

    // Without a key: refused before any stream starts.
    let (status, content_type, _) =
        EventStream::request(&app, &app.address, None, RUNS, json!({})).await;
    assert_eq!(status, 401);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}
both!(server_sent_events_deliver_then_complete);

async fn tenants_see_only_their_own(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let beta_ingest = ingest_key(&app, "beta").await;
    let alpha_after = live_cursor(&app, &keys.alpha_auditor).await;
    let beta_after = live_cursor(&app, &keys.beta_auditor).await;
    let mut alpha = Ws::connect(&app.address, &keys.alpha_auditor).await;
    let mut beta = Ws::connect(&app.address, &keys.beta_auditor).await;
    let sys = "subscription($after: String) { systemRecordAdded(filter: {component: \"live-test\"}, after: $after) { record { recordId } } }";
    let audit = "subscription($after: String) { auditEntryAppended(filter: {category: [ANCHOR]}, after: $after) { entry { entryId } } }";
    for (ws, after) in [(&mut alpha, &alpha_after), (&mut beta, &beta_after)] {
        ws.subscribe("runs", RUNS, json!({"after": after})).await;
        ws.subscribe("sys", sys, json!({"after": after})).await;
        ws.subscribe("audit", audit, json!({"after": after})).await;
    }
    // Alpha writes first: a leak would reach beta before beta's own.
    let alpha_anchor = ingest_run(&app, &keys.alpha_ingest, "iso-a", "SUCCEEDED").await;
    ingest_system(
        &app,
        &keys.alpha_ingest,
        vec![system_record("iso-sa", "INFO", json!({}))],
    )
    .await;
    let beta_anchor = ingest_run(&app, &beta_ingest, "iso-b", "SUCCEEDED").await;
    ingest_system(
        &app,
        &beta_ingest,
        vec![system_record("iso-sb", "INFO", json!({}))],
    )
    .await;
    for (ws, run_id, record, anchor) in [
        (&mut alpha, "iso-a", "iso-sa", alpha_anchor),
        (&mut beta, "iso-b", "iso-sb", beta_anchor),
    ] {
        let mut seen = std::collections::BTreeMap::new();
        while seen.len() < 3 {
            let m = ws.recv().await.unwrap();
            assert_eq!(m["type"], json!("next"), "{m}");
            let id = m["id"].as_str().unwrap().to_string();
            seen.entry(id).or_insert(m["payload"]["data"].clone());
        }
        assert_eq!(seen["runs"]["llmRunAdded"]["run"]["runId"], json!(run_id));
        assert_eq!(
            seen["sys"]["systemRecordAdded"]["record"]["recordId"],
            json!(record)
        );
        assert_eq!(
            seen["audit"]["auditEntryAppended"]["entry"]["entryId"],
            anchor[0]
        );
    }
}
both!(tenants_see_only_their_own);

async fn roles_keys_and_limits_are_enforced(backend: Backend) {
    let live = LiveSettings {
        max_per_key: 2,
        ..LiveSettings::default()
    };
    let (app, keys) = setup(backend, live).await;
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    // The audit tail needs read:audit, which a viewer lacks.
    ws.subscribe(
        "a",
        "subscription { auditEntryAppended { cursor } }",
        json!({}),
    )
    .await;
    let m = ws.next("a").await;
    assert_eq!(first_error(&m).0, "FORBIDDEN", "{m}");
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"id": "a", "type": "complete"})
    );
    // An invalid document is an `error` message: it never ran.
    ws.subscribe("v", "subscription { llmRunAdded { nope } }", json!({}))
        .await;
    let m = ws.recv().await.unwrap();
    assert_eq!(m["type"], json!("error"), "{m}");
    assert_eq!(m["id"], json!("v"), "{m}");
    assert!(
        m["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope"),
        "{m}"
    );
    // Bad arguments are named.
    ws.subscribe("b", "subscription { traceStepAdded { cursor } }", json!({}))
        .await;
    let m = ws.next("b").await;
    assert_eq!(first_error(&m).0, "BAD_USER_INPUT", "{m}");
    assert!(first_error(&m).1.contains("runId"), "{m}");
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"id": "b", "type": "complete"})
    );
    // Two open subscriptions per key, then TOO_MANY_SUBSCRIPTIONS.
    ws.subscribe("c", RUNS, json!({})).await;
    ws.subscribe("d", RUNS, json!({})).await;
    // The server answers a connection's messages in order: after the pong, both are open.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await.unwrap(), json!({"type": "pong"}));
    let mut other = Ws::connect(&app.address, &keys.alpha_viewer).await;
    other.subscribe("e", RUNS, json!({})).await;
    let m = other.recv().await.unwrap();
    assert_eq!(m["type"], json!("error"), "{m}");
    assert_eq!(
        m["payload"][0]["extensions"]["code"],
        json!("TOO_MANY_SUBSCRIPTIONS"),
        "{m}"
    );
    // Another key is not affected.
    let mut auditor = Ws::connect(&app.address, &keys.alpha_auditor).await;
    auditor.subscribe("g", RUNS, json!({})).await;
    // Ending one frees its place.
    ws.send(json!({"id": "c", "type": "complete"})).await;
    // The server may not have seen the `complete` yet when the next one arrives: each try
    // either is refused or receives the run written after it.
    let mut attempt = 0;
    loop {
        let cursor = live_cursor(&app, &keys.alpha_viewer).await;
        let id = format!("h{attempt}");
        other.subscribe(&id, RUNS, json!({"after": cursor})).await;
        let run_id = format!("lim-{attempt}");
        ingest_run(&app, &keys.alpha_ingest, &run_id, "SUCCEEDED").await;
        let m = loop {
            let m = other.recv().await.unwrap();
            if m["id"] == json!(id) {
                break m;
            }
        };
        if m["type"] == "error" {
            assert_eq!(
                m["payload"][0]["extensions"]["code"],
                json!("TOO_MANY_SUBSCRIPTIONS"),
                "{m}"
            );
            attempt += 1;
            assert!(attempt < 50, "ending a subscription never freed its place");
            continue;
        }
        assert_eq!(
            m["payload"]["data"]["llmRunAdded"]["run"]["runId"],
            json!(run_id),
            "{m}"
        );
        break;
    }
}
both!(roles_keys_and_limits_are_enforced);

async fn the_protocol_is_followed(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    // No subprotocol: 4406.
    let mut ws = Ws::open(&app.address, None).await;
    assert_eq!(ws.close_code().await.0, 4406);
    // No key anywhere: 4403; a wrong key: 4403.
    let mut ws = Ws::open(&app.address, Some("graphql-transport-ws")).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.close_code().await.0, 4403);
    let mut ws = Ws::open(&app.address, Some("graphql-transport-ws")).await;
    ws.send(json!({"type": "connection_init", "payload": {"Authorization": "Bearer rk_wrong"}}))
        .await;
    assert_eq!(ws.close_code().await.0, 4403);
    // Subscribe before the acknowledgement: 4401.
    let mut ws = Ws::open(&app.address, Some("graphql-transport-ws")).await;
    ws.subscribe("x", RUNS, json!({})).await;
    assert_eq!(ws.close_code().await.0, 4401);
    // A second init: 4429. A duplicate id: 4409. Not JSON: 4400.
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.close_code().await.0, 4429);
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    ws.subscribe("x", RUNS, json!({})).await;
    ws.subscribe("x", RUNS, json!({})).await;
    assert_eq!(ws.close_code().await.0, 4409);
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    ws.socket.send(Message::text("not json")).await.unwrap();
    assert_eq!(ws.close_code().await.0, 4400);
    // ping → pong; a query over the socket yields one result, then complete.
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await.unwrap(), json!({"type": "pong"}));
    ws.subscribe("q", "{ llmRun(runId: \"r1\") { runId } }", json!({}))
        .await;
    assert_eq!(ws.event("q").await["llmRun"]["runId"], json!("r1"));
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"id": "q", "type": "complete"})
    );
    // The key in the upgrade request's header serves when the payload has none.
    let mut request = ws_url(&app.address).into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", keys.alpha_viewer).parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut ws = Ws { socket };
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.recv().await.unwrap(), json!({"type": "connection_ack"}));
    // Subscriptions are not served as plain requests: the error names the transports.
    let (code, message) = app
        .query_error(Some(&keys.alpha_viewer), RUNS, json!({}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.contains("graphql-transport-ws") && message.contains("text/event-stream"),
        "{message}"
    );
}
both!(the_protocol_is_followed);

async fn a_revoked_key_loses_its_subscriptions(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    let after = live_cursor(&app, &keys.alpha_viewer).await;
    ws.subscribe("runs", RUNS, json!({"after": after})).await;
    ingest_run(&app, &keys.alpha_ingest, "rv-1", "SUCCEEDED").await;
    let first = ws.event("runs").await;
    let cursor = first["llmRunAdded"]["cursor"].clone();
    let mut sse = EventStream::open(
        &app,
        Some(&keys.alpha_viewer),
        RUNS,
        json!({"after": after}),
    )
    .await;
    assert_eq!(
        sse.next().await["data"]["llmRunAdded"]["run"]["runId"],
        json!("rv-1")
    );
    runledger::auth::revoke_key(app.db(), "alpha", fixture::key_id(&keys.alpha_viewer), None)
        .await
        .unwrap();
    let end = ws.next("runs").await;
    let (code, _) = first_error(&end);
    assert_eq!(code, "UNAUTHENTICATED", "{end}");
    assert_eq!(end["errors"][0]["extensions"]["resumeAfter"], cursor);
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"id": "runs", "type": "complete"})
    );
    assert_eq!(first_error(&sse.next().await).0, "UNAUTHENTICATED");
    assert_eq!(sse.next_event().await.map(|e| e.0), Some("complete".into()));
    // And no new subscription starts with it.
    ws.subscribe("again", RUNS, json!({})).await;
    let m = ws.recv().await.unwrap();
    assert_eq!(m["type"], json!("error"), "{m}");
    assert_eq!(
        m["payload"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{m}"
    );
}
both!(a_revoked_key_loses_its_subscriptions);

/// A small deterministic generator (SplitMix64), so a failure can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

async fn resuming_from_cursors_misses_nothing(backend: Backend) {
    const RUN_COUNT: usize = 400;
    const DISCONNECTS: usize = 100;
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let start = live_cursor(&app, &keys.alpha_viewer).await;
    // Ingest runs one commit at a time while the client comes and goes.
    let writer = {
        let (address, client, key) = (
            app.address.clone(),
            app.client.clone(),
            keys.alpha_ingest.clone(),
        );
        tokio::spawn(async move {
            let mut written = Vec::new();
            let mut random = Random(7);
            let mut n = 0;
            while n < RUN_COUNT {
                let batch = (1 + random.below(3) as usize).min(RUN_COUNT - n);
                let runs: Vec<Value> = (n..n + batch)
                    .map(|i| run(&format!("rz-{i:04}"), "openai", "SUCCEEDED"))
                    .collect();
                let body: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&key)
                    .json(&json!({"query": "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }", "variables": {"runs": runs}}))
                    .send().await.unwrap().json().await.unwrap();
                assert!(body.get("errors").is_none(), "{body}");
                written.extend((n..n + batch).map(|i| format!("rz-{i:04}")));
                n += batch;
            }
            written
        })
    };
    let mut random = Random(11);
    let mut received: Vec<String> = Vec::new();
    let mut cursor = start.clone();
    let mut disconnects = 0;
    while received.len() < RUN_COUNT {
        let over_sse = random.below(4) == 0;
        let take = if disconnects < DISCONNECTS {
            random.below(8)
        } else {
            u64::MAX
        };
        let mut got = 0;
        if over_sse {
            let mut sse = EventStream::open(
                &app,
                Some(&keys.alpha_viewer),
                RUNS,
                json!({"after": cursor}),
            )
            .await;
            while got < take && received.len() < RUN_COUNT {
                let e = sse.next().await;
                let e = &e["data"]["llmRunAdded"];
                received.push(e["run"]["runId"].as_str().unwrap().into());
                cursor = e["cursor"].as_str().unwrap().into();
                got += 1;
            }
        } else {
            let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
            ws.subscribe("z", RUNS, json!({"after": cursor})).await;
            while got < take && received.len() < RUN_COUNT {
                let e = ws.event("z").await;
                let e = &e["llmRunAdded"];
                received.push(e["run"]["runId"].as_str().unwrap().into());
                cursor = e["cursor"].as_str().unwrap().into();
                got += 1;
            }
            // Some leave politely, most just drop the connection.
            if random.below(3) == 0 {
                ws.send(json!({"id": "z", "type": "complete"})).await;
            }
        }
        disconnects += 1;
    }
    assert!(disconnects >= DISCONNECTS, "{disconnects} disconnects");
    let written = writer.await.unwrap();
    assert_eq!(
        received, written,
        "the received sequence is the written one: nothing lost, nothing twice"
    );
    // And it is the list's, oldest first.
    let mut listed: Vec<String> = Vec::new();
    let mut page_after = Value::Null;
    loop {
        let d = app
            .query(&keys.alpha_viewer, "query($after: String) { llmRuns(first: 100, after: $after, filter: {provider: \"openai\", model: \"gpt-4o\"}, orderBy: {field: RECORDED_AT, direction: ASC}) { nodes { runId } pageInfo { hasNextPage endCursor } } }", json!({"after": page_after}))
            .await;
        let page = &d["llmRuns"];
        listed.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["runId"].as_str().unwrap().to_string())
                .filter(|id| id.starts_with("rz-")),
        );
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        page_after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(received, listed);
}
both!(resuming_from_cursors_misses_nothing);

async fn a_write_on_one_instance_reaches_subscribers_of_another(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let other = app.another_instance(HttpSettings::default()).await;
    let mut on_b = Ws::connect(&other, &keys.alpha_viewer).await;
    let mut on_a = Ws::connect(&app.address, &keys.alpha_viewer).await;
    let after = live_cursor(&app, &keys.alpha_viewer).await;
    on_b.subscribe("runs", RUNS, json!({"after": after})).await;
    on_a.subscribe("runs", RUNS, json!({"after": after})).await;
    for (i, address) in [&app.address, &other, &app.address].into_iter().enumerate() {
        ingest_runs(
            &app,
            address,
            &keys.alpha_ingest,
            vec![run(&format!("x-{i}"), "openai", "SUCCEEDED")],
        )
        .await;
    }
    for ws in [&mut on_b, &mut on_a] {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(ws.event("runs").await["llmRunAdded"]["run"]["runId"].clone());
        }
        assert_eq!(got, vec![json!("x-0"), json!("x-1"), json!("x-2")]);
    }
}
both!(a_write_on_one_instance_reaches_subscribers_of_another);

async fn a_slow_consumer_is_cut_off_while_others_keep_receiving(backend: Backend) {
    let live = LiveSettings {
        queue: 4,
        stall: Duration::from_secs(2),
        ..LiveSettings::default()
    };
    let (app, keys) = setup(backend, live).await;
    let after = live_cursor(&app, &keys.alpha_auditor).await;
    let query = "subscription($after: String) { systemRecordAdded(filter: {component: \"live-test\"}, after: $after) { cursor record { recordId details } } }";
    let mut slow = Ws::open_small(&app.address).await;
    slow.init(&keys.alpha_viewer).await;
    slow.subscribe("slow", query, json!({"after": after})).await;
    let mut fast = Ws::connect(&app.address, &keys.alpha_viewer).await;
    fast.subscribe("fast", query, json!({"after": after})).await;
    // The ledger's own tail says when the slow one ended.
    let mut watch = Ws::connect(&app.address, &keys.alpha_auditor).await;
    watch.subscribe("ended", "subscription($after: String) { auditEntryAppended(filter: {eventType: \"SUBSCRIPTION_ENDED\"}, after: $after) { entry { afterState } } }", json!({"after": after})).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (address, client, key, stop) = (
            app.address.clone(),
            app.client.clone(),
            keys.alpha_ingest.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut written = Vec::new();
            let blob = "x".repeat(16_000);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                assert!(written.len() < 5_000, "the slow consumer was never cut off");
                let ids: Vec<String> = (0..4)
                    .map(|i| format!("big-{:05}", written.len() + i))
                    .collect();
                let records: Vec<Value> = ids
                    .iter()
                    .map(|id| system_record(id, "INFO", json!({"blob": blob})))
                    .collect();
                let body: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&key)
                    .json(&json!({"query": "mutation($r: [SystemRecordInput!]!) { ingestSystemRecords(records: $r) { storedCount } }", "variables": {"r": records}}))
                    .send().await.unwrap().json().await.unwrap();
                assert!(body.get("errors").is_none(), "{body}");
                written.extend(ids);
            }
            written
        })
    };
    // The fast one reads all along.
    let mut fast_got: Vec<String> = Vec::new();
    let ended = loop {
        tokio::select! {
            m = watch.recv() => {
                let m = m.unwrap();
                let state = m["payload"]["data"]["auditEntryAppended"]["entry"]["afterState"].clone();
                if state["reason"] == json!("slow") { break state; }
            }
            e = fast.event("fast") => {
                fast_got.push(e["systemRecordAdded"]["record"]["recordId"].as_str().unwrap().into());
            }
        }
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert_eq!(ended["field"], json!("systemRecordAdded"));
    while fast_got.len() < written.len() {
        let e = fast.event("fast").await;
        fast_got.push(
            e["systemRecordAdded"]["record"]["recordId"]
                .as_str()
                .unwrap()
                .into(),
        );
    }
    assert_eq!(
        fast_got, written,
        "the fast subscriber received everything, in order"
    );
    // The slow one gets what was queued for it, then the error with its resume cursor.
    let mut slow_got: Vec<String> = Vec::new();
    let resume = loop {
        let payload = slow.next("slow").await;
        if payload.get("errors").is_some() {
            let e = &payload["errors"][0];
            assert_eq!(e["extensions"]["code"], json!("SLOW_CONSUMER"), "{payload}");
            break e["extensions"]["resumeAfter"].as_str().unwrap().to_string();
        }
        slow_got.push(
            payload["data"]["systemRecordAdded"]["record"]["recordId"]
                .as_str()
                .unwrap()
                .into(),
        );
    };
    assert_eq!(
        slow.recv().await.unwrap(),
        json!({"id": "slow", "type": "complete"})
    );
    assert_eq!(
        ended["delivered"],
        json!(slow_got.len()),
        "the ledger counts what was queued for it"
    );
    assert!(slow_got.len() < written.len());
    // Resuming from its cursor gets exactly the rest.
    let mut again = Ws::connect(&app.address, &keys.alpha_viewer).await;
    again
        .subscribe("rest", query, json!({"after": resume}))
        .await;
    while slow_got.len() < written.len() {
        let e = again.event("rest").await;
        slow_got.push(
            e["systemRecordAdded"]["record"]["recordId"]
                .as_str()
                .unwrap()
                .into(),
        );
    }
    assert_eq!(slow_got, written);
}
both!(a_slow_consumer_is_cut_off_while_others_keep_receiving);

async fn deliveries_are_recorded_in_the_ledger(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let after = live_cursor(&app, &keys.alpha_auditor).await;
    let mut watch = Ws::connect(&app.address, &keys.alpha_auditor).await;
    watch.subscribe("ended", "subscription($after: String) { auditEntryAppended(filter: {eventType: \"SUBSCRIPTION_ENDED\"}, after: $after) { entry { entityId afterState } } }", json!({"after": after})).await;
    let mut ws = Ws::connect(&app.address, &keys.alpha_viewer).await;
    ws.send(json!({"id": "mine", "type": "subscribe", "payload": {"query": RUNS, "variables": {"after": after, "f": {"provider": "rec"}}, "operationName": null}})).await;
    for i in 0..3 {
        ingest_runs(
            &app,
            &app.address,
            &keys.alpha_ingest,
            vec![run(&format!("rec-{i}"), "rec", "SUCCEEDED")],
        )
        .await;
        assert_eq!(
            ws.event("mine").await["llmRunAdded"]["run"]["runId"],
            json!(format!("rec-{i}"))
        );
    }
    ws.send(json!({"id": "mine", "type": "complete"})).await;
    let ended = watch.event("ended").await["auditEntryAppended"]["entry"].clone();
    let subscription = ended["entityId"].as_str().unwrap().to_string();
    assert_eq!(ended["afterState"]["reason"], json!("client"));
    assert_eq!(ended["afterState"]["delivered"], json!(3));
    assert_eq!(ended["afterState"]["field"], json!("llmRunAdded"));

    let d = app
        .query(&keys.alpha_auditor, "{ audit { access(first: 100) { nodes { eventType entityType entityId actorId afterState } } } }", json!({}))
        .await;
    let nodes = d["audit"]["access"]["nodes"].as_array().unwrap().clone();
    let viewer = format!("key:{}", fixture::key_id(&keys.alpha_viewer));
    let of_it: Vec<&Value> = nodes
        .iter()
        .filter(|n| {
            n["entityId"] == json!(subscription)
                || n["afterState"]["filters"]["subscription"] == json!(subscription)
        })
        .collect();
    let kinds: std::collections::BTreeSet<&str> = of_it
        .iter()
        .map(|n| n["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "EVIDENCE_READ",
            "SUBSCRIPTION_ENDED",
            "SUBSCRIPTION_STARTED"
        ]
        .into_iter()
        .collect()
    );
    let mut delivered: Vec<String> = of_it
        .iter()
        .filter(|n| n["eventType"] == json!("EVIDENCE_READ"))
        .flat_map(|n| {
            n["afterState"]["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
        })
        .collect();
    delivered.sort();
    assert_eq!(delivered, vec!["rec-0", "rec-1", "rec-2"]);
    // Grouped: the first delivery is committed with the start, before it leaves; the rest of
    // an interval's deliveries share one entry.
    let reads = of_it
        .iter()
        .filter(|n| n["eventType"] == json!("EVIDENCE_READ"))
        .count();
    assert!((1..3).contains(&reads), "{reads} entries for 3 deliveries");
    assert!(
        of_it
            .iter()
            .all(|n| n["actorId"] == json!(viewer) || n["eventType"] != json!("EVIDENCE_READ")),
        "{of_it:?}"
    );
}
both!(deliveries_are_recorded_in_the_ledger);

async fn a_stopping_server_closes_with_going_away(backend: Backend) {
    let (app, keys) = setup(backend, LiveSettings::default()).await;
    let (address, stop, server) = app.stoppable_server(HttpSettings::default()).await;
    let after = live_cursor(&app, &keys.alpha_viewer).await;
    let mut ws = Ws::connect(&address, &keys.alpha_viewer).await;
    ws.subscribe("runs", RUNS, json!({"after": after})).await;
    ingest_run(&app, &keys.alpha_ingest, "bye-1", "SUCCEEDED").await;
    let cursor = ws.event("runs").await["llmRunAdded"]["cursor"].clone();
    let (_, _, mut sse) = EventStream::request(
        &app,
        &address,
        Some(&keys.alpha_viewer),
        RUNS,
        json!({"after": after}),
    )
    .await;
    assert_eq!(
        sse.next().await["data"]["llmRunAdded"]["run"]["runId"],
        json!("bye-1")
    );
    stop.send(()).unwrap();
    let end = ws.next("runs").await;
    assert_eq!(first_error(&end).0, "SHUTTING_DOWN", "{end}");
    assert_eq!(end["errors"][0]["extensions"]["resumeAfter"], cursor);
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"id": "runs", "type": "complete"})
    );
    assert_eq!(ws.close_code().await.0, 1001);
    let end = sse.next().await;
    assert_eq!(first_error(&end).0, "SHUTTING_DOWN", "{end}");
    assert_eq!(sse.next_event().await.map(|e| e.0), Some("complete".into()));
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the server stops")
        .unwrap();
}
both!(a_stopping_server_closes_with_going_away);
