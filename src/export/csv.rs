//! The `CSV` format: one row per run (RFC 4180: comma-separated, fields holding a comma, a
//! quote, CR or LF quoted with `"` and quotes doubled, CRLF after every row, a header row
//! first), for spreadsheets. The runs are the scope's (`run` or `runs`), as of the request, in
//! run id order; the columns are the run record's canonical fields (`canonical::run_json`) then
//! its record hash and anchor id. Not signed: the checksum chained in `EXPORT_COMPLETED` is what
//! an auditor compares it with; the `BUNDLE` of the same scope carries the proofs.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::select::{Chunk, Walk};
use crate::error::{AppResult, Context};

/// The columns, in order: the run record's fields, then its hash and anchor.
pub const COLUMNS: [&str; 18] = [
    "run_id",
    "trace_id",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_cents",
    "execution_status",
    "started_at",
    "completed_at",
    "source",
    "is_synthetic",
    "human_actor_id",
    "agent_id",
    "system_id",
    "origin",
    "recorded_at",
    "record_hash",
];

/// One field as RFC 4180 writes it.
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => field(s),
        Some(other) => field(&other.to_string()),
    }
}

/// One CRLF-terminated row.
fn row(cells: impl Iterator<Item = String>) -> String {
    let mut line = cells.collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Writes the runs of `walk` as CSV to `out`; returns how many rows and the hashes of their
/// records (for the export's evidence digest).
pub(crate) async fn write_runs<C: sea_orm::ConnectionTrait>(
    db: &C,
    walk: &mut Walk,
    mut emit: impl FnMut(&[u8]) -> AppResult<()>,
) -> AppResult<(u64, Vec<[u8; 32]>)> {
    let header = row(COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(["anchor_id".to_string()]));
    emit(header.as_bytes())?;
    let mut rows = 0u64;
    let mut hashes = Vec::new();
    while let Some(chunk) = walk.next(db).await? {
        let Chunk::Records(records) = chunk else {
            continue;
        };
        for r in records.iter().filter(|r| r.table == "llm_runs") {
            let record: Value = serde_json::from_str(&r.canonical).context("read a run record")?;
            let hash: [u8; 32] = Sha256::digest(r.canonical.as_bytes()).into();
            let cells = COLUMNS.iter().map(|c| match *c {
                "record_hash" => hex::encode(hash),
                name => cell(record.get(name)),
            });
            let line = row(cells.chain([field(&r.anchor_id)]));
            emit(line.as_bytes())?;
            hashes.push(hash);
            rows += 1;
        }
    }
    Ok((rows, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\r\nlines"), "\"two\r\nlines\"");
        assert_eq!(row(["a".into(), "".into()].into_iter()), "a,\r\n");
    }
}
