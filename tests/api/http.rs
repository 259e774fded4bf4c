//! GraphQL over HTTP: content negotiation, status codes, GET rules, batches, authentication,
//! errors with codes for bad input, limits, health, GraphiQL.

use runledger::http::HttpSettings;
use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

async fn raw(
    app: &TestApp,
    req: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, String) {
    let _ = app;
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}

fn content_type(h: &reqwest::header::HeaderMap) -> String {
    h.get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn negotiation_status_codes_and_methods(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let url = format!("{}/graphql", app.address);
    let post = |accept: Option<&str>, body: &str| {
        let mut r = app
            .client
            .post(&url)
            .bearer_auth(&keys.alpha_viewer)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r
    };
    let ok = r#"{"query":"{ viewer { tenantId } }"}"#;

    // Without Accept: application/json. With graphql-response+json: that type.
    let (s, h, b) = raw(&app, post(None, ok)).await;
    assert_eq!(
        (s, content_type(&h).starts_with("application/json")),
        (200, true),
        "{b}"
    );
    let (s, h, _) = raw(&app, post(Some("application/graphql-response+json"), ok)).await;
    assert_eq!(s, 200);
    assert!(content_type(&h).starts_with("application/graphql-response+json"));
    let (s, h, _) = raw(
        &app,
        post(
            Some("application/graphql-response+json;q=0.2, application/json"),
            ok,
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(content_type(&h).starts_with("application/json"));
    let (s, _, _) = raw(&app, post(Some("text/html"), ok)).await;
    assert_eq!(s, 406);

    // A parse failure is a request error: 400 and no `data` under graphql-response+json,
    // 200 and still no `data` under application/json.
    let bad = r#"{"query":"{ llmRuns( "}"#;
    let (s, _, b) = raw(&app, post(Some("application/graphql-response+json"), bad)).await;
    let body: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(s, 400);
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("BAD_USER_INPUT")
    );
    let (s, _, b) = raw(&app, post(Some("application/json"), bad)).await;
    let body: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(s, 200);
    assert!(body.get("data").is_none(), "{body}");
    // A validation failure likewise.
    let (s, _, b) = raw(
        &app,
        post(
            Some("application/graphql-response+json"),
            r#"{"query":"{ noSuchField }"}"#,
        ),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        serde_json::from_str::<Value>(&b)
            .unwrap()
            .get("data")
            .is_none()
    );
    // A body that is not JSON: 400 under both.
    let (s, _, _) = raw(&app, post(Some("application/json"), "not json")).await;
    assert_eq!(s, 400);
    // Wrong content type.
    let (s, _, _) = raw(
        &app,
        app.client
            .post(&url)
            .header("content-type", "text/plain")
            .body(ok),
    )
    .await;
    assert_eq!(s, 415);

    // GET runs queries and refuses mutations with 405 and Allow.
    let (s, _, b) = raw(
        &app,
        app.client
            .get(&url)
            .bearer_auth(&keys.alpha_viewer)
            .query(&[
                (
                    "query",
                    "query($n: Int) { llmRuns(first: $n) { nodes { runId } } }",
                ),
                ("variables", r#"{"n": 2}"#),
            ]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let body: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        body["data"]["llmRuns"]["nodes"].as_array().unwrap().len(),
        2
    );
    let (s, h, _) = raw(
        &app,
        app.client.get(&url).query(&[("query", "mutation { x }")]),
    )
    .await;
    assert_eq!(s, 405);
    assert_eq!(h.get("allow").unwrap(), "POST");
    let (s, h, _) = raw(&app, app.client.put(&url).body(ok)).await;
    assert_eq!(s, 405);
    assert_eq!(h.get("allow").unwrap(), "GET, POST");

    // Batches: answered in order, bounded.
    let batch =
        json!([{"query": "{ viewer { role } }"}, {"query": "{ llmRun(runId: \"r1\") { runId } }"}]);
    let (s, body) = app.post(Some(&keys.alpha_viewer), &batch).await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!([{"data": {"viewer": {"role": "VIEWER"}}}, {"data": {"llmRun": {"runId": "r1"}}}])
    );
    let too_many: Vec<Value> = (0..11)
        .map(|_| json!({"query": "{ viewer { role } }"}))
        .collect();
    let (s, body) = app
        .post(Some(&keys.alpha_viewer), &Value::Array(too_many))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("BAD_USER_INPUT")
    );

    // Health.
    for path in ["healthz", "readyz"] {
        let (s, _, _) = raw(&app, app.client.get(format!("{}/{path}", app.address))).await;
        assert_eq!(s, 200, "{path}");
    }
    // GraphiQL is served with its assets, no CDN.
    let (s, h, page) = raw(&app, app.client.get(format!("{}/graphiql", app.address))).await;
    assert_eq!(s, 200);
    assert!(content_type(&h).starts_with("text/html"));
    assert!(
        !page.contains("https://"),
        "GraphiQL must not load from the network"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(page.contains(asset), "{asset} referenced");
        let (s, _, _) = raw(
            &app,
            app.client
                .get(format!("{}/graphiql/assets/{asset}", app.address)),
        )
        .await;
        assert_eq!(s, 200, "{asset}");
    }
}
both!(negotiation_status_codes_and_methods);

async fn authentication_and_roles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let q = json!({"query": "{ llmRuns { totalCount } }"});

    // No key: evidence fields answer UNAUTHENTICATED.
    let (s, body) = app.post(None, &q).await;
    assert_eq!(s, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    assert!(body["data"].is_null());
    // Introspection needs no key (GraphiQL loads the schema before one is entered).
    let (s, body) = app
        .post(
            None,
            &json!({"query": "{ __schema { queryType { name } } }"}),
        )
        .await;
    assert_eq!(
        (s, body["data"]["__schema"]["queryType"]["name"].clone()),
        (200, json!("Query"))
    );

    // A wrong or malformed key: 401 with WWW-Authenticate.
    let wrong = format!("rl_{}_{}", "0".repeat(12), "0".repeat(64));
    for key in [wrong.as_str(), "garbage"] {
        let resp = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(q.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        assert!(resp.headers().get("www-authenticate").is_some());
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            json!("UNAUTHENTICATED")
        );
        assert!(body.get("data").is_none());
    }
    // A key that is right but tampered by one character is refused too.
    let mut tampered = keys.alpha_viewer.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let (s, _) = app.post(Some(&tampered), &q).await;
    assert_eq!(s, 401);

    // Roles: viewer reads evidence but not audit; ingest reads neither.
    let (code, msg) = app
        .query_error(
            Some(&keys.alpha_viewer),
            "{ audit { integrity { status } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert!(
        msg.contains("VIEWER") && msg.contains("read:audit"),
        "{msg}"
    );
    let (code, _) = app
        .query_error(
            Some(&keys.alpha_ingest),
            "{ llmRuns { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let d = app
        .query(
            &keys.alpha_ingest,
            "{ viewer { role tenantId } }",
            json!({}),
        )
        .await;
    assert_eq!(d["viewer"], json!({"role": "INGEST", "tenantId": "alpha"}));
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ llmRuns { totalCount } audit { integrity { hashChainValid } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["audit"]["integrity"]["hashChainValid"], json!(true));
}
both!(authentication_and_roles);

async fn bad_input_gets_precise_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let k = Some(keys.alpha_auditor.as_str());
    let d = app
        .query(
            &keys.alpha_auditor,
            "{ llmRuns(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let run_cursor = d["llmRuns"]["pageInfo"]["endCursor"].clone();
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            r#"{ llmRun(runId: "nope") { runId } }"#,
            json!({}),
            "NOT_FOUND",
            "nope",
        ),
        (
            r#"{ llmRuns(after: "!!!") { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "after",
        ),
        (
            // A forged cursor of the right list, with an integer key.
            r#"{ llmRuns(after: "djF8cnVucy5zdGFydGVkfGk1fHg") { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "after",
        ),
        (
            "query($c: String) { auditEntries(after: $c) { totalCount } }",
            json!({"c": run_cursor}),
            "BAD_USER_INPUT",
            "cursor",
        ),
        (
            "{ llmRuns(first: 1000) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
            "first",
        ),
        (
            "{ llmRuns(first: 0) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
            "first",
        ),
        (
            "{ llmRuns(last: -1) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
            "last",
        ),
        (
            "{ llmRuns(first: 2, last: 2) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
            "first",
        ),
        (
            "{ llmRuns(filter: {executionStatus: [EXPLODED]}) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
            "EXPLODED",
        ),
        (
            "query($f: LlmRunFilter) { llmRuns(filter: $f) { totalCount } }",
            json!({"f": {"executionStatus": ["nope"]}}),
            "BAD_USER_INPUT",
            "nope",
        ),
        (
            r#"{ llmRuns(filter: {startedAfter: "yesterday"}) { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "yesterday",
        ),
        (
            r#"{ llmRuns(filter: {startedAfter: "2026-03-02T00:00:00Z", startedBefore: "2026-03-01T00:00:00Z"}) { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "startedAfter",
        ),
        (
            r#"{ llmRuns(filter: {provider: ""}) { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "provider",
        ),
        (
            r#"{ llmRuns(filter: {executionStatus: []}) { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "executionStatus",
        ),
        (
            r#"{ llmRun(runId: "r2") { replay(windowSeconds: 0) { windowStart } } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "windowSeconds",
        ),
        (
            r#"{ llmRun(runId: "r2") { replay(windowSeconds: 100000) { windowStart } } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "windowSeconds",
        ),
        (
            r#"{ node(id: "bm90LWFuLWlk") { id } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "global id",
        ),
        (
            r#"{ auditEntry(id: "le_missing") { computedHash } }"#,
            json!({}),
            "NOT_FOUND",
            "le_missing",
        ),
        (
            r#"{ systemRecords(filter: {severity: [LOUD]}) { totalCount } }"#,
            json!({}),
            "BAD_USER_INPUT",
            "LOUD",
        ),
    ];
    for (query, vars, code, needle) in cases {
        let (got_code, message) = app.query_error(k, query, vars).await;
        assert_eq!(got_code, code, "{query}: {message}");
        assert!(
            message.contains(needle),
            "{query}: message `{message}` should name `{needle}`"
        );
        assert!(!message.to_lowercase().contains("sql"), "{message}");
    }
}
both!(bad_input_gets_precise_errors);

async fn limits_are_enforced(backend: Backend) {
    let settings = HttpSettings {
        max_body_bytes: 8192,
        // Complexity is what this test is about (aliases have their own limit).
        max_aliases: 100,
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let keys = fixture::load(&app).await;
    // Too deep.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {}  }} }} }} }}",
        "{ ofType ".repeat(20) + "{ name }" + &" }".repeat(20)
    );
    let (_, body) = app
        .post(Some(&keys.alpha_viewer), &json!({"query": deep}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("QUERY_TOO_COMPLEX"),
        "{body}"
    );
    // Too complex: a page's selection counts once per row asked for.
    let fields: String = (0..60).map(|i| format!("f{i}: runId ")).collect();
    let wide = format!("{{ llmRuns(first: 100) {{ nodes {{ {fields} }} }} }}");
    let (_, body) = app
        .post(Some(&keys.alpha_viewer), &json!({"query": wide}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("QUERY_TOO_COMPLEX"),
        "{body}"
    );
    let narrow = format!("{{ llmRuns(first: 5) {{ nodes {{ {fields} }} }} }}");
    let (_, body) = app
        .post(Some(&keys.alpha_viewer), &json!({"query": narrow}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    // Too large a body.
    let big = json!({"query": format!("{{ viewer {{ role }} }} #{}", "x".repeat(16384))});
    let (s, _) = app.post(Some(&keys.alpha_viewer), &big).await;
    assert_eq!(s, 413);
    // The server keeps serving.
    let d = app
        .query(&keys.alpha_viewer, "{ viewer { role } }", json!({}))
        .await;
    assert_eq!(d["viewer"]["role"], json!("VIEWER"));
}
both!(limits_are_enforced);

/// A query the server has seen before (its parsed document is kept) is answered like a new
/// one: the operation name and variables of each request apply, callers are still
/// authenticated, and tenants still see only their own runs.
async fn a_repeated_query_is_answered_like_a_new_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let two_operations = "query Role { viewer { role } } query Tenant { viewer { tenantId } }";
    for _ in 0..2 {
        for (operation, field, expected) in [
            ("Role", "role", json!("VIEWER")),
            ("Tenant", "tenantId", json!("alpha")),
        ] {
            let body = json!({"query": two_operations, "operationName": operation});
            let (status, answer) = app.post(Some(&keys.alpha_viewer), &body).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["data"]["viewer"][field], expected, "{answer}");
            assert_eq!(answer["data"]["viewer"].as_object().unwrap().len(), 1);
        }
    }
    let page = "query($n: Int) { llmRuns(first: $n) { nodes { runId } } }";
    let alpha_runs = fixture::alpha_runs().len();
    for n in [1, 2, 1] {
        let d = app.query(&keys.alpha_viewer, page, json!({"n": n})).await;
        assert_eq!(
            d["llmRuns"]["nodes"].as_array().unwrap().len(),
            n.min(alpha_runs)
        );
    }
    let (_, anonymous) = app
        .post(None, &json!({"query": page, "variables": {"n": 1}}))
        .await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{anonymous}"
    );
    let run_ids = |d: &Value| -> Vec<String> {
        d["llmRuns"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["runId"].as_str().unwrap().to_string())
            .collect()
    };
    let beta = app.query(&keys.beta_auditor, page, json!({"n": 50})).await;
    let alpha = app.query(&keys.alpha_viewer, page, json!({"n": 50})).await;
    let (mut beta, alpha) = (run_ids(&beta), run_ids(&alpha));
    beta.sort();
    // The fixture gives beta a run `r1` of its own and a run `rb1` that alpha does not have.
    assert_eq!(beta, ["r1", "rb1"]);
    assert_eq!(alpha.len(), alpha_runs);
    assert!(!alpha.contains(&"rb1".to_string()), "{alpha:?}");
}
both!(a_repeated_query_is_answered_like_a_new_one);

/// `/metrics` is off unless asked for; when on, it counts every HTTP request and the SQL
/// statements requests run (none for a health check).
async fn metrics_count_requests_and_statements(backend: Backend) {
    let off = TestApp::spawn(backend).await;
    let status = off
        .client
        .get(format!("{}/metrics", off.address))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);

    let settings = HttpSettings {
        metrics: true,
        ..HttpSettings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let keys = fixture::load(&app).await;
    let read = || async {
        let response = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        let value = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        };
        (
            value("runledger_http_requests_total"),
            value("runledger_sql_statements_total"),
        )
    };
    let (requests_0, statements_0) = read().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (requests_1, statements_1) = read().await;
    // The health check and this read of /metrics; a health check runs no SQL.
    assert_eq!(requests_1 - requests_0, 2);
    assert_eq!(statements_1, statements_0);
    let data = app
        .query(
            &keys.alpha_viewer,
            "{ llmRuns(first: 2) { nodes { runId } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["llmRuns"]["nodes"].as_array().unwrap().len(), 2);
    let (requests_2, statements_2) = read().await;
    assert_eq!(requests_2 - requests_1, 2);
    // At least the key lookup and the page.
    assert!(
        statements_2 >= statements_1 + 2,
        "{statements_1} -> {statements_2}"
    );
}
both!(metrics_count_requests_and_statements);
