//! Live subscriptions under load: `runledger serve` (this build, a child process) with
//! `subscribers` websocket clients (graphql-transport-ws), each following its own trace
//! (`traceStepAdded`), while steps are written at `rate` per second spread over those traces and
//! 16 clients run the dashboard query mix. Reports:
//!
//! - delivery latency, from the write's acknowledgement (its commit is before it) to the
//!   event's arrival at the client, p50/p99 over every delivery;
//! - the server's resident memory per idle subscriber (VmRSS after every subscriber received
//!   one event and went quiet, minus VmRSS before they connected, over their number);
//! - the query mix's throughput with the subscribers and the writes, as a ratio to the writes
//!   alone and to the mix alone, measured in the same run.
//!
//! The load generator, the subscribers and the server share the machine's cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use runledger::db::Db;
use runledger::domain::Role;
use runledger::seed::SeedOptions;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::load::{self, Load, Target};
use crate::{procs, reads};

pub struct Options {
    pub subscribers: usize,
    pub rate: usize,
    pub clients: usize,
    pub duration: Duration,
}

/// What one backend measured.
pub struct Outcome {
    pub mix_alone: Load,
    pub mix_with_writes: Load,
    pub mix_with_subscribers: Load,
    pub written_per_second: f64,
    pub delivered: usize,
    pub expected: usize,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    pub write_p50: Duration,
    pub idle_bytes_per_subscriber: f64,
    pub marginal_bytes_per_subscriber: f64,
    pub peak_memory: u64,
}

/// Commits per second of the writer; each carries `rate / BATCHES` steps.
const BATCHES: usize = 20;
/// Subscriptions per API key (the server's default cap is 100 per key).
const PER_KEY: usize = 100;

const SUBSCRIPTION: &str = "subscription($trace: String!, $after: String) {
    traceStepAdded(traceId: $trace, after: $after) { cursor step { stepIndex skillName } } }";

/// The writer: `rate` steps a second over the traces, in `BATCHES` commits a second, until
/// `stop`; returns each batch's acknowledgement time and the write latencies.
async fn write_steps(
    target: Target,
    traces: usize,
    rate: usize,
    first_batch: usize,
    next_index: Arc<Vec<AtomicUsize>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(Vec<Instant>, Vec<Duration>, Duration), String> {
    let client = reqwest::Client::new();
    let per_batch = (rate / BATCHES).max(1);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / BATCHES as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut acks, mut writes) = (Vec::new(), Vec::new());
    let mut trace = 0usize;
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let batch = first_batch + acks.len();
        let steps: Vec<Value> = (0..per_batch)
            .map(|_| {
                trace = (trace + 1) % traces;
                let index = next_index[trace].fetch_add(1, Ordering::SeqCst);
                json!({"traceId": format!("live-{trace}"), "stepIndex": index,
                       "timestamp": "2026-06-01T00:00:00Z", "skillName": format!("b{batch}"),
                       "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"})
            })
            .collect();
        let sent = Instant::now();
        let answer = load::post(
            &client,
            &target,
            &json!({"query": "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }",
                    "variables": {"s": steps}}),
        )
        .await?;
        if answer.get("errors").is_some() {
            return Err(format!("the writer's batch failed: {answer}"));
        }
        acks.push(Instant::now());
        writes.push(sent.elapsed());
    }
    Ok((acks, writes, started.elapsed()))
}

/// What a wave's subscribers share: counters of those that received an event and of the
/// events, the handshake limit, and the stop signal.
#[derive(Clone)]
struct Shared {
    received_one: Arc<AtomicUsize>,
    delivered: Arc<AtomicUsize>,
    handshakes: Arc<tokio::sync::Semaphore>,
    stop: watch::Receiver<bool>,
}

/// One subscriber: follows `trace`, records (batch, arrival) of every event until `stop`.
async fn subscribe(
    ws_url: String,
    key: String,
    trace: usize,
    after: String,
    shared: Shared,
) -> Result<Vec<(usize, Instant)>, String> {
    let Shared {
        received_one,
        delivered: delivered_total,
        handshakes,
        mut stop,
    } = shared;
    // A few handshakes at a time, as clients arriving over a moment would.
    let permit = handshakes
        .acquire_owned()
        .await
        .map_err(|e| e.to_string())?;
    let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().map_err(|_| "header")?,
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("subscriber {trace}: {e}"))?;
    let send = |v: Value| Message::text(v.to_string());
    socket
        .send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}})))
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send(send(json!({"id": "1", "type": "subscribe", "payload": {
            "query": SUBSCRIPTION, "variables": {"trace": format!("live-{trace}"), "after": after}}})))
        .await
        .map_err(|e| e.to_string())?;
    drop(permit);
    let mut arrivals = Vec::new();
    loop {
        let message = tokio::select! {
            m = socket.next() => m,
            _ = stop.changed() => break,
        };
        let Some(Ok(message)) = message else {
            return Err(format!(
                "subscriber {trace}: the server closed the connection"
            ));
        };
        let Message::Text(text) = message else {
            continue;
        };
        let at = Instant::now();
        let v: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
        match v["type"].as_str() {
            Some("next") => {
                if v["payload"].get("errors").is_some() {
                    return Err(format!("subscriber {trace}: {v}"));
                }
                let skill = v["payload"]["data"]["traceStepAdded"]["step"]["skillName"]
                    .as_str()
                    .unwrap_or_default();
                let batch: usize = skill.trim_start_matches('b').parse().unwrap_or(usize::MAX);
                if arrivals.is_empty() {
                    received_one.fetch_add(1, Ordering::SeqCst);
                }
                delivered_total.fetch_add(1, Ordering::SeqCst);
                arrivals.push((batch, at));
            }
            Some("connection_ack") | Some("pong") => {}
            Some("ping") => {
                let _ = socket.send(send(json!({"type": "pong"}))).await;
            }
            _ => return Err(format!("subscriber {trace}: {v}")),
        }
    }
    let _ = socket.close(None).await;
    Ok(arrivals)
}

/// What opening a wave of subscribers needs.
struct Wave<'a> {
    ws_url: &'a str,
    reader: &'a Target,
    writer: &'a Target,
    viewers: &'a [String],
    next_index: &'a Arc<Vec<AtomicUsize>>,
}

/// A subscriber's task: the (batch, arrival) of every event it received.
type Subscriber = tokio::task::JoinHandle<Result<Vec<(usize, Instant)>, String>>;

/// A wave of subscribers, each recording its arrivals until `stop`.
struct Opened {
    tasks: Vec<Subscriber>,
    stop: watch::Sender<bool>,
    delivered: Arc<AtomicUsize>,
}

impl Wave<'_> {
    /// Connects one subscriber per trace of `traces`, from the position now; returns once each
    /// received one event (a step written to its trace) and the server went quiet again.
    async fn open(&self, traces: std::ops::Range<usize>) -> Result<Opened, String> {
        let cursor =
            load::ask(self.reader, &json!({"query": "{ liveCursor }"})).await?["liveCursor"]
                .as_str()
                .ok_or("no liveCursor")?
                .to_string();
        let count = traces.len();
        let received_one = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(AtomicUsize::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let shared = Shared {
            received_one: received_one.clone(),
            delivered: delivered.clone(),
            handshakes: Arc::new(tokio::sync::Semaphore::new(64)),
            stop: stop_rx,
        };
        let mut tasks = Vec::new();
        for trace in traces.clone() {
            tasks.push(tokio::spawn(subscribe(
                self.ws_url.to_string(),
                self.viewers[trace / PER_KEY].clone(),
                trace,
                cursor.clone(),
                shared.clone(),
            )));
        }
        let client = reqwest::Client::new();
        let probe: Vec<Value> = traces
            .map(|trace| {
                let index = self.next_index[trace].fetch_add(1, Ordering::SeqCst);
                json!({"traceId": format!("live-{trace}"), "stepIndex": index,
                       "timestamp": "2026-06-01T00:00:00Z", "skillName": "probe",
                       "status": "SUCCEEDED", "outcomeCategory": "SUCCESS"})
            })
            .collect();
        for chunk in probe.chunks(500) {
            load::post(
                &client,
                self.writer,
                &json!({"query": "mutation($s: [TraceStepInput!]!) { ingestTraceSteps(steps: $s) { storedCount } }",
                        "variables": {"s": chunk}}),
            )
            .await?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while received_one.load(Ordering::SeqCst) < count {
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {count} subscribers received their first event within 2 minutes",
                    received_one.load(Ordering::SeqCst),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Idle: nothing written for a moment (the subscriptions' first records are committed).
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(Opened {
            tasks,
            stop,
            delivered,
        })
    }
}

fn mix(run_ids: &[String]) -> Vec<Value> {
    run_ids
        .iter()
        .take(64)
        .enumerate()
        .map(|(i, id)| {
            json!({"query": reads::QUERIES[i % reads::QUERIES.len()], "variables": {"id": id}})
        })
        .collect()
}

/// Measures one backend on `db` (fresh and migrated).
pub async fn measure(backend: &str, db: Db, opts: &Options) -> Result<Outcome, String> {
    eprintln!("live {backend}: seeding");
    let seed = SeedOptions {
        tenants: 1,
        runs: 2_000,
        steps_per_run: 20,
        telemetry_percent: 10,
        seed: 1,
    };
    let (auditor, run_ids) = reads::seed_tenant(&db, "live", &seed).await?;
    let ingest = runledger::auth::create_key(&db, "live", Role::Ingest, None, None)
        .await
        .map_err(|e| e.describe())?
        .0;
    let mut viewers = Vec::new();
    for _ in 0..(2 * opts.subscribers).div_ceil(PER_KEY) {
        viewers.push(
            runledger::auth::create_key(&db, "live", Role::Viewer, None, None)
                .await
                .map_err(|e| e.describe())?
                .0,
        );
    }
    let log = std::env::temp_dir().join(format!("runledger-bench-live-{backend}.log"));
    let server = procs::start_runledger_with(
        &procs::runledger_binary()?,
        db.url(),
        &reads::key_file(),
        &log,
        &["--log-name", reads::LOG_NAME],
    )
    .await?;
    let graphql = format!("{}/graphql", server.base);
    let reader = Target {
        url: graphql.clone(),
        bearer: Some(auditor),
    };
    let writer = Target {
        url: graphql.clone(),
        bearer: Some(ingest),
    };
    let bodies = mix(&run_ids);
    let warmup = Duration::from_secs(2);

    eprintln!("live {backend}: the query mix alone");
    load::drive(&reader, &bodies, opts.clients, warmup).await?;
    let mix_alone = load::drive(&reader, &bodies, opts.clients, opts.duration).await?;

    let next_index: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..2 * opts.subscribers)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    eprintln!(
        "live {backend}: the query mix with {} steps/s written",
        opts.rate
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let writing = tokio::spawn(write_steps(
        writer.clone(),
        opts.subscribers,
        opts.rate,
        0,
        next_index.clone(),
        stop_rx,
    ));
    load::drive(&reader, &bodies, opts.clients, warmup).await?;
    let mix_with_writes = load::drive(&reader, &bodies, opts.clients, opts.duration).await?;
    let _ = stop_tx.send(true);
    let (first_acks, _, _) = writing.await.map_err(|e| e.to_string())??;

    // The subscribers connect, all from one cursor, and each receives one event; then a
    // second wave as large, measured the same way and closed again: the first wave's
    // figure includes what the server keeps once warmed up (allocator arenas, caches), the
    // second's is what one more idle subscriber costs.
    let ws_url = graphql.replacen("http://", "ws://", 1);
    let wave = Wave {
        ws_url: &ws_url,
        reader: &reader,
        writer: &writer,
        viewers: &viewers,
        next_index: &next_index,
    };
    let rss_before = server.resident_memory()?;
    eprintln!("live {backend}: {} subscribers connect", opts.subscribers);
    let first = wave.open(0..opts.subscribers).await?;
    let rss_first = server.resident_memory()?;
    eprintln!(
        "live {backend}: {} more subscribers connect",
        opts.subscribers
    );
    let second = wave.open(opts.subscribers..2 * opts.subscribers).await?;
    let rss_second = server.resident_memory()?;
    let _ = second.stop.send(true);
    for s in second.tasks {
        s.await.map_err(|e| e.to_string())??;
    }
    let per = |after: u64, before: u64| (after as f64 - before as f64) / opts.subscribers as f64;
    let idle_bytes_per_subscriber = per(rss_first, rss_before);
    let marginal_bytes_per_subscriber = per(rss_second, rss_first);
    let Opened {
        tasks: subscribers,
        stop: stop_tx,
        delivered: delivered_total,
    } = first;

    eprintln!("live {backend}: the query mix with writes and subscribers");
    let (stop_writes_tx, stop_writes_rx) = watch::channel(false);
    let first_batch = first_acks.len() + 1_000_000;
    let writing = tokio::spawn(write_steps(
        writer.clone(),
        opts.subscribers,
        opts.rate,
        first_batch,
        next_index.clone(),
        stop_writes_rx,
    ));
    load::drive(&reader, &bodies, opts.clients, warmup).await?;
    let mix_with_subscribers = load::drive(&reader, &bodies, opts.clients, opts.duration).await?;
    let _ = stop_writes_tx.send(true);
    let (acks, writes, writing_time) = writing.await.map_err(|e| e.to_string())??;
    let expected = acks.len() * (opts.rate / BATCHES).max(1);
    // Let the last deliveries arrive (a missing one shows as delivered < written).
    let settle = Instant::now() + Duration::from_secs(30);
    while delivered_total.load(Ordering::SeqCst) < opts.subscribers + expected
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    for s in subscribers {
        for (batch, at) in s.await.map_err(|e| e.to_string())?? {
            if batch >= first_batch
                && let Some(ack) = acks.get(batch - first_batch)
            {
                latencies.push(at.saturating_duration_since(*ack));
            }
        }
    }
    let peak_memory = server.peak_memory()?;
    server.stop()?;
    let delivered = latencies.len();
    let lat = Load::from_latencies(latencies.clone(), writing_time);
    let write = Load::from_latencies(writes, writing_time);
    Ok(Outcome {
        mix_alone,
        mix_with_writes,
        mix_with_subscribers,
        written_per_second: expected as f64 / writing_time.as_secs_f64(),
        delivered,
        expected,
        latency_p50: lat.p50,
        latency_p99: lat.p99,
        latency_max: latencies.iter().max().copied().unwrap_or_default(),
        write_p50: write.p50,
        idle_bytes_per_subscriber,
        marginal_bytes_per_subscriber,
        peak_memory,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The BENCHMARKS.md section of `outcomes`.
pub fn report(opts: &Options, outcomes: &[(&str, Outcome)]) -> String {
    let mut out = format!(
        "Generated by `cargo run --release -p runledger-bench -- live --subscribers {} --rate {} \
         --clients {} --seconds {}` on {} (one run; do not edit by hand).\n\nMachine: {}.\n\n\
         `runledger serve` as shipped (a child process, recording on) over a tenant seeded with \
         2,000 runs of 20 steps. {} websocket clients (graphql-transport-ws, tokio-tungstenite), \
         each following its own trace with `traceStepAdded`, 100 per API key; a writer commits \
         {} steps a second over those traces in {} `ingestTraceSteps` mutations a second; {} \
         clients run the dashboard mix (`reads` Q1–Q4) meanwhile. Latency: from the write's \
         acknowledgement (its commit precedes it) to the event's arrival at its subscriber, over \
         every delivery. Memory: the server's VmRSS once every subscriber received one event and \
         went quiet, minus VmRSS before they connected, per subscriber; then the same for a second \
         wave as large (closed again before the latency phase): the first wave's figure includes \
         what a server keeps once it has served subscribers at all (allocator arenas, buffers), \
         the second's is what one more idle subscriber costs. The load generator, the \
         subscribers and the server share the machine's two cores.\n\n",
        opts.subscribers,
        opts.rate,
        opts.clients,
        opts.duration.as_secs(),
        chrono::Utc::now().format("%Y-%m-%d"),
        crate::queries::machine(),
        opts.subscribers,
        opts.rate,
        BATCHES,
        opts.clients
    );
    out.push_str(
        "| backend | steps written/s | delivered / written | delivery p50 ms | p99 ms | max ms | write p50 ms | KB per idle subscriber, first / second wave | mix req/s alone | with writes | with writes + subscribers | ratio to writes alone | ratio to alone | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (backend, o) in outcomes {
        out.push_str(&format!(
            "| {backend} | {:.0} | {} / {} | {} | {} | {} | {} | {:.1} / {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} |\n",
            o.written_per_second,
            o.delivered,
            o.expected,
            ms(o.latency_p50),
            ms(o.latency_p99),
            ms(o.latency_max),
            ms(o.write_p50),
            o.idle_bytes_per_subscriber / 1024.0,
            o.marginal_bytes_per_subscriber / 1024.0,
            o.mix_alone.per_second(),
            o.mix_with_writes.per_second(),
            o.mix_with_subscribers.per_second(),
            o.mix_with_subscribers.per_second() / o.mix_with_writes.per_second(),
            o.mix_with_subscribers.per_second() / o.mix_alone.per_second(),
            o.peak_memory as f64 / 1_048_576.0,
        ));
    }
    out.push('\n');
    out
}
