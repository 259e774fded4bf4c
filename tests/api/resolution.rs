//! List items answered in one pass (runs, steps, policy events, system records, ledger
//! entries) equal the same objects answered by their own resolvers through `node(id)`, field
//! by field: every field of the type without arguments whose value is a scalar or an enum,
//! read from the schema, so a field added later is covered too.

use serde_json::{Value, json};

use crate::both;
use crate::fixture;
use crate::helpers::{Backend, TestApp};

/// The fields of `type_name` without arguments whose type is a scalar or an enum.
async fn value_fields(app: &TestApp, key: &str, type_name: &str) -> Vec<String> {
    let d = app
        .query(
            key,
            "query($t: String!) { __type(name: $t) { fields { name args { name } \
             type { kind ofType { kind ofType { kind } } } } } }",
            json!({"t": type_name}),
        )
        .await;
    let fields = d["__type"]["fields"].as_array().expect("type fields");
    let innermost = |mut ty: &Value| {
        while ty["kind"] == json!("NON_NULL") || ty["kind"] == json!("LIST") {
            ty = &ty["ofType"];
        }
        ty["kind"].as_str().unwrap_or("").to_string()
    };
    let names: Vec<String> = fields
        .iter()
        .filter(|f| f["args"].as_array().is_some_and(|a| a.is_empty()))
        .filter(|f| matches!(innermost(&f["type"]).as_str(), "SCALAR" | "ENUM"))
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 5, "{type_name} has value fields: {names:?}");
    names
}

/// The values at the JSON path `path` of `data`, arrays flattened.
fn objects_at<'a>(data: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut current = vec![data];
    for step in path {
        let mut next = Vec::new();
        for value in current {
            let value = &value[*step];
            match value.as_array() {
                Some(items) => next.extend(items.iter()),
                None => next.push(value),
            }
        }
        current = next;
    }
    current
}

/// Every list of plain objects, through fragments, aliases and `__typename`, against `node`.
async fn list_items_equal_their_own_resolvers(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let keys = fixture::load(&app).await;
    let key = &keys.alpha_auditor;

    let lists: [(&str, &str, &[&str]); 5] = [
        (
            "LlmRun",
            "{ llmRuns(first: 50) { nodes { ...F } } }",
            &["llmRuns", "nodes"],
        ),
        (
            "TraceStep",
            "{ llmRuns(first: 50) { nodes { trace { steps { ...F } } } } }",
            &["llmRuns", "nodes", "trace", "steps"],
        ),
        (
            "GovernanceEvent",
            "{ llmRuns(first: 50) { nodes { governance { events { ...F } } } } }",
            &["llmRuns", "nodes", "governance", "events"],
        ),
        (
            "SystemRecord",
            "{ systemRecords(first: 50) { nodes { ...F } } }",
            &["systemRecords", "nodes"],
        ),
        (
            "AuditEntry",
            "{ auditEntries(first: 50) { nodes { ...F } } }",
            &["auditEntries", "nodes"],
        ),
    ];
    for (type_name, list, path) in lists {
        let fields = value_fields(&app, key, type_name).await.join(" ");
        // The list's items go through the one-pass path: a named fragment, an alias, an
        // inline fragment and __typename, as clients write them.
        let fragment = format!(
            "fragment F on {type_name} {{ {fields} again: id ... on {type_name} {{ __typename }} }}"
        );
        let data = app
            .query(key, &format!("{list} {fragment}"), json!({}))
            .await;
        let items = objects_at(&data, path);
        assert!(
            items.len() >= 2,
            "{type_name}: the fixture has several: {data}"
        );
        for item in items {
            assert_eq!(item["again"], item["id"], "{type_name}: an alias: {item}");
            assert_eq!(item["__typename"], json!(type_name));
            // The same object through `node`, which resolves it field by field.
            let one = app
                .query(
                    key,
                    &format!("query($id: ID!) {{ node(id: $id) {{ ...F }} }} {fragment}"),
                    json!({"id": item["id"]}),
                )
                .await;
            assert_eq!(&one["node"], item, "{type_name} in a list and through node");
            // Keys come in the order the query asks for them.
            let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
            let node_keys: Vec<&String> = one["node"].as_object().unwrap().keys().collect();
            assert_eq!(keys, node_keys, "{type_name}: key order");
        }
    }

    // A selection the one-pass path does not answer (a field with a selection of its own)
    // falls back to the object's resolvers for the same answer.
    let d = app
        .query(
            key,
            r#"{ llmRuns(first: 50) { nodes { runId metadata { runId sourceComponent } } } }"#,
            json!({}),
        )
        .await;
    let nodes = d["llmRuns"]["nodes"].as_array().unwrap();
    assert!(nodes.len() >= 2);
    for run in nodes {
        assert_eq!(run["metadata"]["runId"], run["runId"], "{run}");
        assert_eq!(
            run["metadata"]["sourceComponent"],
            json!("llm_runs"),
            "{run}"
        );
    }
}

both!(list_items_equal_their_own_resolvers);

/// Each value field of `type_name`, the items of a run's `view { list }`, asked for alone
/// (the view then reads only that field's columns), equals the same field in a view that
/// shows every field and the metadata. Returns the runs of the full view.
async fn each_field_alone_equals_the_full_view(
    app: &TestApp,
    key: &str,
    view: &str,
    list: &str,
    type_name: &str,
) -> Vec<Value> {
    let fields = value_fields(app, key, type_name).await;
    let everything = app
        .query(
            key,
            &format!(
                "{{ llmRuns(first: 50) {{ nodes {{ runId {view} {{ metadata {{ checksum occurredAt }} \
                 {list} {{ {} }} }} }} }} }}",
                fields.join(" ")
            ),
            json!({}),
        )
        .await;
    let runs = everything["llmRuns"]["nodes"].as_array().unwrap().clone();
    let items: usize = runs
        .iter()
        .map(|r| r[view][list].as_array().unwrap().len())
        .sum();
    assert!(
        items >= 3,
        "the fixture has {type_name} items: {everything}"
    );

    for field in &fields {
        let d = app
            .query(
                key,
                &format!("{{ llmRuns(first: 50) {{ nodes {{ runId {view} {{ {list} {{ {field} }} }} }} }} }}"),
                json!({}),
            )
            .await;
        for (run, full) in d["llmRuns"]["nodes"].as_array().unwrap().iter().zip(&runs) {
            assert_eq!(run["runId"], full["runId"]);
            let values = |r: &Value| -> Vec<Value> {
                r[view][list]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| item[field.as_str()].clone())
                    .collect()
            };
            assert_eq!(
                values(run),
                values(full),
                "{type_name} field {field} of run {}",
                run["runId"]
            );
        }
    }
    runs
}

/// A run's trace and governance views read only the columns their selection shows: each
/// field asked for alone, the totals and the metadata equal what a view with every field
/// shows.
async fn a_view_shows_the_same_values_whatever_it_selects(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let keys = fixture::load(&app).await;
    let key = &keys.alpha_auditor;

    let runs =
        each_field_alone_equals_the_full_view(&app, key, "trace", "steps", "TraceStep").await;
    let events =
        each_field_alone_equals_the_full_view(&app, key, "governance", "events", "GovernanceEvent")
            .await;

    // Totals, computed here from the full items; metadata equal to the full view's.
    let d = app
        .query(
            key,
            "{ llmRuns(first: 50) { nodes { trace { totalSteps totalCostCents totalDurationMs } \
             again: trace { metadata { checksum occurredAt } steps { skillName } } \
             governance { totalEvents metadata { checksum occurredAt } events { decision } } } } }",
            json!({}),
        )
        .await;
    let nodes = d["llmRuns"]["nodes"].as_array().unwrap();
    for ((run, full), full_events) in nodes.iter().zip(&runs).zip(&events) {
        let listed = full_events["governance"]["events"].as_array().unwrap();
        assert_eq!(run["governance"]["totalEvents"], json!(listed.len()));
        assert_eq!(
            run["governance"]["metadata"],
            full_events["governance"]["metadata"]
        );
        let full_steps = full["trace"]["steps"].as_array().unwrap();
        let sum = |f: &str| {
            full_steps
                .iter()
                .map(|s| s[f].as_i64().unwrap())
                .sum::<i64>()
        };
        assert_eq!(run["trace"]["totalSteps"], json!(full_steps.len()));
        assert_eq!(run["trace"]["totalCostCents"], json!(sum("costCents")));
        assert_eq!(run["trace"]["totalDurationMs"], json!(sum("durationMs")));
        assert_eq!(run["again"]["metadata"], full["trace"]["metadata"]);
    }
}

both!(a_view_shows_the_same_values_whatever_it_selects);

/// A page of ledger entries reads only the columns its selection shows: each field asked
/// for alone (through `nodes` and through `edges`) equals the entry read whole through
/// `node(id)`; cursors and the list's metadata equal those of a page with every field.
async fn an_entry_page_shows_the_same_values_whatever_it_selects(backend: Backend) {
    let app = TestApp::spawn_unrecorded(backend).await;
    let keys = fixture::load(&app).await;
    let key = &keys.alpha_auditor;

    let fields = value_fields(&app, key, "AuditEntry").await;
    let full = app
        .query(
            key,
            &format!(
                "{{ auditEntries(first: 50) {{ metadata {{ occurredAt recordedAt }} \
                 edges {{ cursor node {{ {} }} }} }} }}",
                fields.join(" ")
            ),
            json!({}),
        )
        .await;
    let edges = full["auditEntries"]["edges"].as_array().unwrap().clone();
    assert!(edges.len() >= 3, "the fixture has ledger entries: {full}");
    // Each entry whole, by its own resolvers over its full row.
    let mut whole = Vec::new();
    for edge in &edges {
        let d = app
            .query(
                key,
                &format!(
                    "query($id: ID!) {{ node(id: $id) {{ ... on AuditEntry {{ {} }} }} }}",
                    fields.join(" ")
                ),
                json!({"id": edge["node"]["id"]}),
            )
            .await;
        whole.push(d["node"].clone());
    }
    for field in &fields {
        let d = app
            .query(
                key,
                &format!(
                    "{{ auditEntries(first: 50) {{ metadata {{ occurredAt recordedAt }} \
                     nodes {{ {field} }} edges {{ cursor node {{ {field} }} }} }} }}"
                ),
                json!({}),
            )
            .await;
        let list = &d["auditEntries"];
        assert_eq!(list["metadata"], full["auditEntries"]["metadata"]);
        for (i, edge) in edges.iter().enumerate() {
            let expected = &whole[i][field.as_str()];
            assert_eq!(
                &list["nodes"][i][field.as_str()],
                expected,
                "{field} of entry {i}"
            );
            assert_eq!(&list["edges"][i]["node"][field.as_str()], expected);
            assert_eq!(list["edges"][i]["cursor"], edge["cursor"]);
        }
    }
}

both!(an_entry_page_shows_the_same_values_whatever_it_selects);
