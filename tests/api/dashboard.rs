//! The pages in a real browser: Debian's chromium, headless, driven by Playwright
//! (`tests/browser/*.mjs`, whose packages `.ci/run` installs). The dashboard must load with no
//! request leaving the server and no console error, show the figures a GraphQL answer gives for
//! the same window, follow a new run live, open a failed run's replay, and keep the key in
//! session storage only; GraphiQL must run a subscription. A screenshot is kept in `artifacts/`
//! (ignored by git) for CI to publish.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp};

const FROM: &str = "2026-10-20T00:00:00Z";
const TO: &str = "2026-11-03T00:00:00Z";
const ZONE: &str = "Europe/Berlin";

/// Whether the browser and the driver are installed; in CI their absence is a failure.
fn browser_ready() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let driver = root.join("tests/browser/node_modules/playwright-core");
    let chromium = Path::new("/usr/bin/chromium");
    if driver.exists() && chromium.exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        !ci,
        "CI needs chromium and tests/browser/node_modules (.ci/run installs them)"
    );
    eprintln!("chromium or tests/browser/node_modules missing: skipping the browser test");
    false
}

async fn dashboard_in_a_real_browser(backend: Backend) {
    if !browser_ready() {
        return;
    }
    let app = TestApp::spawn(backend).await;
    let key = app.seeded_auditor("dash", 150, 4, 0, 11).await;
    app.checkpoint("dash").await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let artifacts = root.join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join(format!("dashboard-{backend:?}.png").to_lowercase());
    let url = format!("{}/dashboard?from={FROM}&to={TO}&tz={ZONE}", app.address);
    let browser_key = key.clone();
    let ingest = runledger::auth::create_key(
        app.db(),
        "dash",
        runledger::domain::Role::Ingest,
        None,
        None,
    )
    .await
    .unwrap()
    .0;
    // Written while the page is open: the newest failed run of the window.
    let live_run = json!({
        "runId": "live-dash-1", "provider": "openai", "model": "gpt-4o", "inputTokens": 10,
        "outputTokens": 5, "costCents": 3, "executionStatus": "FAILED",
        "startedAt": "2026-11-02T22:59:00Z", "completedAt": "2026-11-02T22:59:30Z"
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(root.join("tests/browser/dashboard.mjs"))
            .env("DASHBOARD_URL", url)
            .env("RUNLEDGER_KEY", browser_key)
            .env("INGEST_KEY", ingest)
            .env("LIVE_RUN", live_run.to_string())
            .env("SCREENSHOT", &screenshot)
            .output()
            .expect("run node")
    });
    let out = out.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("the driver's JSON report");
    assert_eq!(
        report["foreignRequests"],
        json!([]),
        "requests left the server"
    );
    assert_eq!(report["consoleErrors"], json!([]), "console errors");
    let shown = &report["shown"];
    // The page followed the write live: one more run, delivered over the websocket.
    let live = &report["live"];
    assert_eq!(live["state"], json!("live"), "{live}");
    assert_eq!(
        live["runsAfter"].as_i64().unwrap(),
        live["runsBefore"].as_i64().unwrap() + 1,
        "{live}"
    );
    assert!(live["arrived"].as_i64().unwrap() >= 1, "{live}");
    assert_eq!(shown["failedRuns"][0], json!("live-dash-1"), "{shown}");

    // What GraphQL says of the same window (the page asks for day buckets over 14 days).
    let data = app
        .query(
            &key,
            r#"query($from: DateTime!, $to: DateTime!) {
                llmRunStats(from: $from, to: $to, bucket: DAY, timeZone: "Europe/Berlin") {
                    total { runs costCents totalTokens errorRate durationP90Ms } }
                auditStats(from: $from, to: $to, bucket: DAY, timeZone: "Europe/Berlin", filter: {decision: DENY}) {
                    total { count } }
                llmRuns(first: 10, filter: {executionStatus: [FAILED, TIMED_OUT, ABORTED], startedAfter: $from, startedBefore: $to}) {
                    nodes { runId } } }"#,
            json!({"from": FROM, "to": TO}),
        )
        .await;
    let total = &data["llmRunStats"]["total"];
    assert!(
        total["runs"].as_i64().unwrap() > 0,
        "the window holds the seeded runs"
    );
    let tile = |name: &str| shown["tiles"][name]["value"].as_str().unwrap().to_string();
    assert_eq!(tile("runs"), total["runs"].to_string());
    assert_eq!(tile("cost"), total["costCents"].to_string());
    assert_eq!(tile("tokens"), total["totalTokens"].to_string());
    let rate: f64 = tile("errorRate").parse().unwrap();
    assert!((rate - total["errorRate"].as_f64().unwrap()).abs() < 1e-12);
    let p90: f64 = tile("p90").parse().unwrap();
    assert_eq!(p90, total["durationP90Ms"].as_f64().unwrap());
    assert_eq!(
        shown["tiles"]["cost"]["text"],
        json!(format!(
            "${:.2}",
            total["costCents"].as_f64().unwrap() / 100.0
        ))
    );
    // Every chart drew (one canvas) the figures of the answer: its series add up to the totals.
    for chart in ["cost", "tokens", "errors", "status", "denied"] {
        assert_eq!(
            shown["charts"][chart]["state"],
            json!("ready"),
            "{chart}: {shown}"
        );
        assert_eq!(shown["charts"][chart]["canvases"], json!(1), "{chart}");
    }
    assert_eq!(shown["charts"]["cost"]["total"], total["costCents"]);
    assert_eq!(shown["charts"]["tokens"]["total"], total["totalTokens"]);
    assert_eq!(shown["charts"]["status"]["total"], total["runs"]);
    assert_eq!(
        shown["charts"]["denied"]["total"],
        data["auditStats"]["total"]["count"]
    );
    let failed: Vec<Value> = data["llmRuns"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["runId"].clone())
        .collect();
    assert!(!failed.is_empty());
    assert_eq!(shown["failedRuns"], json!(failed));
    // The replay the page opened is the run's.
    let replay = app
        .query(
            &key,
            "query($id: String!) { llmRun(runId: $id) { replay { events { action } } } }",
            json!({"id": failed[0]}),
        )
        .await;
    let events = replay["llmRun"]["replay"]["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(report["replayEvents"], json!(events));
    assert_eq!(shown["ledger"]["state"], json!("ready"));
    assert!(
        shown["ledger"]["status"]
            .as_str()
            .unwrap()
            .starts_with("VERIFIED"),
        "{shown}"
    );
    assert!(shown["asOfTreeSize"].as_i64().unwrap() > 0);
    assert_eq!(shown["keyInSession"], json!(true));
    assert_eq!(shown["keyInLocal"], json!(0));
}
both!(dashboard_in_a_real_browser);

async fn graphiql_runs_a_subscription_in_a_real_browser(backend: Backend) {
    if !browser_ready() {
        return;
    }
    let app = TestApp::spawn(backend).await;
    let keys = crate::fixture::load(&app).await;
    let cursor = app
        .query(&keys.alpha_viewer, "{ liveCursor }", json!({}))
        .await["liveCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let query = format!(
        "subscription {{ llmRunAdded(after: \"{cursor}\") {{ cursor run {{ runId executionStatus }} }} }}"
    );
    let live_run = json!({
        "runId": "live-gq-1", "provider": "openai", "model": "gpt-4o", "inputTokens": 1,
        "outputTokens": 1, "costCents": 1, "executionStatus": "SUCCEEDED",
        "startedAt": "2026-11-02T22:59:00Z"
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (url, viewer, ingest) = (
        format!("{}/graphiql", app.address),
        keys.alpha_viewer.clone(),
        keys.alpha_ingest.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(root.join("tests/browser/graphiql.mjs"))
            .env("GRAPHIQL_URL", url)
            .env("RUNLEDGER_KEY", viewer)
            .env("INGEST_KEY", ingest)
            .env("QUERY", query)
            .env("LIVE_RUN", live_run.to_string())
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("the driver's JSON report");
    assert_eq!(report["consoleErrors"], json!([]), "console errors");
    let event = &report["result"]["data"]["llmRunAdded"];
    assert_eq!(
        event["run"],
        json!({"runId": "live-gq-1", "executionStatus": "SUCCEEDED"})
    );
    assert!(event["cursor"].as_str().is_some_and(|c| !c.is_empty()));
}
both!(graphiql_runs_a_subscription_in_a_real_browser);
