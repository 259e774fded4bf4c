//! Read throughput of the dashboard queries with per-request access recording on, as a ratio
//! to the same build with recording off, measured in one run against the same data: one
//! server per setting over one seeded database, concurrent clients over HTTP.

use std::time::{Duration, Instant};

use runledger::app::{self, AppState, HttpSettings};
use runledger::db::Db;
use runledger::domain::Role;
use runledger::ledger::checkpoint::LedgerKeys;
use runledger::ledger::note::NoteSigner;
use runledger::seed::{self, SeedOptions};
use serde_json::{Value, json};

/// The dashboard's queries, sent in turn by every client.
const QUERIES: [&str; 4] = [
    "{ llmRuns(first: 50, filter: {executionStatus: [FAILED]}) { totalCount nodes { runId model costCents } } }",
    "{ llmRuns(first: 20) { nodes { runId trace { steps { stepIndex status } } governance { events { decision } } } } }",
    "query($id: String!) { llmRun(runId: $id) { runId envelope { checksum } trace { steps { stepIndex } } governance { events { eventId } } replay { inflection { reason } } export { bundleChecksum } system { events { events { recordId } } } } }",
    "{ auditEntries(first: 50, filter: {category: [GOVERNANCE]}) { nodes { seq eventType } } }",
];

pub struct Reads {
    pub recording: bool,
    pub requests: usize,
    pub elapsed: Duration,
}

async fn serve(db: &Db, recording: bool) -> Result<String, String> {
    let settings = HttpSettings {
        record_requests: recording,
        ..HttpSettings::default()
    };
    let keys = LedgerKeys::new(
        NoteSigner::generate("bench").map_err(|e| e.describe())?,
        "bench",
    );
    let router = app::router(AppState::new(db.clone(), keys, settings));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let host = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{host}/graphql"))
}

async fn drive(
    url: &str,
    key: &str,
    run_ids: &[String],
    clients: usize,
    per_client: usize,
) -> Result<Duration, String> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url, key) = (client.clone(), url.to_string(), key.to_string());
        let run_ids = run_ids.to_vec();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let n = c * per_client + i;
                let body = json!({
                    "query": QUERIES[n % QUERIES.len()],
                    "variables": {"id": run_ids[n % run_ids.len()]},
                });
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
                if v.get("errors").is_some() {
                    return Err(format!("query failed: {v}"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(started.elapsed())
}

/// Seeds one tenant, then measures off, on, off, on (alternating against drift) and reports
/// the totals of each setting.
pub async fn run(db: &Db, clients: usize, per_client: usize) -> Result<Vec<Reads>, String> {
    let opts = SeedOptions {
        tenants: 1,
        runs: 2000,
        steps_per_run: 8,
        seed: 7,
    };
    seed::seed_tenant(db, "dash", "Dashboard Inc.", &opts)
        .await
        .map_err(|e| e.describe())?;
    let (key, _) = runledger::auth::create_key(db, "dash", Role::Auditor, None, None)
        .await
        .map_err(|e| e.describe())?;
    let run_ids: Vec<String> = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        entity::llm_runs::Entity::find()
            .select_only()
            .column(entity::llm_runs::Column::RunId)
            .filter(entity::llm_runs::Column::TenantId.eq("dash"))
            .limit(200)
            .into_tuple()
            .all(&db.conn)
            .await
            .map_err(|e| e.to_string())?
    };
    let off = serve(db, false).await?;
    let on = serve(db, true).await?;
    // Warm-up.
    drive(&off, &key, &run_ids, clients, 20).await?;
    drive(&on, &key, &run_ids, clients, 20).await?;
    let mut totals = [Duration::ZERO, Duration::ZERO];
    for _ in 0..2 {
        totals[0] += drive(&off, &key, &run_ids, clients, per_client).await?;
        totals[1] += drive(&on, &key, &run_ids, clients, per_client).await?;
    }
    Ok(vec![
        Reads {
            recording: false,
            requests: 2 * clients * per_client,
            elapsed: totals[0],
        },
        Reads {
            recording: true,
            requests: 2 * clients * per_client,
            elapsed: totals[1],
        },
    ])
}
