//! `runledger-bench ingest`: ingest throughput over real HTTP — runs with nested steps sent as
//! batched GraphQL mutations by concurrent clients — on SQLite and PostgreSQL. Reports steps
//! per second persisted (a mutation is acknowledged only after its commit) and checks that
//! every step is queryable afterwards.
//!
//! Usage: `cargo run --release -p runledger-bench -- ingest [--postgres URL] [--clients 4]
//! [--requests 40] [--runs-per-request 100] [--steps-per-run 20]`

use std::time::{Duration, Instant};

use clap::Parser;
use runledger::app::{self, AppState, HttpSettings};
use runledger::db::Db;
use runledger::domain::Role;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "runledger ingest benchmark")]
struct Args {
    /// What to measure.
    #[arg(value_parser = ["ingest"])]
    what: String,
    /// PostgreSQL server URL; a fresh database is created on it (SQLite runs too).
    #[arg(long, env = "RUNLEDGER_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Mutations per client.
    #[arg(long, default_value_t = 10)]
    requests: usize,
    /// Runs per mutation.
    #[arg(long, default_value_t = 100)]
    runs_per_request: usize,
    /// Steps per run.
    #[arg(long, default_value_t = 20)]
    steps_per_run: usize,
}

const MUTATION: &str = "mutation($runs: [RunInput!]!) { ingestRuns(runs: $runs) { storedCount } }";

fn batch(client: usize, request: usize, args: &Args) -> Value {
    let base = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    let runs: Vec<Value> = (0..args.runs_per_request)
        .map(|r| {
            let id = format!("c{client}-q{request}-r{r}");
            let start = base + chrono::Duration::milliseconds(((client * 1000 + request) * 1000 + r) as i64);
            let steps: Vec<Value> = (0..args.steps_per_run)
                .map(|s| {
                    json!({
                        "stepIndex": s,
                        "timestamp": (start + chrono::Duration::milliseconds(s as i64 * 10)).to_rfc3339(),
                        "skillName": if s % 3 == 0 { "call_llm" } else { "tool:web_search" },
                        "status": "SUCCEEDED", "outcomeCategory": "SUCCESS",
                        "costCents": 1, "durationMs": 10
                    })
                })
                .collect();
            json!({
                "runId": id, "traceId": format!("trace-{id}"), "provider": "openai", "model": "gpt-4o",
                "inputTokens": 1000, "outputTokens": 200, "costCents": args.steps_per_run,
                "executionStatus": "SUCCEEDED", "startedAt": start.to_rfc3339(),
                "completedAt": (start + chrono::Duration::seconds(5)).to_rfc3339(),
                "agentId": "bench-agent", "steps": steps
            })
        })
        .collect();
    json!({"query": MUTATION, "variables": {"runs": runs}})
}

struct Outcome {
    backend: &'static str,
    steps: usize,
    elapsed: Duration,
    queryable: i64,
}

async fn run_backend(backend: &'static str, url: &str, args: &Args) -> Result<Outcome, String> {
    let db = Db::connect(url, 16).await.map_err(|e| e.describe())?;
    db.migrate().await.map_err(|e| e.describe())?;
    runledger::auth::ensure_tenant(&db, "bench", "Bench", &[])
        .await
        .map_err(|e| e.describe())?;
    let (ingest_key, _) = runledger::auth::create_key(&db, "bench", Role::Ingest, None, None)
        .await
        .map_err(|e| e.describe())?;
    let (read_key, _) = runledger::auth::create_key(&db, "bench", Role::Viewer, None, None)
        .await
        .map_err(|e| e.describe())?;
    let settings = HttpSettings {
        max_body_bytes: 64 << 20,
        ..HttpSettings::default()
    };
    let router = app::router(AppState::new(db, settings));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = format!(
        "http://{}/graphql",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    // Bodies are built before the clock starts.
    let bodies: Vec<Vec<String>> = (0..args.clients)
        .map(|c| {
            (0..args.requests)
                .map(|r| batch(c, r, args).to_string())
                .collect()
        })
        .collect();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for requests in bodies {
        let client = client.clone();
        let address = address.clone();
        let key = ingest_key.clone();
        tasks.push(tokio::spawn(async move {
            for body in requests {
                let resp = client
                    .post(&address)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let v: Value = resp.json().await.map_err(|e| e.to_string())?;
                if v.get("errors").is_some() {
                    return Err(v.to_string());
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed();
    let v: Value = client
        .post(&address)
        .bearer_auth(&read_key)
        .json(&json!({"query": "{ llmRuns { totalCount } }"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let runs = v["data"]["llmRuns"]["totalCount"].as_i64().unwrap_or(-1);
    Ok(Outcome {
        backend,
        steps: args.clients * args.requests * args.runs_per_request * args.steps_per_run,
        elapsed,
        queryable: runs * args.steps_per_run as i64,
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("runledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let mut outcomes = vec![run_backend("sqlite", &sqlite, &args).await?];
    if let Some(server) = &args.postgres {
        let name = format!("runledger_bench_{}", std::process::id());
        let admin = Database::connect(server).await.map_err(|e| e.to_string())?;
        let backend = admin.get_database_backend();
        admin
            .execute_raw(Statement::from_string(
                backend,
                format!("CREATE DATABASE {name}"),
            ))
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "{}/{name}",
            server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b)
        );
        let outcome = run_backend("postgres", &url, &args).await;
        admin
            .execute_raw(Statement::from_string(
                backend,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ))
            .await
            .map_err(|e| e.to_string())?;
        outcomes.push(outcome?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "ingest: {} clients x {} mutations x {} runs x {} steps",
        args.clients, args.requests, args.runs_per_request, args.steps_per_run
    );
    println!("| backend | steps | seconds | steps/s | queryable |");
    println!("|---|---|---|---|---|");
    for o in outcomes {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} |",
            o.backend,
            o.steps,
            o.elapsed.as_secs_f64(),
            o.steps as f64 / o.elapsed.as_secs_f64(),
            if o.queryable == o.steps as i64 {
                "all".to_string()
            } else {
                format!("{} of {}", o.queryable, o.steps)
            }
        );
    }
    Ok(())
}
