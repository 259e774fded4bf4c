//! Requests built to exhaust the server: fragment bombs, huge and deeply nested documents,
//! NUL characters in strings, connections that never finish their headers, anonymous floods.
//! Each is answered at once with a clear error (or the connection is cut) while other clients
//! keep being served.

use std::io::{Read, Write};
use std::time::Duration;

use runledger::http::HttpSettings;
use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

/// Runs `make`'s requests on a thread and runtime of their own and waits for them at most
/// `secs` seconds: a server whose workers are stuck cannot also stall the wait. Past the
/// deadline the whole test binary exits with a failure: the test's runtime could not be shut
/// down anyway while its workers spin.
fn within<T, F>(secs: u64, what: &str, make: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(make()));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(value) => value,
        Err(_) => {
            eprintln!("FAILED: {what}: no answer within {secs} s (the server is stuck)");
            std::process::exit(101);
        }
    }
}

/// POSTs a query (no key) from a fresh client; returns the status and body.
async fn post_anonymous(address: String, query: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(json!({ "query": query }).to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code_and_message(body: &Value) -> (String, String) {
    let e = &body["errors"][0];
    (
        e["extensions"]["code"].as_str().unwrap_or("").to_string(),
        e["message"].as_str().unwrap_or("").to_string(),
    )
}

/// The fragment chain `F0 → F1 ×2 → … → Fn ×2`: 2^n selections once expanded.
fn doubling_chain(n: usize) -> String {
    let mut doc = String::from("query { ...F0 }");
    for i in 0..n {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{j} ...F{j} }}",
            j = i + 1
        ));
    }
    doc.push_str(&format!(" fragment F{n} on Query {{ viewer {{ role }} }}"));
    doc
}

async fn fragment_bombs_are_refused_while_others_are_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let address = app.address.clone();
    let viewer = keys.alpha_viewer.clone();

    let results = within(
        60,
        "fragment bombs and a concurrent client",
        move || async move {
            let cyclic = "query { ...A } fragment A on Query { ...B ...B } \
                      fragment B on Query { ...A ...A }"
                .to_string();
            // 1 MB of fragments and 10,000 levels of nesting: refused before they are parsed.
            let mut huge = String::from("query { ...G0 }");
            let mut i = 0;
            while huge.len() < 1 << 20 {
                huge.push_str(&format!(" fragment G{i} on Query {{ viewer {{ role }} }}"));
                i += 1;
            }
            let deep = format!("{{{}}}", "a{".repeat(10_000) + &"}".repeat(10_000));
            let bombs = [
                cyclic.clone(),
                cyclic,
                doubling_chain(40),
                doubling_chain(60),
                huge,
                deep,
            ];
            let sent: Vec<_> = bombs
                .into_iter()
                .map(|q| tokio::spawn(post_anonymous(address.clone(), q)))
                .collect();
            // Meanwhile another client is served: health checks and a query with a key.
            let client = reqwest::Client::new();
            for _ in 0..5 {
                let health = client
                    .get(format!("{address}/healthz"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(health.status(), 200);
            }
            let normal = client
                .post(format!("{address}/graphql"))
                .bearer_auth(&viewer)
                .json(&json!({"query": "{ viewer { role } }"}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            let mut answers = Vec::new();
            for task in sent {
                answers.push(task.await.unwrap());
            }
            (answers, normal)
        },
    );
    let (answers, normal) = results;
    assert_eq!(normal["data"]["viewer"]["role"], "VIEWER", "{normal}");
    let expected = [
        ("BAD_USER_INPUT", "within itself"),
        ("BAD_USER_INPUT", "within itself"),
        ("QUERY_TOO_COMPLEX", "once its fragments are expanded"),
        ("QUERY_TOO_COMPLEX", "once its fragments are expanded"),
        ("QUERY_TOO_COMPLEX", "bytes are accepted"),
        ("QUERY_TOO_COMPLEX", "levels deep"),
        ("BAD_USER_INPUT", "Unknown fragment \"F30\""),
        ("QUERY_TOO_COMPLEX", "levels deep"),
    ];
    for ((status, body), (code, phrase)) in answers.iter().zip(expected) {
        // A request error: 400 under graphql-response+json, and no `data` key.
        assert_eq!(*status, 400, "{body}");
        assert!(body.get("data").is_none(), "{body}");
        let (got_code, message) = code_and_message(body);
        assert_eq!(got_code, code, "{body}");
        assert!(message.contains(phrase), "{phrase:?} not in {message:?}");
    }
    // The cyclic bomb is named as the specification's validation names it.
    let (_, message) = code_and_message(&answers[0].1);
    assert!(
        message.starts_with("Cannot spread fragment \"A\" within itself via \"B\"")
            || message.starts_with("Cannot spread fragment \"B\" within itself via \"A\""),
        "{message}"
    );
    // The same bombs over GET are refused the same way.
    let get = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[(
            "query",
            "query { ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }",
        )])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(code_and_message(&get).0, "BAD_USER_INPUT", "{get}");
    // Honest fragments still run.
    let data = app
        .query(
            &keys.alpha_viewer,
            "query { ...V ...V } fragment V on Query { viewer { role } }",
            json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["role"], "VIEWER");
}
both!(fragment_bombs_are_refused_while_others_are_served);

/// Every field of the query and mutation roots that takes a string-like argument (`String`,
/// `ID`, or a list or non-null of them), from introspection.
async fn string_arguments(app: &TestApp) -> Vec<(String, String, String)> {
    let (_, body) = app
        .post(
            None,
            &json!({"query": "{ __schema { queryType { name } mutationType { name } types { name fields { name args { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }"}),
        )
        .await;
    let schema = &body["data"]["__schema"];
    let roots = [
        ("query", schema["queryType"]["name"].as_str().unwrap()),
        ("mutation", schema["mutationType"]["name"].as_str().unwrap()),
    ];
    let mut out = Vec::new();
    for (operation, root) in roots {
        let ty = schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == root)
            .unwrap();
        for field in ty["fields"].as_array().unwrap() {
            for arg in field["args"].as_array().unwrap() {
                let mut t = &arg["type"];
                while t["kind"] == "NON_NULL" || t["kind"] == "LIST" {
                    t = &t["ofType"];
                }
                if t["name"] == "String" || t["name"] == "ID" {
                    out.push((
                        operation.to_string(),
                        field["name"].as_str().unwrap().to_string(),
                        arg["name"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

async fn nul_characters_are_bad_user_input_everywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let arguments = string_arguments(&app).await;
    for name in ["llmRun", "auditEntry", "node", "rotateApiKey"] {
        assert!(
            arguments.iter().any(|(_, f, _)| f == name),
            "{name} takes a string argument: {arguments:?}"
        );
    }
    let key = &keys.alpha_auditor;
    for (operation, field, arg) in &arguments {
        // Inline, as a JSON escape inside the query text.
        let inline = format!("{operation} {{ {field}({arg}: \"a\\u0000b\") {{ __typename }} }}");
        let (code, message) = app.query_error(Some(key), &inline, json!({})).await;
        assert_eq!(code, "BAD_USER_INPUT", "{inline}: {message}");
        assert!(
            message.contains(&format!("argument `{arg}` of field `{field}`"))
                && message.contains("NUL"),
            "{inline}: {message}"
        );
        // As a variable.
        let with_variable =
            format!("{operation} Q($v: String) {{ {field}({arg}: $v) {{ __typename }} }}");
        let (code, message) = app
            .query_error(Some(key), &with_variable, json!({"v": "x\u{0}"}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{with_variable}: {message}");
        assert!(message.contains("variable `$v`"), "{message}");
    }
    // Inside input objects and lists, in fragments, and without a key.
    let cases = [
        (
            Some(key.as_str()),
            "{ llmRuns(filter: {model: \"gpt\\u0000\"}) { totalCount } }",
            json!({}),
        ),
        (
            Some(key.as_str()),
            "query Q($f: LlmRunFilter) { llmRuns(filter: $f) { totalCount } }",
            json!({"f": {"agentId": "bot\u{0}"}}),
        ),
        (
            Some(key.as_str()),
            "{ ...F } fragment F on Query { auditEntry(id: \"\\u0000\") { id } }",
            json!({}),
        ),
        (None, "{ node(id: \"bm9\\u0000\") { id } }", json!({})),
    ];
    for (key, query, variables) in cases {
        let (code, message) = app.query_error(key, query, variables).await;
        assert_eq!(code, "BAD_USER_INPUT", "{query}: {message}");
        assert!(message.contains("NUL"), "{query}: {message}");
    }
    // Node ids and cursors are base64: a NUL inside them is refused when they are decoded.
    let encode = |text: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    };
    let node_id = encode("[\"SystemRecord\",\"a\\u0000b\"]");
    let cursor = encode("v1|runs.started|t0|a\u{0}b");
    for (query, variables) in [
        (
            "query Q($id: ID!) { node(id: $id) { id } }",
            json!({"id": node_id}),
        ),
        (
            "query Q($c: String) { llmRuns(first: 1, after: $c) { totalCount } }",
            json!({"c": cursor}),
        ),
    ] {
        let (code, message) = app.query_error(Some(key), query, variables).await;
        assert_eq!(code, "BAD_USER_INPUT", "{query}: {message}");
    }
    // An escaped backslash followed by `u0000` is six ordinary characters.
    let data = app
        .query(
            key,
            "{ llmRuns(first: 1, filter: {model: \"a\\\\u0000\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["llmRuns"]["totalCount"], 0);
}
both!(nul_characters_are_bad_user_input_everywhere);

async fn slow_headers_are_cut_off(backend: Backend) {
    let settings = HttpSettings {
        header_read_timeout: Duration::from_secs(1),
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let addr = app.address.trim_start_matches("http://").to_string();
    let outcome = within(
        30,
        "a connection with unfinished headers",
        move || async move {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            // A request head that never ends, trickled.
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream.write_all(b"X-Slow: 1\r\n").unwrap();
            let mut buf = [0u8; 1024];
            let mut received = Vec::new();
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return Ok(received),
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        return Ok(received);
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        },
    );
    let received = outcome.unwrap_or_else(|e| panic!("the server kept the connection: {e}"));
    assert!(
        !String::from_utf8_lossy(&received).contains("200 OK"),
        "an unfinished request must not be answered"
    );
    // A complete request on a new connection is served.
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
both!(slow_headers_are_cut_off);

async fn requests_without_a_key_are_rate_limited_per_address(backend: Backend) {
    let settings = HttpSettings {
        rate_limit: Some((0.5, 3)),
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let keys = fixture::load(&app).await;
    let introspection = json!({"query": "{ __schema { queryType { name } } }"});
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..5 {
        let resp = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .body(introspection.to_string())
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let retry = resp.headers()["retry-after"].to_str().unwrap().to_string();
            refused = Some((retry, resp.json::<Value>().await.unwrap()));
        }
    }
    // A burst of 3, then refused (one token comes back every 2 s).
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert_eq!(statuses[3], 429, "{statuses:?}");
    let (retry, body) = refused.unwrap();
    assert!(retry.parse::<u64>().unwrap() >= 1, "{retry}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // A key has a bucket of its own, whatever its address did.
    let data = app
        .query(&keys.alpha_viewer, "{ viewer { role } }", json!({}))
        .await;
    assert_eq!(data["viewer"]["role"], "VIEWER");
}
both!(requests_without_a_key_are_rate_limited_per_address);
