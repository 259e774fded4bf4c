//! The peer: PostGraphile 5 over the same PostgreSQL data, installed by
//! `bench/postgraphile/install.sh` into the ignored `bench/.peer`, answering the equivalent of
//! Q1–Q5 (`bench/postgraphile/queries.json`, relations declared in its smart tags) under the
//! same load as runledger.

use std::path::Path;

use serde_json::{Value, json};

use crate::dataset::Dataset;
use crate::floor::RunRef;
use crate::load::Target;
use crate::procs;
use crate::queries::{MIX, Options, Row, bodies, measure};

/// Measures Q1–Q5 on PostGraphile; returns its peak memory.
pub async fn measure_mix(
    opts: &Options,
    repo: &Path,
    ds: &Dataset,
    runs: &[RunRef],
    work: &Path,
    mix: &mut Vec<Row>,
) -> Result<u64, String> {
    let text = std::fs::read_to_string(repo.join("bench/postgraphile/queries.json"))
        .map_err(|e| format!("bench/postgraphile/queries.json: {e}"))?;
    let queries: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let server = procs::start_postgraphile(repo, &ds.url, &work.join("postgraphile.log")).await?;
    let target = Target {
        url: format!("{}/graphql", server.base),
        bearer: None,
    };
    for (i, (name, _)) in MIX.iter().enumerate() {
        let query = queries[format!("Q{}", i + 1)]["query"]
            .as_str()
            .ok_or_else(|| format!("queries.json has no Q{}", i + 1))?;
        let bodies = bodies(query, runs, json!({"tenant": ds.tenant}));
        eprintln!("PostGraphile: {name}");
        let (load, _) = measure(opts, None, &target, &bodies).await?;
        mix.push(Row {
            system: "PostGraphile".into(),
            query: name.to_string(),
            load,
            statements: None,
        });
    }
    let peak = server.peak_memory()?;
    server.stop()?;
    Ok(peak)
}
