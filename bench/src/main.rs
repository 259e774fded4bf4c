//! Ingest throughput over real HTTP, on SQLite and PostgreSQL: concurrent clients send batches
//! of runs with their steps, either as GraphQL `ingestRuns` mutations (`ingest`) or as OTLP/HTTP
//! protobuf trace exports (`otlp`, one root span per run and one child span per step). Reports
//! steps per second persisted (a request is acknowledged only after its commit) and checks that
//! every run is queryable afterwards.
//!
//! Usage: `cargo run --release -p runledger-bench -- ingest|otlp [--postgres URL]
//! [--clients 4] [--requests 10] [--runs-per-request 100] [--steps-per-run 20]`
//!
//! `queries` runs the dashboard mix Q1–Q5 side by side with PostGraphile and the pgbench floor,
//! and the scaling check (see `queries.rs`); it writes its report into BENCHMARKS.md:
//! `cargo run --release -p runledger-bench -- queries [--scale full|smoke] [--postgres URL]
//! [--clients 16] [--seconds 10] [--no-peer] [--no-write]`
//!
//! `reads` measures the dashboard queries with access recording on and off (see `reads.rs`):
//! `cargo run --release -p runledger-bench -- reads [--postgres URL] [--clients 16]
//! [--requests 200]`
//!
//! `stats` measures the dashboards' aggregates on a 10,000-run and a 1,000,000-run tenant beside
//! PostGraphile with `@graphile/pg-aggregates` (see `stats.rs`) and writes its report into
//! BENCHMARKS.md: `cargo run --release -p runledger-bench -- stats [--postgres URL]
//! [--clients 16] [--seconds 10] [--no-peer] [--no-write] [--seed-only]`
//!
//! `live` measures live subscriptions: 1,000 websocket subscribers following traces while steps
//! are written at 1,000/s and the query mix runs (see `live.rs`); it writes its report into
//! BENCHMARKS.md: `cargo run --release -p runledger-bench -- live [--postgres URL]
//! [--subscribers 1000] [--rate 1000] [--clients 16] [--seconds 10] [--no-write]`
//!
//! `ledger` measures the audit ledger instead (see `ledger.rs`):
//! `cargo run --release -p runledger-bench -- ledger [--postgres URL] [--appends 20000]
//! [--entries 1000000]`

mod compare;
mod dataset;
mod floor;
mod ledger;
mod live;
mod load;
mod peer;
mod procs;
mod queries;
mod reads;
mod stats;

use std::time::{Duration, Instant};

use clap::Parser;
use runledger::db::Db;
use runledger::domain::Role;
use runledger::http::HttpSettings;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "runledger ingest benchmark")]
struct Args {
    /// What to measure: `ingest` (GraphQL mutations) or `otlp` (OTLP/HTTP protobuf).
    #[arg(value_parser = ["ingest", "otlp", "ledger", "reads", "queries", "compare", "drive", "stats", "live"])]
    what: String,
    /// PostgreSQL server URL; a fresh database is created on it (SQLite runs too).
    #[arg(long, env = "RUNLEDGER_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Concurrent HTTP clients (default 16 for `queries` and `reads`, 4 otherwise).
    #[arg(long)]
    clients: Option<usize>,
    /// Mutations per client.
    #[arg(long, default_value_t = 10)]
    requests: usize,
    /// Runs per mutation.
    #[arg(long, default_value_t = 100)]
    runs_per_request: usize,
    /// Steps per run.
    #[arg(long, default_value_t = 20)]
    steps_per_run: usize,
    /// `ledger`: appends per writer count (1, 16, 64 writers).
    #[arg(long, default_value_t = 20_000)]
    appends: u64,
    /// `ledger`: size of the ledger that is verified.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// `queries`, `compare`: the dataset, `full` (issue 6's), `mid` (its 10,000-run tenants
    /// only) or `smoke` (the same shape, small).
    #[arg(long, default_value = "full", value_parser = ["full", "mid", "smoke"])]
    scale: String,
    /// `compare`: the other build's `runledger` binary.
    #[arg(long)]
    baseline: Option<std::path::PathBuf>,
    /// `compare`: rounds per query and build.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// `queries`: seconds of load per query (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// `queries`: seconds of warm-up per query.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// `queries`: skip PostGraphile.
    #[arg(long)]
    no_peer: bool,
    /// `queries`: print the report only, do not write it into BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,
    /// `queries`: the backends to measure runledger on (the peer and the floor need postgres).
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite", value_parser = ["postgres", "sqlite"])]
    backends: Vec<String>,
    /// `queries`: only make sure the datasets are seeded.
    #[arg(long)]
    seed_only: bool,
    /// `live`: websocket subscribers, each following a trace of its own.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// `live`: steps written per second over the subscribers' traces.
    #[arg(long, default_value_t = 1000)]
    rate: usize,
    /// `drive`: the GraphQL endpoint to load (for profiling a running server).
    #[arg(long)]
    url: Option<String>,
    /// `drive`: bearer key.
    #[arg(long)]
    key: Option<String>,
    /// `drive`: the query document; `$id` takes the values of `--ids`.
    #[arg(long)]
    query: Option<String>,
    /// `drive`: run ids for `$id`.
    #[arg(long, value_delimiter = ',')]
    ids: Vec<String>,
}

fn ingest_clients(args: &Args) -> usize {
    args.clients.unwrap_or(4)
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

/// One OTLP export: per run a root span and `steps_per_run` child spans.
fn otlp_batch(client: usize, request: usize, args: &Args) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let kv = |k: &str, v: any_value::Value| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let base: u64 = 1_780_000_000_000_000_000;
    let mut spans = Vec::new();
    for r in 0..args.runs_per_request {
        // Distinct and non-zero ids; runs 1 ms apart, all in the past.
        let n = ((client * 1000 + request) * 10_000 + r) as u64 + 1;
        let trace_id = n.to_be_bytes().repeat(2);
        let root_id = (n * 1000 + 1).to_be_bytes().to_vec();
        let start = base + n * 1_000_000;
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: root_id.clone(),
            name: "invoke_agent bench".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 900_000_000,
            attributes: vec![
                kv(
                    "gen_ai.provider.name",
                    any_value::Value::StringValue("openai".into()),
                ),
                kv(
                    "gen_ai.request.model",
                    any_value::Value::StringValue("gpt-4o".into()),
                ),
                kv(
                    "gen_ai.usage.input_tokens",
                    any_value::Value::IntValue(1000),
                ),
            ],
            ..Default::default()
        });
        for s in 0..args.steps_per_run {
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id: (n * 1000 + 2 + s as u64).to_be_bytes().to_vec(),
                parent_span_id: root_id.clone(),
                name: if s % 3 == 0 {
                    "chat gpt-4o".into()
                } else {
                    "execute_tool web_search".into()
                },
                start_time_unix_nano: start + s as u64 * 10_000_000,
                end_time_unix_nano: start + s as u64 * 10_000_000 + 5_000_000,
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Steps in the database, counted by SQL (not through the code under measure).
async fn stored_steps(db: &Db) -> Result<i64, String> {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(
            db.backend(),
            "SELECT COUNT(*) FROM trace_steps".to_string(),
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?;
    row.try_get_by_index::<i64>(0).map_err(|e| e.to_string())
}

struct Outcome {
    backend: &'static str,
    steps: usize,
    elapsed: Duration,
    queryable: i64,
}

async fn run_backend(backend: &'static str, db: Db, args: &Args) -> Result<Outcome, String> {
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
    let base = reads::serve_base(&db, settings).await?;
    let address = format!("{base}/graphql");
    let otlp = args.what == "otlp";
    let target = if otlp {
        format!("{base}/v1/traces")
    } else {
        address.clone()
    };

    // Bodies are built before the clock starts.
    let bodies: Vec<Vec<Vec<u8>>> = (0..ingest_clients(args))
        .map(|c| {
            (0..args.requests)
                .map(|r| {
                    if otlp {
                        otlp_batch(c, r, args)
                    } else {
                        batch(c, r, args).to_string().into_bytes()
                    }
                })
                .collect()
        })
        .collect();
    let content_type = if otlp {
        "application/x-protobuf"
    } else {
        "application/json"
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for requests in bodies {
        let client = client.clone();
        let address = target.clone();
        let key = ingest_key.clone();
        tasks.push(tokio::spawn(async move {
            for body in requests {
                let resp = client
                    .post(&address)
                    .bearer_auth(&key)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
                // OTLP answers 200 with a partial success when it refused spans: a failure here.
                let refused = otlp
                    && <opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse as prost::Message>::decode(bytes.as_ref())
                        .map_or(true, |r| r.partial_success.is_some_and(|p| p.rejected_spans > 0));
                let failed = refused
                    || !status.is_success()
                    || (!otlp
                        && serde_json::from_slice::<Value>(&bytes)
                            .map_or(true, |v| v.get("errors").is_some()));
                if failed {
                    return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed();
    let target = load::Target {
        url: address.clone(),
        bearer: Some(read_key.clone()),
    };
    let data = load::ask(&target, &json!({"query": "{ llmRuns { totalCount } }"})).await?;
    let runs = data["llmRuns"]["totalCount"].as_i64().unwrap_or(-1);
    Ok(Outcome {
        backend,
        steps: ingest_clients(args) * args.requests * args.runs_per_request * args.steps_per_run,
        elapsed,
        queryable: if runs == (ingest_clients(args) * args.requests * args.runs_per_request) as i64
        {
            stored_steps(&db).await?
        } else {
            -1
        },
    })
}

/// A fresh database on the PostgreSQL server: (admin connection, name, URL).
async fn create_postgres(
    server: &str,
) -> Result<(sea_orm::DatabaseConnection, String, String), String> {
    let name = format!("runledger_bench_{}", std::process::id());
    let admin = Database::connect(server).await.map_err(|e| e.to_string())?;
    admin
        .execute_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("CREATE DATABASE {name}"),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "{}/{name}",
        server.rsplit_once('/').map_or(server, |(b, _)| b)
    );
    Ok((admin, name, url))
}

async fn drop_postgres(admin: &sea_orm::DatabaseConnection, name: &str) -> Result<(), String> {
    admin
        .execute_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs `bench` on a fresh, migrated database of each backend: the SQLite file `sqlite`, then,
/// when a server is given, a PostgreSQL database created for the run and dropped after it.
async fn on_each_backend<T, F, Fut>(
    sqlite: &str,
    postgres: Option<&str>,
    mut bench: F,
) -> Result<Vec<(&'static str, T)>, String>
where
    F: FnMut(&'static str, Db) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut out = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let (url, pg) = match (backend, postgres) {
            ("sqlite", _) => (sqlite.to_string(), None),
            (_, Some(server)) => {
                let (admin, name, url) = create_postgres(server).await?;
                (url, Some((admin, name)))
            }
            (_, None) => continue,
        };
        let outcome = async {
            let db = Db::connect(&url, 16).await.map_err(|e| e.describe())?;
            db.migrate().await.map_err(|e| e.describe())?;
            let outcome = bench(backend, db.clone()).await;
            db.conn.close_by_ref().await.map_err(|e| e.to_string())?;
            outcome
        }
        .await;
        if let Some((admin, name)) = pg {
            drop_postgres(&admin, &name).await?;
        }
        out.push((backend, outcome?));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("runledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let postgres = args.postgres.as_deref();
    if args.what == "drive" {
        let target = load::Target {
            url: args.url.clone().ok_or("--url is required")?,
            bearer: args.key.clone(),
        };
        let query = args.query.clone().ok_or("--query is required")?;
        let ids = if args.ids.is_empty() {
            vec![String::new()]
        } else {
            args.ids.clone()
        };
        let bodies: Vec<Value> = ids
            .iter()
            .map(|id| json!({"query": query, "variables": {"id": id}}))
            .collect();
        let l = load::drive(
            &target,
            &bodies,
            args.clients.unwrap_or(16),
            Duration::from_secs(args.seconds),
        )
        .await?;
        println!(
            "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms",
            l.per_second(),
            l.p50.as_secs_f64() * 1000.0,
            l.p99.as_secs_f64() * 1000.0
        );
        return Ok(());
    }
    if args.what == "live" {
        let opts = live::Options {
            subscribers: args.subscribers.max(1),
            rate: args.rate.max(1),
            clients: args.clients.unwrap_or(16),
            duration: Duration::from_secs(args.seconds),
        };
        let outcomes = on_each_backend(&sqlite, postgres, |backend, db| {
            let opts = &opts;
            async move { live::measure(backend, db, opts).await }
        })
        .await?;
        let report = live::report(&opts, &outcomes);
        println!("{report}");
        if !args.no_write {
            queries::write_section("live", &report)?;
        }
        return Ok(());
    }
    if args.what == "stats" {
        let opts = stats::Options {
            postgres_server: args
                .postgres
                .clone()
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            clients: args.clients.unwrap_or(16),
            duration: Duration::from_secs(args.seconds),
            warmup: Duration::from_secs(args.warmup_seconds),
            peer: !args.no_peer,
            backends: args.backends.clone(),
            seed_only: args.seed_only,
        };
        let report = stats::run(opts).await?;
        let _ = std::fs::remove_dir_all(&dir);
        println!("{report}");
        if !args.no_write && !args.seed_only {
            queries::write_section("stats", &report)?;
        }
        return Ok(());
    }
    if args.what == "queries" || args.what == "compare" {
        let opts = queries::Options {
            scale: compare::scale(&args.scale),
            postgres_server: args
                .postgres
                .clone()
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            clients: args.clients.unwrap_or(16),
            duration: Duration::from_secs(args.seconds),
            warmup: Duration::from_secs(args.warmup_seconds),
            peer: !args.no_peer,
            backends: args.backends.clone(),
        };
        if args.seed_only {
            queries::seed(&opts).await?;
            return Ok(());
        }
        if args.what == "compare" {
            let baseline = args
                .baseline
                .clone()
                .ok_or("compare needs --baseline <the other build's runledger binary>")?;
            let report = compare::run(compare::Compare {
                baseline,
                rounds: args.rounds,
                options: opts,
            })
            .await?;
            println!("{report}");
            return Ok(());
        }
        let report = queries::run(opts).await?;
        let _ = std::fs::remove_dir_all(&dir);
        println!("{report}");
        if !args.no_write {
            queries::write_report(&report)?;
        }
        return Ok(());
    }
    if args.what == "reads" {
        let lines = on_each_backend(&sqlite, postgres, |_, db| async move {
            reads::run(&db, args.clients.unwrap_or(16), args.requests).await
        })
        .await?;
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "reads: {} clients x {} requests, twice per setting",
            args.clients.unwrap_or(16),
            args.requests
        );
        println!("| backend | recording | requests | seconds | req/s | on / off |");
        println!("|---|---|---|---|---|---|");
        for (backend, r) in lines {
            let rate = |x: &reads::Reads| x.requests as f64 / x.elapsed.as_secs_f64();
            let ratio = rate(&r[1]) / rate(&r[0]);
            for x in &r {
                println!(
                    "| {backend} | {} | {} | {:.2} | {:.0} | {} |",
                    if x.recording { "on" } else { "off" },
                    x.requests,
                    x.elapsed.as_secs_f64(),
                    rate(x),
                    if x.recording {
                        format!("{ratio:.2}")
                    } else {
                        String::new()
                    }
                );
            }
        }
        return Ok(());
    }
    if args.what == "ledger" {
        let figures: Vec<ledger::Figure> =
            on_each_backend(&sqlite, postgres, |backend, db| async move {
                ledger::run(backend, &db, args.appends, args.entries).await
            })
            .await?
            .into_iter()
            .flat_map(|(_, f)| f)
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        println!("| backend | measured | count | seconds | per second | |");
        println!("|---|---|---|---|---|---|");
        for f in figures {
            println!(
                "| {} | {} | {} | {:.2} | {:.0} | {} |",
                f.backend,
                f.what,
                f.count,
                f.elapsed.as_secs_f64(),
                f.count as f64 / f.elapsed.as_secs_f64(),
                f.note
            );
        }
        return Ok(());
    }
    let outcomes: Vec<Outcome> = on_each_backend(&sqlite, postgres, |backend, db| {
        run_backend(backend, db, &args)
    })
    .await?
    .into_iter()
    .map(|(_, o)| o)
    .collect();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}: {} clients x {} requests x {} runs x {} steps",
        args.what,
        ingest_clients(&args),
        args.requests,
        args.runs_per_request,
        args.steps_per_run
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
