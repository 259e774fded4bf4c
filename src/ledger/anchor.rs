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
