//! The floor: `pgbench` running, as one transaction per request, the SQL statements each query
//! of the mix needs (the page, its count, the children of the page's rows), with the columns
//! the answer shows, at the same concurrency and for the same time as the HTTP load. Latencies
//! come from pgbench's per-transaction log.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::load::Load;

/// One run picked for Q3: its id and trace id.
#[derive(Clone, Debug)]
pub struct RunRef {
    pub run_id: String,
    pub trace_id: String,
}

/// Order of a page of runs, as runledger's default (newest first).
const RUN_PAGE: &str =
    "FROM llm_runs WHERE tenant_id = :tenant ORDER BY started_at DESC, run_id DESC";

/// pgbench scripts of one query: several scripts are picked at random (Q3: one per run).
pub fn scripts(query: usize, runs: &[RunRef]) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    match query {
        0 => one(
            "SELECT run_id, model, execution_status, cost_cents, started_at FROM llm_runs \
             WHERE tenant_id = :tenant AND execution_status = 'FAILED' \
             ORDER BY started_at DESC, run_id DESC LIMIT 51;\n\
             SELECT COUNT(*) FROM llm_runs WHERE tenant_id = :tenant AND execution_status = 'FAILED';\n",
        ),
        1 => one(&format!(
            "SELECT run_id, trace_id {RUN_PAGE} LIMIT 21;\n\
             SELECT s.trace_id, s.step_index, s.skill_name, s.status FROM trace_steps s \
             JOIN (SELECT trace_id {RUN_PAGE} LIMIT 20) p ON s.trace_id = p.trace_id \
             WHERE s.tenant_id = :tenant ORDER BY s.trace_id, s.step_index;\n\
             SELECT g.run_id, g.id, g.decision FROM governance_events g \
             JOIN (SELECT run_id {RUN_PAGE} LIMIT 20) p ON g.run_id = p.run_id \
             WHERE g.tenant_id = :tenant ORDER BY g.run_id, g.occurred_at;\n"
        )),
        2 => runs
            .iter()
            .map(|r| {
                let (run, trace) = (&r.run_id, &r.trace_id);
                format!(
                    "SELECT * FROM llm_runs WHERE tenant_id = :tenant AND run_id = '{run}';\n\
                     SELECT * FROM trace_steps WHERE tenant_id = :tenant AND trace_id = '{trace}' \
                     ORDER BY step_index;\n\
                     SELECT * FROM governance_events WHERE tenant_id = :tenant AND run_id = '{run}' \
                     ORDER BY occurred_at;\n\
                     SELECT * FROM log_exports WHERE tenant_id = :tenant AND run_id = '{run}' \
                     ORDER BY requested_at DESC;\n\
                     SELECT * FROM system_records WHERE correlation_id = '{run}' \
                     AND (tenant_id = :tenant OR tenant_id IS NULL) ORDER BY occurred_at;\n"
                )
            })
            .collect(),
        3 => one(
            "SELECT seq, event_type, entity_id FROM audit_ledger \
             WHERE tenant_id = :tenant AND category = 'ACCESS' ORDER BY seq DESC LIMIT 51;\n",
        ),
        // The tenant's records and the global ones, each an ordered range of the time index
        // (under IS NULL, PostgreSQL walks the index in order only when ORDER BY names it).
        _ => one(
            "SELECT * FROM (\
             (SELECT id, component, severity, occurred_at FROM system_records \
             WHERE tenant_id = :tenant AND severity IN ('ERROR', 'CRITICAL') \
             ORDER BY occurred_at DESC, id DESC LIMIT 51) UNION ALL \
             (SELECT id, component, severity, occurred_at FROM system_records \
             WHERE tenant_id IS NULL AND severity IN ('ERROR', 'CRITICAL') \
             ORDER BY tenant_id DESC, occurred_at DESC, id DESC LIMIT 51)) page \
             ORDER BY occurred_at DESC, id DESC LIMIT 51;\n",
        ),
    }
}

/// Runs `scripts` with pgbench against `database_url` (prepared statements, `clients`
/// connections, two threads) for `duration`.
pub fn run(
    work_dir: &Path,
    database_url: &str,
    tenant: &str,
    scripts: &[String],
    clients: usize,
    duration: Duration,
) -> Result<Load, String> {
    let dir = work_dir.join("pgbench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("pgbench");
    cmd.current_dir(&dir)
        .args([
            "-n",
            "-M",
            "prepared",
            "-j",
            "2",
            "-l",
            "--log-prefix",
            "tx",
        ])
        .args(["-c", &clients.to_string()])
        .args(["-T", &duration.as_secs().max(1).to_string()])
        .arg("-D")
        .arg(format!("tenant={tenant}"));
    for (i, script) in scripts.iter().take(100).enumerate() {
        let file = dir.join(format!("q{i}.sql"));
        std::fs::write(&file, script).map_err(|e| e.to_string())?;
        cmd.arg("-f").arg(format!("{}@1", file.display()));
    }
    let out = cmd
        .arg(database_url)
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Each log line: client, transaction, latency in µs, script, epoch s, µs.
    let mut latencies = Vec::new();
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    for entry in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tx."))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(lat), Some(sec), Some(us)) = (f.get(2), f.get(4), f.get(5)) else {
                continue;
            };
            let (Ok(lat), Ok(sec), Ok(us)) =
                (lat.parse::<u64>(), sec.parse::<f64>(), us.parse::<f64>())
            else {
                continue;
            };
            let end = sec + us / 1e6;
            first = first.min(end - lat as f64 / 1e6);
            last = last.max(end);
            latencies.push(Duration::from_micros(lat));
        }
    }
    if latencies.is_empty() {
        return Err("pgbench logged no transactions".into());
    }
    Ok(Load::from_latencies(
        latencies,
        Duration::from_secs_f64((last - first).max(1e-3)),
    ))
}
