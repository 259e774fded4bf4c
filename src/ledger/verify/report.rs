//! What a verification reports: the mode, the verdict, each anomaly found, the checkpoint and
//! head it saw, and the LEDGER_VERIFIED entry that records a completed verification (and its
//! reading back).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::ledger::NewEntry;

/// How much of the ledger a verification reads.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationMode {
    /// Every entry from seq 1, every anchor, every evidence record.
    Full,
    /// From the newest good checkpoint on (a full run when there is none).
    Incremental,
}

/// Kind of anomaly.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnomalyKind {
    /// The stored `entry_hash` is not the hash of the stored fields.
    EntryHashMismatch,
    /// `prev_hash` is not the previous entry's `entry_hash`.
    BrokenPrevLink,
    /// Seq numbers are missing before this entry.
    SeqGap,
    /// Two entries carry the same seq.
    DuplicateSeq,
    /// The entry links to an entry that is not its predecessor: entries were moved.
    ReorderedSeq,
    /// An entry of another tenant is in this tenant's chain.
    ForeignTenant,
    /// The ledger has fewer entries than a signed checkpoint covers, or records point to
    /// anchor entries that are gone: its tail was removed.
    Truncated,
    /// The Merkle root of the entries a checkpoint covers is not its signed root: history was
    /// rewritten (even with every hash recomputed).
    CheckpointRootMismatch,
    /// A checkpoint's signature does not verify, or its note disagrees with its stored row.
    BadSignature,
    /// A checkpoint is signed by a key the verifier does not trust.
    UnknownKeySignature,
    /// The ledger is older than a checkpoint the auditor kept: it was rolled back.
    Rollback,
    /// The evidence records linked to an anchor entry no longer hash to its Merkle root.
    AnchorMismatch,
    /// An evidence record is not linked to any anchor entry of the ledger.
    UnanchoredRecord,
    /// The ledger has entries, checkpoints or evidence, but its tenant has no row in
    /// `tenants` (deleted): the tenant was removed behind the ledger's back.
    MissingTenant,
    /// An export record disagrees with its chained EXPORT entries (a rewritten checksum,
    /// status, format…), or one of them is missing.
    ExportMismatch,
}

impl AnomalyKind {
    /// Anomalies of the entries and the tree, as opposed to those of checkpoints and records.
    pub(super) fn is_chain(self) -> bool {
        matches!(
            self,
            AnomalyKind::EntryHashMismatch
                | AnomalyKind::BrokenPrevLink
                | AnomalyKind::SeqGap
                | AnomalyKind::DuplicateSeq
                | AnomalyKind::ReorderedSeq
                | AnomalyKind::ForeignTenant
                | AnomalyKind::Truncated
                | AnomalyKind::CheckpointRootMismatch
                | AnomalyKind::Rollback
        )
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq, async_graphql::SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The entry concerned (the first of a range); absent for a record without an anchor.
    pub seq: Option<i64>,
    /// The last entry of a range (a gap, a truncated tail), when it is one.
    pub seq_end: Option<i64>,
    /// The evidence record concerned (`<table>:<key>`), for record anomalies.
    pub record: Option<String>,
    pub detail: String,
}

impl Anomaly {
    pub(super) fn at(kind: AnomalyKind, seq: i64, detail: impl Into<String>) -> Self {
        Anomaly {
            kind,
            seq: Some(seq),
            seq_end: None,
            record: None,
            detail: detail.into(),
        }
    }
}

/// A checkpoint as the verifier saw it.
#[derive(Clone, Debug, async_graphql::SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    pub tree_size: i64,
    pub root_hash: String,
    /// Hex id of the signing key (C2SP key hash).
    pub key_id: String,
    /// Whether the signature verified with a trusted key and the note matches the row.
    pub signature_valid: bool,
    /// The signed note, verbatim.
    pub signed_note: String,
    #[graphql(skip)]
    #[serde(with = "crate::canonical::serde_timestamp")]
    pub recorded_at: DateTime<Utc>,
}

/// The newest entry.
#[derive(Clone, Debug, async_graphql::SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub seq: i64,
    pub entry_hash: String,
}

/// Overall verdict.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The ledger has no entries yet.
    Empty,
    /// Every check passed and every entry is covered by a good signed checkpoint.
    Verified,
    /// Every check passed, but entries after the newest good checkpoint are not yet covered.
    VerifiedUnanchoredTail,
    /// At least one anomaly.
    Broken,
}

/// The result of one verification.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub tenant_id: String,
    pub mode: VerificationMode,
    pub status: Verdict,
    /// No anomaly of the chain or tree (hash, link, seq, truncation, checkpoint roots).
    pub hash_chain_valid: bool,
    /// The first seq the walk read (1 for a full run).
    pub from_seq: i64,
    pub entries_checked: u64,
    pub checkpoints_checked: u64,
    pub anchors_checked: u64,
    pub records_checked: u64,
    pub anomalies: Vec<Anomaly>,
    pub first_broken_seq: Option<i64>,
    pub head: Option<Head>,
    /// RFC 6962 root over every entry hash, in seq order.
    pub merkle_root: String,
    pub latest_checkpoint: Option<CheckpointView>,
    /// Entries after the newest good checkpoint.
    pub unanchored_entries: i64,
    /// Size of the auditor's trusted checkpoint, when one was given.
    pub trusted_checkpoint_size: Option<i64>,
    /// Export records compared with their EXPORT entries (full mode).
    pub exports_checked: u64,
    #[serde(with = "crate::canonical::serde_timestamp")]
    pub verified_at: DateTime<Utc>,
    /// Newest occurred/recorded times of the entries read.
    #[serde(skip)]
    pub newest: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Report {
    /// A compact summary for the ledger entry that records this verification.
    pub fn summary(&self) -> Value {
        json!({
            "mode": self.mode,
            "status": self.status,
            "from_seq": self.from_seq,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "anchors_checked": self.anchors_checked,
            "records_checked": self.records_checked,
            "anomalies": self.anomalies.len(),
            "first_broken_seq": self.first_broken_seq,
            "head_seq": self.head.as_ref().map(|h| h.seq),
            "head_hash": self.head.as_ref().map(|h| h.entry_hash.clone()),
            "merkle_root": self.merkle_root,
            "checkpoint_size": self.latest_checkpoint.as_ref().map(|c| c.tree_size),
            "exports_checked": self.exports_checked,
            "first_anomalies": self
                .anomalies
                .iter()
                .take(RECORDED_ANOMALIES)
                .map(|a| json!({
                    "kind": a.kind,
                    "seq": a.seq,
                    "seq_end": a.seq_end,
                    "record": a.record,
                    "detail": a.detail,
                }))
                .collect::<Vec<_>>(),
        })
    }
}

/// Most anomalies a LEDGER_VERIFIED entry keeps (its `anomalies` field counts them all).
pub const RECORDED_ANOMALIES: usize = 20;

/// The INTEGRITY entry that records a completed verification: who asked, and what it found.
pub fn verification_entry(report: &Report, actor_id: Option<String>) -> NewEntry {
    let reason = verification_reason(report.mode);
    let summary = report.summary();
    crate::ledger::vocabulary::ledger_verified(
        &report.tenant_id,
        actor_id,
        reason,
        summary,
        report.verified_at,
    )
}

/// The `action_reason` of a LEDGER_VERIFIED entry: `Full verification` or `Incremental
/// verification` (how the newest full verification is found).
pub fn verification_reason(mode: VerificationMode) -> String {
    format!("{mode:?} verification")
}

/// A verification as its LEDGER_VERIFIED entry records it ([`Report::summary`]).
#[derive(Clone, Debug)]
pub struct RecordedVerification {
    pub mode: VerificationMode,
    pub status: Verdict,
    pub entries_checked: u64,
    /// Every anomaly it found, counted.
    pub anomalies_detected: u64,
    /// The first [`RECORDED_ANOMALIES`] of them.
    pub anomalies: Vec<Anomaly>,
}

impl RecordedVerification {
    /// Reads a LEDGER_VERIFIED entry's `after_state`; `None` when it is not one.
    pub fn parse(after_state: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(after_state).ok()?;
        let field = |name: &str| v.get(name).cloned().unwrap_or(Value::Null);
        let anomalies = match v.get("first_anomalies").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .map(|a| {
                    Some(Anomaly {
                        kind: serde_json::from_value(a.get("kind")?.clone()).ok()?,
                        seq: a.get("seq").and_then(Value::as_i64),
                        seq_end: a.get("seq_end").and_then(Value::as_i64),
                        record: a.get("record").and_then(Value::as_str).map(str::to_string),
                        detail: a.get("detail")?.as_str()?.to_string(),
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            None => Vec::new(),
        };
        Some(RecordedVerification {
            mode: serde_json::from_value(field("mode")).ok()?,
            status: serde_json::from_value(field("status")).ok()?,
            entries_checked: field("entries_checked").as_u64()?,
            anomalies_detected: field("anomalies").as_u64()?,
            anomalies,
        })
    }
}
