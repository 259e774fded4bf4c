//! `stats`: the dashboards' aggregates (issue 18) on a 10,000-run and a 1,000,000-run tenant,
//! on PostgreSQL and SQLite, beside PostGraphile 5 with `@graphile/pg-aggregates` answering the
//! grouped questions on the same PostgreSQL data. Each question is measured with one client
//! (its p50 is the server time plus a loopback round trip) and with `clients` clients
//! (throughput). The report is markdown, written into BENCHMARKS.md.
//!
//! The dataset (`stats`, kept in `bench/.data`) holds the two tenants with two steps per run:
//! run stats read runs (and rollups), not steps, so the steps of the mix's dataset would only
//! lengthen seeding.

use std::time::Duration;

use runledger::db::Db;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::dataset::{self, Dataset, Scale};
use crate::load::{self, Load, Target};
use crate::procs;
use crate::queries::{auditor_key, data_dir, machine};

/// The stats dataset: one tenant of 10,000 runs and one of 1,000,000, two steps per run.
pub const STATS: Scale = Scale {
    name: "stats",
    tenants: 1,
    runs_per_tenant: 10_000,
    big_tenant_runs: 1_000_000,
    steps_per_run: 2,
    telemetry_percent: 0,
};

/// The questions, as runledger answers them (`$from`, `$to`: the 30 days up to the data's end).
const QUESTIONS: [(&str, &str); 6] = [
    (
        "S1 30 days daily by model",
        "query($from: DateTime!, $to: DateTime!) { llmRunStats(from: $from, to: $to, bucket: DAY, groupBy: [MODEL]) { groups { key { value } series { runs failed costCents inputTokens outputTokens } } asOf { treeSize } } }",
    ),
    (
        "S2 30 days hourly by model",
        "query($from: DateTime!, $to: DateTime!) { llmRunStats(from: $from, to: $to, bucket: HOUR, groupBy: [MODEL]) { groups { key { value } series { runs failed costCents inputTokens outputTokens } } asOf { treeSize } } }",
    ),
    (
        "S3 S1 + duration p50/p90/p99",
        "query($from: DateTime!, $to: DateTime!) { llmRunStats(from: $from, to: $to, bucket: DAY, groupBy: [MODEL]) { groups { key { value } series { runs costCents durationP50Ms durationP90Ms durationP99Ms } } } }",
    ),
    (
        "S4 30 days daily by agent (from the runs)",
        "query($from: DateTime!, $to: DateTime!) { llmRunStats(from: $from, to: $to, bucket: DAY, groupBy: [AGENT]) { groups { key { value } series { runs failed costCents } } } }",
    ),
    (
        "S5 denied authorizations daily",
        "query($from: DateTime!, $to: DateTime!) { auditStats(from: $from, to: $to, bucket: DAY, filter: {decision: DENY}) { series { count } } }",
    ),
    (
        "S6 totalCount of failed runs",
        "query { llmRuns(first: 1, filter: {executionStatus: [FAILED]}) { totalCount } }",
    ),
];

/// S1 and S2 as PostGraphile with `@graphile/pg-aggregates` answers them (run count, cost and
/// token sums per model and day or hour; it has no failed count, error rate or time zone).
const PEER_QUESTIONS: [(&str, &str); 2] = [
    (
        "S1 30 days daily by model",
        "query($tenant: String!, $from: Datetime!, $to: Datetime!) { allLlmRuns(condition: {tenantId: $tenant}, filter: {startedAt: {greaterThanOrEqualTo: $from, lessThan: $to}}) { groupedAggregates(groupBy: [MODEL, STARTED_AT_TRUNCATED_TO_DAY]) { keys distinctCount { runId } sum { costCents inputTokens outputTokens } } } }",
    ),
    (
        "S2 30 days hourly by model",
        "query($tenant: String!, $from: Datetime!, $to: Datetime!) { allLlmRuns(condition: {tenantId: $tenant}, filter: {startedAt: {greaterThanOrEqualTo: $from, lessThan: $to}}) { groupedAggregates(groupBy: [MODEL, STARTED_AT_TRUNCATED_TO_HOUR]) { keys distinctCount { runId } sum { costCents inputTokens outputTokens } } } }",
    ),
];

/// What the command was asked to do.
pub struct Options {
    pub postgres_server: String,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub peer: bool,
    pub backends: Vec<String>,
    /// Only make sure the dataset is seeded.
    pub seed_only: bool,
}

struct Row {
    system: String,
    tenant_runs: u32,
    question: String,
    single: Load,
    loaded: Load,
}

/// The 30 days up to the end of the day after the tenant's newest run (UTC).
async fn window(url: &str, tenant: &str) -> Result<(String, String), String> {
    let db = Db::connect(url, 1).await.map_err(|e| e.describe())?;
    let backend = db.conn.get_database_backend();
    let p = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let newest: chrono::DateTime<chrono::Utc> = db
        .conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT MAX(started_at) FROM llm_runs WHERE tenant_id = {p}"),
            [tenant.into()],
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no newest run")?
        .try_get_by_index(0)
        .map_err(|e| e.to_string())?;
    db.conn.close().await.map_err(|e| e.to_string())?;
    let end = newest.date_naive().succ_opt().ok_or("date overflow")?;
    let to = end.and_hms_opt(0, 0, 0).ok_or("midnight")?.and_utc();
    let from = to - chrono::Duration::days(30);
    let iso = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok((iso(from), iso(to)))
}

async fn both_loads(opts: &Options, target: &Target, body: &Value) -> Result<(Load, Load), String> {
    let bodies = [body.clone()];
    load::ask(target, body).await?;
    load::drive(target, &bodies, 1, opts.warmup).await?;
    let single = load::drive(target, &bodies, 1, opts.duration).await?;
    load::drive(target, &bodies, opts.clients, opts.warmup).await?;
    let loaded = load::drive(target, &bodies, opts.clients, opts.duration).await?;
    Ok((single, loaded))
}

async fn runledger_rows(opts: &Options, ds: &Dataset, rows: &mut Vec<Row>) -> Result<u64, String> {
    let work = data_dir().join("work");
    let server = procs::start_runledger(
        &ds.url,
        &work.join("signing.key"),
        &work.join(format!("stats-{}.log", ds.backend)),
    )
    .await?;
    for (tenant, runs) in [
        (&ds.tenant, STATS.runs_per_tenant),
        (&ds.big_tenant, STATS.big_tenant_runs),
    ] {
        let key = auditor_key(ds, tenant)?;
        let target = Target {
            url: format!("{}/graphql", server.base),
            bearer: Some(key),
        };
        let (from, to) = window(&ds.url, tenant).await?;
        for (name, query) in QUESTIONS {
            eprintln!("runledger {} {runs}: {name}", ds.backend);
            let body = json!({"query": query, "variables": {"from": from, "to": to}});
            let (single, loaded) = both_loads(opts, &target, &body).await?;
            rows.push(Row {
                system: format!("runledger {}", ds.backend),
                tenant_runs: runs,
                question: name.to_string(),
                single,
                loaded,
            });
        }
    }
    let peak = server.peak_memory()?;
    server.stop()?;
    Ok(peak)
}

async fn peer_rows(opts: &Options, ds: &Dataset, rows: &mut Vec<Row>) -> Result<(), String> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let work = data_dir().join("work");
    let server =
        procs::start_postgraphile(&repo, &ds.url, &work.join("stats-postgraphile.log")).await?;
    let target = Target {
        url: format!("{}/graphql", server.base),
        bearer: None,
    };
    for (tenant, runs) in [
        (&ds.tenant, STATS.runs_per_tenant),
        (&ds.big_tenant, STATS.big_tenant_runs),
    ] {
        let (from, to) = window(&ds.url, tenant).await?;
        for (name, query) in PEER_QUESTIONS {
            eprintln!("PostGraphile {runs}: {name}");
            let body =
                json!({"query": query, "variables": {"tenant": tenant, "from": from, "to": to}});
            let (single, loaded) = both_loads(opts, &target, &body).await?;
            rows.push(Row {
                system: "PostGraphile + pg-aggregates".into(),
                tenant_runs: runs,
                question: name.to_string(),
                single,
                loaded,
            });
        }
    }
    server.stop()?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Seeds (once), measures and returns the report.
pub async fn run(opts: Options) -> Result<String, String> {
    let work = data_dir().join("work");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let datasets = dataset::ensure(
        &STATS,
        &data_dir(),
        &opts.postgres_server,
        &work.join("signing.key"),
        &opts.backends,
    )
    .await?;
    if opts.seed_only {
        return Ok(String::new());
    }
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    for ds in &datasets {
        let peak = runledger_rows(&opts, ds, &mut rows).await?;
        memory.push((ds.backend, peak));
    }
    if opts.peer
        && let Some(pg) = datasets.iter().find(|d| d.backend == "postgres")
    {
        peer_rows(&opts, pg, &mut rows).await?;
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Generated by `cargo run --release -p runledger-bench -- stats --clients {} --seconds {}` \
         on {} (one run; do not edit by hand).\n\nMachine: {}.\n\nDataset `stats` (`runledger seed`, kept in \
         `bench/.data`): one tenant of {} runs (seed 1) and one of {} runs (seed 2), {} steps \
         per run. Window: the 30 days up to the end of the day after each tenant's newest run \
         (the seeded runs span one week). 1 client: p50 is the server time plus one loopback \
         round trip; {} clients: throughput.\n\n",
        opts.clients,
        opts.duration.as_secs(),
        chrono::Utc::now().format("%Y-%m-%d"),
        machine(),
        STATS.runs_per_tenant,
        STATS.big_tenant_runs,
        STATS.steps_per_run,
        opts.clients
    ));
    out.push_str(&format!(
        "| system | tenant runs | question | 1 client p50 ms | 1 client p99 ms | {} clients req/s | {} clients p99 ms |\n|---|---|---|---|---|---|---|\n",
        opts.clients, opts.clients
    ));
    for r in &rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {} |\n",
            r.system,
            r.tenant_runs,
            r.question,
            ms(r.single.p50),
            ms(r.single.p99),
            r.loaded.per_second(),
            ms(r.loaded.p99)
        ));
    }
    let peer = |runs: u32, q: &str| {
        rows.iter()
            .find(|r| {
                r.system.starts_with("PostGraphile") && r.tenant_runs == runs && r.question == q
            })
            .map(|r| r.loaded.per_second())
    };
    let mut ratios = String::new();
    for r in rows.iter().filter(|r| r.system.starts_with("runledger")) {
        if let Some(p) = peer(r.tenant_runs, &r.question) {
            ratios.push_str(&format!(
                "| {} | {} | {} | {:.1} |\n",
                r.system,
                r.tenant_runs,
                r.question,
                r.loaded.per_second() / p
            ));
        }
    }
    if !ratios.is_empty() {
        out.push_str(&format!(
            "\nThroughput as a ratio to PostGraphile + pg-aggregates on the same question and \
             tenant ({} clients):\n\n| system | tenant runs | question | runledger / PostGraphile |\n|---|---|---|---|\n{ratios}",
            opts.clients
        ));
    }
    out.push_str("\nPeak memory (resident set): ");
    out.push_str(
        &memory
            .iter()
            .map(|(b, m)| format!("runledger {b} {} MB", m / 1024 / 1024))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push_str(".\n\n");
    Ok(out)
}
