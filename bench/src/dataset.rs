//! The benchmark datasets, seeded once by `runledger seed` (the deterministic generator) into a
//! PostgreSQL database and a SQLite file and kept between runs under `bench/.data`: ten tenants
//! of 10,000 runs (the mix), and one tenant of 1,000,000 runs (the scaling check). A marker file
//! written after the last seed says a dataset is complete; an incomplete one is seeded afresh.

use std::path::{Path, PathBuf};

use runledger::db::Db;
use sea_orm::{ConnectionTrait, Database, Statement};

use crate::procs;

/// How big the datasets are.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub name: &'static str,
    pub tenants: u32,
    pub runs_per_tenant: u32,
    pub big_tenant_runs: u32,
    pub steps_per_run: u32,
    pub telemetry_percent: u32,
}

/// Issue 6's dataset.
pub const FULL: Scale = Scale {
    name: "full",
    tenants: 10,
    runs_per_tenant: 10_000,
    big_tenant_runs: 1_000_000,
    steps_per_run: 20,
    telemetry_percent: 2,
};

/// The same shape, small: to check the command end to end in a minute.
pub const SMOKE: Scale = Scale {
    name: "smoke",
    tenants: 2,
    runs_per_tenant: 500,
    big_tenant_runs: 5_000,
    steps_per_run: 20,
    telemetry_percent: 2,
};

/// Tenants of 10,000 runs as in `full`, without the million-run tenant: for comparing two
/// builds on the dashboard mix (`compare`), seeded in about a minute per backend.
pub const MID: Scale = Scale {
    name: "mid",
    tenants: 2,
    runs_per_tenant: 10_000,
    big_tenant_runs: 10_000,
    steps_per_run: 20,
    telemetry_percent: 2,
};

/// Seeds of the two `runledger seed` calls (they name the tenants).
const MIX_SEED: &str = "1";
const BIG_SEED: &str = "2";

/// A seeded database.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub backend: &'static str,
    pub url: String,
    /// A tenant of `runs_per_tenant` runs.
    pub tenant: String,
    /// The tenant of `big_tenant_runs` runs.
    pub big_tenant: String,
}

/// The SQLite file and PostgreSQL database of `scale`, seeded when missing or incomplete.
pub async fn ensure(
    scale: &Scale,
    data_dir: &Path,
    postgres_server: &str,
    key_file: &Path,
    backends: &[String],
) -> Result<Vec<Dataset>, String> {
    std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
    // One benchmark at a time per data folder: a second one would take a dataset that is still
    // being seeded for an interrupted one and seed it afresh under the first (the lock goes
    // with the process, even when it is killed).
    let lock_path = data_dir.join(".lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| e.to_string())?;
    lock.try_lock().map_err(|_| {
        format!(
            "another runledger-bench is using {} (it holds {}); wait for it to finish",
            data_dir.display(),
            lock_path.display()
        )
    })?;
    let sqlite_file = data_dir.join(format!("{}.db", scale.name));
    let sqlite_url = format!("sqlite://{}?mode=rwc", sqlite_file.display());
    let pg_name = format!("runledger_bench_{}", scale.name);
    // Loopback: no TLS, for every system measured (runledger, PostGraphile and pgbench would
    // each negotiate it by default).
    let pg_url = format!("{}/{pg_name}?sslmode=disable", server_base(postgres_server));
    let mut out = Vec::new();
    for (backend, url) in [("postgres", pg_url.clone()), ("sqlite", sqlite_url)] {
        if !backends.iter().any(|b| b == backend) {
            continue;
        }
        let marker = data_dir.join(format!("{}-{backend}.tenants", scale.name));
        let tenants = match std::fs::read_to_string(&marker) {
            Ok(text) => text,
            Err(_) => {
                if backend == "postgres" {
                    recreate_postgres(postgres_server, &pg_name).await?;
                } else {
                    remove_sqlite(&sqlite_file)?;
                }
                let text = seed(scale, &url, key_file)?;
                if backend == "postgres" {
                    // As after any bulk load: statistics, and a visibility map for index-only
                    // scans (counts), before anything is measured.
                    vacuum_analyze(&url).await?;
                }
                std::fs::write(&marker, &text).map_err(|e| e.to_string())?;
                text
            }
        };
        let mut lines = tenants.lines();
        let (Some(tenant), Some(big_tenant)) = (lines.next(), lines.next_back()) else {
            return Err(format!("{} lists no tenants", marker.display()));
        };
        out.push(Dataset {
            backend,
            url,
            tenant: tenant.to_string(),
            big_tenant: big_tenant.to_string(),
        });
    }
    Ok(out)
}

/// `postgres://host:port/db` -> `postgres://host:port`.
pub fn server_base(url: &str) -> &str {
    url.rsplit_once('/').map_or(url, |(base, _)| base)
}

/// Seeds the mix tenants, then the big tenant; returns the tenant ids, the big tenant last.
fn seed(scale: &Scale, url: &str, key_file: &Path) -> Result<String, String> {
    let key = key_file.display().to_string();
    let started = std::time::Instant::now();
    let mut ids = String::new();
    for (tenants, runs, seed) in [
        (scale.tenants, scale.runs_per_tenant, MIX_SEED),
        (1, scale.big_tenant_runs, BIG_SEED),
    ] {
        eprintln!("seeding {tenants} tenant(s) x {runs} runs into {url}");
        ids.push_str(&procs::runledger(&[
            "seed",
            "--database-url",
            url,
            "--tenants",
            &tenants.to_string(),
            "--runs",
            &runs.to_string(),
            "--steps-per-run",
            &scale.steps_per_run.to_string(),
            "--telemetry-percent",
            &scale.telemetry_percent.to_string(),
            "--seed",
            seed,
            "--signing-key-file",
            &key,
        ])?);
    }
    eprintln!("seeded {url} in {:.0} s", started.elapsed().as_secs_f64());
    Ok(ids)
}

async fn vacuum_analyze(url: &str) -> Result<(), String> {
    let db = Database::connect(url).await.map_err(|e| e.to_string())?;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "VACUUM (ANALYZE)".to_string(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    db.close().await.map_err(|e| e.to_string())
}

async fn recreate_postgres(server: &str, name: &str) -> Result<(), String> {
    let admin = Database::connect(server).await.map_err(|e| e.to_string())?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin
            .execute_raw(Statement::from_string(admin.get_database_backend(), sql))
            .await
            .map_err(|e| e.to_string())?;
    }
    admin.close().await.map_err(|e| e.to_string())
}

fn remove_sqlite(file: &Path) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Row counts of the evidence tables, for the report.
pub async fn row_counts(url: &str) -> Result<Vec<(&'static str, i64)>, String> {
    let db = Db::connect(url, 1).await.map_err(|e| e.describe())?;
    let mut out = Vec::new();
    for (label, sql) in [
        ("tenants", "SELECT COUNT(*) FROM tenants"),
        ("runs", "SELECT COUNT(*) FROM llm_runs"),
        ("trace steps", "SELECT COUNT(*) FROM trace_steps"),
        (
            "governance events",
            "SELECT COUNT(*) FROM governance_events",
        ),
        ("system records", "SELECT COUNT(*) FROM system_records"),
        (
            "global system records",
            "SELECT COUNT(*) FROM system_records WHERE tenant_id IS NULL",
        ),
        (
            "telemetry samples",
            "SELECT COUNT(*) FROM telemetry_samples",
        ),
        ("ledger entries", "SELECT COUNT(*) FROM audit_ledger"),
    ] {
        let row = db
            .conn
            .query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no count")?;
        let n: i64 = row.try_get_by_index(0).map_err(|e| e.to_string())?;
        out.push((label, n));
    }
    db.conn.close().await.map_err(|e| e.to_string())?;
    Ok(out)
}
