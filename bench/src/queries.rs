//! The dashboard query mix Q1–Q5 of issue 6 against runledger alone (the side-by-side with
//! PostGraphile and the pgbench floor is not built yet): for each query, concurrent clients
//! over HTTP, requests per second, p50 and p99 latency, and SQL statements per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runledger::app::{self, AppState, HttpSettings};
use runledger::db::Db;
use runledger::domain::Role;
use runledger::ledger::checkpoint::LedgerKeys;
use runledger::ledger::note::NoteSigner;
use runledger::seed::{self, SeedOptions};
use serde_json::{Value, json};

/// Q1–Q5 of issue 6.
pub const MIX: [(&str, &str); 5] = [
    (
        "Q1 50 runs by status, totalCount",
        "{ llmRuns(first: 50, filter: {executionStatus: [FAILED]}) { totalCount nodes { runId model executionStatus costCents startedAt } } }",
    ),
    (
        "Q2 20 runs with steps and governance",
        "{ llmRuns(first: 20) { nodes { runId trace { steps { stepIndex skillName status } } governance { events { eventId decision } } } } }",
    ),
    (
        "Q3 one run in full",
        "query($id: String!) { llmRun(runId: $id) { runId envelope { checksum } trace { steps { stepIndex } } governance { events { eventId } } replay { inflection { reason } events { timestamp } } export { bundleChecksum } system { events { events { recordId } } } } }",
    ),
    (
        "Q4 50 ledger entries by category",
        "{ auditEntries(first: 50, filter: {category: [ACCESS]}) { nodes { seq eventType entityId } } }",
    ),
    (
        "Q5 50 system records by severity",
        "{ systemRecords(first: 50, filter: {severity: [ERROR, CRITICAL]}) { nodes { recordId component severity } } }",
    ),
];

pub struct QueryFigures {
    pub name: &'static str,
    pub requests: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub statements_per_request: f64,
}

/// Seeds one tenant of `runs` runs, serves it, and drives each query in turn.
pub async fn run(
    mut db: Db,
    runs: u32,
    clients: usize,
    per_client: usize,
) -> Result<Vec<QueryFigures>, String> {
    let statements = Arc::new(AtomicU64::new(0));
    let counter = statements.clone();
    db.conn.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let opts = SeedOptions {
        tenants: 1,
        runs,
        steps_per_run: 20,
        seed: 11,
    };
    seed::seed_tenant(&db, "mix", "Mix Inc.", &opts)
        .await
        .map_err(|e| e.describe())?;
    let (key, _) = runledger::auth::create_key(&db, "mix", Role::Auditor, None, None)
        .await
        .map_err(|e| e.describe())?;
    let run_ids: Vec<String> = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        entity::llm_runs::Entity::find()
            .select_only()
            .column(entity::llm_runs::Column::RunId)
            .filter(entity::llm_runs::Column::TenantId.eq("mix"))
            .limit(500)
            .into_tuple()
            .all(&db.conn)
            .await
            .map_err(|e| e.to_string())?
    };
    let settings = HttpSettings::default();
    let keys = LedgerKeys::new(
        NoteSigner::generate("bench").map_err(|e| e.describe())?,
        "bench",
    );
    let router = app::router(AppState::new(db.clone(), keys, settings));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}/graphql",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for (name, query) in MIX {
        // Warm-up, then the measured run.
        drive(&client, &url, &key, query, &run_ids, clients, 5).await?;
        let before = statements.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut latencies =
            drive(&client, &url, &key, query, &run_ids, clients, per_client).await?;
        let elapsed = started.elapsed();
        let used = statements.load(Ordering::Relaxed) - before;
        latencies.sort();
        let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        out.push(QueryFigures {
            name,
            requests: latencies.len(),
            elapsed,
            p50: pick(0.50),
            p99: pick(0.99),
            statements_per_request: used as f64 / latencies.len() as f64,
        });
    }
    Ok(out)
}

async fn drive(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    query: &'static str,
    run_ids: &[String],
    clients: usize,
    per_client: usize,
) -> Result<Vec<Duration>, String> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url, key) = (client.clone(), url.to_string(), key.to_string());
        let run_ids = run_ids.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let body = json!({
                    "query": query,
                    "variables": {"id": run_ids[(c * per_client + i) % run_ids.len()]},
                });
                let t = Instant::now();
                let v: Value = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
                if v.get("errors").is_some() {
                    return Err(format!("query failed: {v}"));
                }
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}
