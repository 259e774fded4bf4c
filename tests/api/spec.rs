//! Responses as the GraphQL specification (October 2021 edition) and GraphQL-over-HTTP say they
//! must be, checked against the texts rather than against what the server happens to return:
//!
//! - §6.4.4 "Handling Field Errors": a field that errors is null; if its type is non-null the
//!   error propagates to the parent field, up to the nearest nullable one, and `data` is null
//!   when every field up to the root is non-null; one error per failed field;
//! - §7.1.2 "Serialized Map Ordering" with §6.3.2 CollectFields: response keys are in the order
//!   of the selection set;
//! - §4.2.1 `__Schema.description` describes the schema itself (runledger gives none: null);
//! - GraphQL-over-HTTP §5.1: a request without `query` is refused with 4xx.
//!
//! Keys are read in the order they appear in the body ([`Ordered`]); `serde_json::Value` would
//! sort them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

/// A JSON value whose object keys keep their order in the text.
#[derive(Debug, Clone, PartialEq)]
enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Ordered, E> {
                serde_json::Number::from_f64(n)
                    .map(Ordered::Number)
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key `{key}` in {self:?}")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn at(&self, index: usize) -> &Ordered {
        match self {
            Ordered::Array(items) => &items[index],
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// Posts a query; the status and the body with its key order.
async fn post(app: &TestApp, key: Option<&str>, body: &Value) -> (u16, Ordered, Value) {
    let mut req = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let ordered: Ordered = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let value: Value = serde_json::from_str(&text).unwrap();
    (status, ordered, value)
}

fn paths(body: &Value) -> Vec<Value> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| e["path"].clone())
        .collect()
}

fn codes(body: &Value) -> Vec<Value> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| e["extensions"]["code"].clone())
        .collect()
}

// `audit` is `AuditViews!` and `integrity` is `AuditIntegrity!`: a viewer may not read
// integrity, and the error propagates through both non-null fields to the root.
async fn non_null_errors_propagate_to_the_root(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let (status, _, body) = post(
        &app,
        Some(&keys.alpha_viewer),
        &json!({"query": "{ audit { integrity { status } } }"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert!(body.as_object().unwrap().contains_key("data"), "{body}");
    assert_eq!(paths(&body), vec![json!(["audit", "integrity"])], "{body}");
    assert_eq!(codes(&body), vec![json!("FORBIDDEN")], "{body}");
}
both!(non_null_errors_propagate_to_the_root);

// `node` is nullable: it is present as null beside its siblings, with one error at its path.
async fn an_errored_nullable_field_is_null(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let (status, ordered, body) = post(
        &app,
        Some(&keys.alpha_viewer),
        &json!({"query": r#"{ viewer { role } node(id: "bm9wZQ==") { id } }"#}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = ordered.get("data");
    assert_eq!(data.keys(), vec!["viewer", "node"], "{body}");
    assert_eq!(data.get("node"), &Ordered::Null);
    assert_eq!(body["data"]["viewer"]["role"], "VIEWER", "{body}");
    assert_eq!(paths(&body), vec![json!(["node"])], "{body}");
    assert_eq!(codes(&body), vec![json!("BAD_USER_INPUT")], "{body}");
}
both!(an_errored_nullable_field_is_null);

// `llmRun` is `LlmRun!`: its error nulls the whole `data`, whatever its siblings answered.
async fn an_errored_non_null_root_field_nulls_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let (status, _, body) = post(
        &app,
        Some(&keys.alpha_viewer),
        &json!({"query": r#"{ a: viewer { role } llmRun(runId: "nope") { runId } }"#}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_object().unwrap().contains_key("data"), "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(paths(&body), vec![json!(["llmRun"])], "{body}");
    assert_eq!(codes(&body), vec![json!("NOT_FOUND")], "{body}");
}
both!(an_errored_non_null_root_field_nulls_data);

// Keys follow the selection, with and without errors, through fragments and aliases.
async fn response_keys_follow_the_selection_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let query = r#"
        query {
          runs: llmRuns(first: 2) {
            pageInfo { hasNextPage endCursor }
            totalCount
            nodes { startedAt ...F model runId }
          }
          viewer { tenantId role }
          %ERR%
          audit { identity(first: 1) { totalCount edges { cursor } } }
        }
        fragment F on LlmRun { provider runId executionStatus }"#;
    for error in ["", r#"node(id: "bm9wZQ==") { id }"#] {
        let (status, ordered, body) = post(
            &app,
            Some(&keys.alpha_auditor),
            &json!({"query": query.replace("%ERR%", error)}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.get("errors").is_some(), !error.is_empty(), "{body}");
        let data = ordered.get("data");
        let mut top = vec!["runs", "viewer"];
        if !error.is_empty() {
            top.push("node");
        }
        top.push("audit");
        assert_eq!(data.keys(), top, "{body}");
        let runs = data.get("runs");
        assert_eq!(
            runs.keys(),
            vec!["pageInfo", "totalCount", "nodes"],
            "{body}"
        );
        assert_eq!(
            runs.get("pageInfo").keys(),
            vec!["hasNextPage", "endCursor"]
        );
        // CollectFields: the fragment's fields go where the spread is, a repeated key where it
        // first appears.
        assert_eq!(
            runs.get("nodes").at(0).keys(),
            vec!["startedAt", "provider", "runId", "executionStatus", "model"],
            "{body}"
        );
        assert_eq!(data.get("viewer").keys(), vec!["tenantId", "role"]);
        assert_eq!(
            data.get("audit").get("identity").keys(),
            vec!["totalCount", "edges"]
        );
    }
}
both!(response_keys_follow_the_selection_order);

// The schema has no subscription root type: one request error, no `data`.
async fn a_subscription_is_refused_with_one_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    for query in [
        "subscription { viewer { role } }",
        "subscription S { llmRuns { totalCount } }",
    ] {
        let (status, _, body) =
            post(&app, Some(&keys.alpha_viewer), &json!({"query": query})).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(codes(&body), vec![json!("BAD_USER_INPUT")], "{body}");
    }
}
both!(a_subscription_is_refused_with_one_error);

async fn the_schema_description_is_null(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    for key in [None, Some(keys.alpha_viewer.as_str())] {
        let (status, _, body) =
            post(&app, key, &json!({"query": "{ __schema { description } }"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"data": {"__schema": {"description": null}}}));
    }
}
both!(the_schema_description_is_null);

async fn a_post_without_query_is_a_400_naming_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in [
        json!({}),
        json!({"variables": {}}),
        json!({"operationName": "A"}),
        json!([{"query": "{ __typename }"}, {}]),
    ] {
        let (status, _, answer) = post(&app, None, &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(answer.get("data").is_none(), "{answer}");
        assert_eq!(codes(&answer), vec![json!("BAD_USER_INPUT")], "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("`query`"), "{message}");
    }
}
both!(a_post_without_query_is_a_400_naming_it);

// `DateTime` carries `@specifiedBy` in the checked-in SDL, with the URL introspection gives.
async fn date_time_is_specified_by_the_same_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, _, body) = post(
        &app,
        None,
        &json!({"query": r#"{ __type(name: "DateTime") { specifiedByURL } }"#}),
    )
    .await;
    let url = body["data"]["__type"]["specifiedByURL"]
        .as_str()
        .unwrap_or_else(|| panic!("DateTime has no specifiedByURL: {body}"));
    let sdl =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let line = format!(r#"scalar DateTime @specifiedBy(url: "{url}")"#);
    assert!(sdl.contains(&line), "schema.graphql lacks `{line}`");
}
both!(date_time_is_specified_by_the_same_url);

// Every paginated field says what its page arguments mean, the 100-row limit included.
async fn pagination_arguments_are_described(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let query = "{ __schema { types { name fields { name args { name description } } } } }";
    let (_, _, body) = post(&app, None, &json!({"query": query})).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ty in body["data"]["__schema"]["types"].as_array().unwrap() {
        for field in ty["fields"].as_array().into_iter().flatten() {
            for arg in field["args"].as_array().unwrap() {
                let name = arg["name"].as_str().unwrap();
                if !["first", "after", "last", "before"].contains(&name) {
                    continue;
                }
                let at = format!("{}.{}({name})", ty["name"], field["name"]);
                let description = arg["description"].as_str().unwrap_or("");
                assert!(!description.is_empty(), "{at} has no description");
                if name == "first" || name == "last" {
                    assert!(description.contains("100"), "{at}: {description}");
                }
                *seen.entry(name.to_string()).or_default() += 1;
            }
        }
    }
    assert!(seen.get("first").copied().unwrap_or(0) >= 5, "{seen:?}");
}
both!(pagination_arguments_are_described);

// A selection whose every field is skipped yields an empty map (§6.3.2, §3.13.2), not null;
// the same for a page's rows answered in one pass and for objects answered by resolvers.
async fn an_object_with_every_field_skipped_is_an_empty_map(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = fixture::load(&app).await;
    let (status, _, body) = post(
        &app,
        Some(&keys.alpha_viewer),
        &json!({"query": "{ viewer { role @skip(if: true) } llmRuns(first: 1) { nodes { runId @include(if: false) } pageInfo { hasNextPage @skip(if: true) } } }"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"data": {"viewer": {}, "llmRuns": {"nodes": [{}], "pageInfo": {}}}}),
    );
}
both!(an_object_with_every_field_skipped_is_an_empty_map);
