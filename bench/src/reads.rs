//! Read throughput of the dashboard queries with per-request access recording on, as a ratio
//! to the same build with recording off, measured in one run against the same data: one
//! server per setting over one seeded database, concurrent clients over HTTP. Also the pieces
//! every read benchmark shares: seeding a tenant, serving it, driving clients.

use std::time::{Duration, Instant};

use runledger::db::Db;
use runledger::domain::Role;
use runledger::http::HttpSettings;
use runledger::seed::{self, SeedOptions};
use runledger::startup::{Server, ServerConfig};
use serde_json::json;

use crate::load;

/// The dashboard's queries, sent in turn by every client.
pub(crate) const QUERIES: [&str; 4] = [
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

pub(crate) const LOG_NAME: &str = "runledger-bench";

/// The checkpoint signing key of this bench process: the seeder (whose exports are pinned to
/// signed checkpoints) and every server it starts sign with it, as one deployment would. It is
/// a throwaway key in the temporary directory, left there for a look after the run.
pub(crate) fn key_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("runledger-bench-{}.key", std::process::id()))
}

/// Where this bench process's seeder and servers keep export files.
fn export_settings() -> runledger::export::ExportSettings {
    runledger::export::ExportSettings::in_dir(
        std::env::temp_dir().join(format!("runledger-bench-exports-{}", std::process::id())),
    )
}

/// Seeds one tenant and returns an auditor key for it and up to 500 of its run ids.
pub async fn seed_tenant(
    db: &Db,
    tenant: &str,
    opts: &SeedOptions,
) -> Result<(String, Vec<String>), String> {
    let keys = runledger::ledger::signing::open_identity(db, &key_file(), LOG_NAME, Vec::new())
        .await
        .map_err(|e| e.describe())?;
    let exports = seed::SeedExports {
        keys: &keys,
        settings: &export_settings(),
    };
    seed::seed_tenant(db, tenant, tenant, opts, exports)
        .await
        .map_err(|e| e.describe())?;
    let (key, _) = runledger::auth::create_key(db, tenant, Role::Auditor, None, None)
        .await
        .map_err(|e| e.describe())?;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let run_ids = entity::llm_runs::Entity::find()
        .select_only()
        .column(entity::llm_runs::Column::RunId)
        .filter(entity::llm_runs::Column::TenantId.eq(tenant))
        .limit(500)
        .into_tuple()
        .all(&db.conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok((key, run_ids))
}

/// Serves `db` as `runledger serve` does (without periodic checkpoints or verification) on an
/// ephemeral port, in this process; returns the server's base URL (`http://host:port`).
pub async fn serve_base(db: &Db, settings: HttpSettings) -> Result<String, String> {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        http: settings,
        signing_key_file: key_file(),
        log_name: LOG_NAME.into(),
        trusted_keys: Vec::new(),
        checkpoints: None,
        full_verify_interval: Duration::ZERO,
        exports: export_settings(),
    };
    let server = Server::build(db.clone(), config)
        .await
        .map_err(|e| e.describe())?;
    let base = format!("http://{}", server.address());
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    Ok(base)
}

/// Like [`serve_base`]; returns the GraphQL URL.
pub async fn serve(db: &Db, settings: HttpSettings) -> Result<String, String> {
    Ok(format!("{}/graphql", serve_base(db, settings).await?))
}

/// `clients` concurrent clients each send `per_client` requests, taking `queries` in turn (with
/// `$id` set to one of `run_ids`); returns every request's latency. A GraphQL error fails it.
pub async fn drive(
    url: &str,
    key: &str,
    queries: &[&'static str],
    run_ids: &[String],
    clients: usize,
    per_client: usize,
) -> Result<Vec<Duration>, String> {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let target = load::Target {
            url: url.to_string(),
            bearer: Some(key.to_string()),
        };
        let (queries, run_ids) = (queries.to_vec(), run_ids.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let n = c * per_client + i;
                let body = json!({
                    "query": queries[n % queries.len()],
                    "variables": {"id": run_ids[n % run_ids.len()]},
                });
                let t = Instant::now();
                let v = load::post(&client, &target, &body).await?;
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

/// Seeds one tenant, then measures off, on, off, on (alternating against drift) and reports
/// the totals of each setting.
pub async fn run(db: &Db, clients: usize, per_client: usize) -> Result<Vec<Reads>, String> {
    let opts = SeedOptions {
        tenants: 1,
        runs: 2000,
        steps_per_run: 8,
        telemetry_percent: 50,
        seed: 7,
    };
    let (key, run_ids) = seed_tenant(db, "dash", &opts).await?;
    let with = |recording| HttpSettings {
        record_requests: recording,
        ..HttpSettings::default()
    };
    let off = serve(db, with(false)).await?;
    let on = serve(db, with(true)).await?;
    let timed = |url: String, n: usize| {
        let (key, run_ids) = (key.clone(), run_ids.clone());
        async move {
            let started = Instant::now();
            drive(&url, &key, &QUERIES, &run_ids, clients, n).await?;
            Ok::<_, String>(started.elapsed())
        }
    };
    // Warm-up.
    timed(off.clone(), 20).await?;
    timed(on.clone(), 20).await?;
    let mut totals = [Duration::ZERO, Duration::ZERO];
    for _ in 0..2 {
        totals[0] += timed(off.clone(), per_client).await?;
        totals[1] += timed(on.clone(), per_client).await?;
    }
    Ok([false, true]
        .into_iter()
        .zip(totals)
        .map(|(recording, elapsed)| Reads {
            recording,
            requests: 2 * clients * per_client,
            elapsed,
        })
        .collect())
}
