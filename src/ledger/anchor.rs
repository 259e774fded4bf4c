//! An anchor's leaf order: how the record hashes of an evidence batch become the leaves of the
//! Merkle tree its `EVIDENCE_BATCH_ANCHORED` entry commits to. The writer (ingest) builds the
//! tree in this order and the verifier rebuilds it in the same order from the stored records.

/// The order in which record hashes become the leaves of a batch's Merkle tree.
pub const LEAF_ORDER: [&str; 5] = [
    "llm_runs",
    "trace_steps",
    "governance_events",
    "system_records",
    "telemetry_samples",
];

/// The leaves of an anchored batch: per table in [`LEAF_ORDER`], that table's record hashes in
/// ascending byte order. An order computed from the records themselves, so that a verifier
/// needs nothing but the stored records to recompute the root.
pub fn anchor_leaves(mut per_table: [Vec<[u8; 32]>; 5]) -> Vec<[u8; 32]> {
    let mut leaves = Vec::with_capacity(per_table.iter().map(Vec::len).sum());
    for table in per_table.iter_mut() {
        table.sort_unstable();
        leaves.append(table);
    }
    leaves
}

/// What an `EVIDENCE_BATCH_ANCHORED` entry's `after_state` claims: the batch's Merkle root
/// (hex) and its leaf count, each `None` when absent or not of its type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorState {
    pub merkle_root: Option<String>,
    pub records: Option<u64>,
}

impl AnchorState {
    /// Reads the claim from the entry's stored `after_state` text.
    pub fn parse(after_state: Option<&str>) -> AnchorState {
        let state: Option<serde_json::Value> =
            after_state.and_then(|t| serde_json::from_str(t).ok());
        let field = |name: &str| state.as_ref().and_then(|s| s.get(name));
        AnchorState {
            merkle_root: field("merkle_root")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            records: field("records").and_then(|v| v.as_u64()),
        }
    }
}
