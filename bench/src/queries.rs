//! The dashboard query mix Q1–Q5 of issue 6 against runledger alone (the side-by-side with
//! PostGraphile and the pgbench floor is not built yet): for each query, concurrent clients
//! over HTTP, requests per second, p50 and p99 latency, and SQL statements per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runledger::app::HttpSettings;
use runledger::db::Db;
use runledger::seed::SeedOptions;

use crate::reads;

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
    let (key, run_ids) = reads::seed_tenant(&db, "mix", &opts).await?;
    let url = reads::serve(&db, HttpSettings::default()).await?;
    let mut out = Vec::new();
    for (name, query) in MIX {
        // Warm-up, then the measured run.
        reads::drive(&url, &key, &[query], &run_ids, clients, 5).await?;
        let before = statements.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut latencies =
            reads::drive(&url, &key, &[query], &run_ids, clients, per_client).await?;
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
