//! Two builds of runledger on the dashboard query mix (Q1–Q5), interleaved on one machine:
//! `runledger-bench compare --baseline <runledger binary>` serves one seeded dataset with the
//! baseline and with this build (both started as shipped, over the same database and signing
//! key), and measures each query on both in rounds, alternating which goes first (A B, then
//! B A, …), so that drift of the machine during the run falls on both alike. The report gives
//! each build's median over the rounds and the ratio this build / baseline.

use serde_json::json;
use std::path::{Path, PathBuf};

use crate::dataset::Scale;
use crate::load::{self, Load, Target};
use crate::procs;
use crate::queries::{self, MIX, Options};

/// What `compare` was asked to do.
pub struct Compare {
    pub baseline: PathBuf,
    pub rounds: usize,
    pub options: Options,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn measure(
    opts: &Options,
    target: &Target,
    bodies: &[serde_json::Value],
) -> Result<Load, String> {
    for body in bodies {
        load::ask(target, body).await?;
    }
    load::drive(target, bodies, opts.clients, opts.warmup).await?;
    load::drive(target, bodies, opts.clients, opts.duration).await
}

/// Runs the comparison on every backend asked for; returns the report (markdown).
pub async fn run(compare: Compare) -> Result<String, String> {
    let opts = &compare.options;
    let work = queries::data_dir().join("work");
    let datasets = queries::seed(opts).await?;
    let mut out = String::new();
    out.push_str(&format!(
        "Interleaved comparison on {} (`runledger-bench compare --scale {}`): {} rounds of {} s per \
         query and build after {} s of warm-up, {} clients; medians of the rounds.\n\n",
        queries::machine(),
        opts.scale.name,
        compare.rounds,
        opts.duration.as_secs(),
        opts.warmup.as_secs(),
        opts.clients,
    ));
    out.push_str("| backend | query | baseline req/s | this build req/s | ratio | rounds (baseline / this) |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for ds in &datasets {
        let key_file = work.join("signing.key");
        let this_build = procs::runledger_binary()?;
        let builds = [
            ("baseline", compare.baseline.as_path()),
            ("this build", this_build.as_path()),
        ];
        // The key and the sample are made in the dataset before SQLite's copies are taken.
        let key = queries::auditor_key(ds, &ds.tenant)?;
        let runs = queries::sample_runs(&ds.url, &ds.tenant, 100).await?;
        let mut servers = Vec::new();
        for (name, binary) in builds {
            let slug = name.replace(' ', "-");
            let log = work.join(format!("compare-{}-{slug}.log", ds.backend));
            let url = database_for(ds, &work, &slug)?;
            servers.push(start(binary, &url, &key_file, &log).await?);
        }
        for (name, query) in MIX {
            let bodies = queries::bodies(query, &runs, json!({}));
            let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for round in 0..compare.rounds {
                let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for which in order {
                    let target = Target {
                        url: format!("{}/graphql", servers[which].base),
                        bearer: Some(key.clone()),
                    };
                    eprintln!(
                        "{} {name}: round {} {}",
                        ds.backend,
                        round + 1,
                        builds[which].0
                    );
                    rates[which].push(measure(opts, &target, &bodies).await?.per_second());
                }
            }
            let (before, after) = (median(rates[0].clone()), median(rates[1].clone()));
            let list = |v: &[f64]| {
                v.iter()
                    .map(|r| format!("{r:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!(
                "| {} | {name} | {before:.0} | {after:.0} | {:.3} | {} / {} |\n",
                ds.backend,
                after / before,
                list(&rates[0]),
                list(&rates[1]),
            ));
        }
        for server in servers {
            server.stop()?;
        }
    }
    Ok(out)
}

/// The database a build serves: PostgreSQL's is shared (it has many writers by design); a
/// SQLite file has one writer process, so each build serves its own copy of the dataset.
fn database_for(ds: &crate::dataset::Dataset, work: &Path, slug: &str) -> Result<String, String> {
    if ds.backend != "sqlite" {
        return Ok(ds.url.clone());
    }
    let source = ds
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let copy = work.join(format!("compare-{slug}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", copy.display()));
        let from = format!("{source}{suffix}");
        if Path::new(&from).exists() {
            std::fs::copy(&from, format!("{}{suffix}", copy.display()))
                .map_err(|e| format!("copy {from}: {e}"))?;
        }
    }
    Ok(format!("sqlite://{}?mode=rwc", copy.display()))
}

async fn start(
    binary: &Path,
    url: &str,
    key_file: &Path,
    log: &Path,
) -> Result<procs::Server, String> {
    procs::start_runledger_binary(binary, url, key_file, log)
        .await
        .map_err(|e| format!("{}: {e}", binary.display()))
}

/// The scale by name.
pub fn scale(name: &str) -> Scale {
    match name {
        "full" => crate::dataset::FULL,
        "mid" => crate::dataset::MID,
        _ => crate::dataset::SMOKE,
    }
}
