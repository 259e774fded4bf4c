//! Verification of a tenant's ledger: the hash chain, the Merkle tree against every signed
//! checkpoint (and a checkpoint an auditor kept), checkpoint signatures, and the anchors that
//! commit to the evidence records. `audit { integrity }` and `runledger verify` both run it.
//!
//! Two modes. **Full** walks every entry from seq 1. **Incremental** starts at the newest
//! checkpoint whose signature verifies and whose stored Merkle frontier folds to its signed
//! root: it trusts what that checkpoint covers (a full run re-checks it) and verifies
//! everything after. Both check every checkpoint's signature.
//!
//! Full mode also checks that the ledger's tenant exists (`MISSING_TENANT`: the ledger list
//! comes from the ledgers themselves, see [`super::ledgers`]) and that every export record
//! agrees with its chained EXPORT entries (`EXPORT_MISMATCH`, see [`super::export_trail`]).
//!
//! [`ChainCheck`] is the pure part (fed entries in seq order); [`verify`] reads the database
//! (through [`super::scan`], which reads and hashes on every core).

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};
use serde_json::{Value, json};

use super::export_trail;
use super::note::{self, NoteError, NoteVerifier};
use super::proof::Frontier;
use super::scan::{self, Hashed, UNPARSABLE};
use super::{GENESIS_HASH, merkle};
use crate::canonical::{
    governance_json, hash_json, run_json, step_json, system_json, telemetry_json,
};
use crate::error::{AppError, AppResult, Context};
use crate::ingest::anchor_leaves;
use entity::{
    audit_ledger, governance_events, ledger_checkpoints, llm_runs, system_records,
    telemetry_samples, trace_steps,
};

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
    fn is_chain(self) -> bool {
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
    fn at(kind: AnomalyKind, seq: i64, detail: impl Into<String>) -> Self {
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
pub fn verification_entry(report: &Report, actor_id: Option<String>) -> super::NewEntry {
    let reason = verification_reason(report.mode);
    let summary = report.summary();
    super::vocabulary::ledger_verified(
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

/// What a verification is given besides the database.
#[derive(Clone)]
pub struct VerifyOptions {
    pub mode: VerificationMode,
    /// Keys whose checkpoint signatures are trusted.
    pub verifiers: Vec<NoteVerifier>,
    /// Keys retired by rotations, trusted for this ledger's checkpoints up to a size each.
    pub retired: Vec<RetiredKey>,
    /// The origin line every checkpoint of this tenant must carry.
    pub origin: String,
    /// A signed checkpoint the auditor kept (forces a full walk).
    pub trusted_checkpoint: Option<String>,
    /// Recompute every anchored batch from its records (full mode: all; incremental: the
    /// anchors after the starting checkpoint).
    pub check_records: bool,
    /// Ranges of the ledger read and hashed at once: the cores to use (at least 1). A request
    /// or `runledger verify` uses them all ([`all_cores`]); the background verifier one.
    pub parallel: usize,
}

/// The machine's cores (what a verification that should finish soonest uses).
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The checkpoint origin of a tenant's ledger: `<log name>/<tenant>`.
pub fn origin_of(log_name: &str, tenant_id: &str) -> String {
    format!("{log_name}/{tenant_id}")
}

/// How many recent entry hashes the walk remembers to tell a moved entry from a broken link.
const REORDER_WINDOW: usize = 64;

/// The pure chain check: feed entries in (seq, id) order.
pub struct ChainCheck {
    tenant_id: String,
    expected_seq: i64,
    last_seq: Option<i64>,
    prev_hash: [u8; 32],
    frontier: Frontier,
    /// Roots the tree must have at given sizes (checkpoints), ascending by size.
    expected_roots: VecDeque<(u64, [u8; 32], AnomalyKind, String)>,
    recent: VecDeque<([u8; 32], i64)>,
    /// prev hashes that matched no earlier entry: a later entry with that hash means a move.
    dangling: HashMap<[u8; 32], i64>,
    /// Reused for every entry's encoding.
    buffer: Vec<u8>,
    head_hash: String,
    pub entries_checked: u64,
    pub anomalies: Vec<Anomaly>,
}

impl ChainCheck {
    /// A walk from the genesis.
    pub fn new(tenant_id: &str) -> Self {
        Self::resume(tenant_id, 1, GENESIS_HASH.to_string(), Frontier::new())
    }

    /// A walk that continues after a trusted prefix: `next_seq` is expected next, linking to
    /// `prev_hash`, with the prefix's Merkle frontier.
    pub fn resume(tenant_id: &str, next_seq: i64, prev_hash: String, frontier: Frontier) -> Self {
        ChainCheck {
            tenant_id: tenant_id.to_string(),
            expected_seq: next_seq,
            last_seq: None,
            prev_hash: merkle::parse_hash(&prev_hash).unwrap_or(UNPARSABLE),
            frontier,
            expected_roots: VecDeque::new(),
            recent: VecDeque::with_capacity(REORDER_WINDOW),
            dangling: HashMap::new(),
            buffer: Vec::with_capacity(1024),
            head_hash: String::new(),
            entries_checked: 0,
            anomalies: Vec::new(),
        }
    }

    /// The seq the walk expects next.
    pub fn next_seq(&self) -> i64 {
        self.expected_seq
    }

    /// Requires the tree of the first `size` entries to have `root`; `kind` names a mismatch.
    pub fn expect_root(&mut self, size: u64, root: [u8; 32], kind: AnomalyKind, what: String) {
        if size <= self.frontier.size() {
            return;
        }
        let at = self
            .expected_roots
            .iter()
            .position(|(s, ..)| *s > size)
            .unwrap_or(self.expected_roots.len());
        self.expected_roots.insert(at, (size, root, kind, what));
    }

    /// Requires the root of every checkpoint whose signature, origin and row agree.
    pub(crate) fn expect_checkpoint_roots(&mut self, checkpoints: &[CheckedCheckpoint]) {
        for c in checkpoints.iter().filter(|c| c.problem.is_none()) {
            self.expect_root(
                c.row.tree_size as u64,
                c.root,
                AnomalyKind::CheckpointRootMismatch,
                format!("the signed checkpoint of size {}", c.row.tree_size),
            );
        }
    }

    /// Checks one entry.
    pub fn push(&mut self, e: &audit_ledger::Model) {
        let hashed = Hashed::of(e, &mut self.buffer);
        let foreign = (e.tenant_id != self.tenant_id).then_some(e.tenant_id.as_str());
        self.push_entry(e.seq, &e.id, foreign, &hashed);
        self.head_hash.clone_from(&e.entry_hash);
    }

    /// Checks a chunk that [`scan`] read and hashed on another thread.
    pub(crate) fn push_walked(&mut self, chunk: &scan::Chunk) {
        for w in &chunk.entries {
            self.push_entry(w.seq, &w.id, w.foreign_tenant.as_deref(), &w.hashed);
        }
        if let Some(h) = &chunk.last_entry_hash {
            self.head_hash.clone_from(h);
        }
    }

    /// Checks one entry whose hashes are known (`foreign`: its tenant, when not this one).
    fn push_entry(&mut self, seq: i64, id: &str, foreign: Option<&str>, hashed: &Hashed) {
        let e = EntryKey { seq, id };
        self.entries_checked += 1;
        if let Some(other) = foreign {
            self.anomalies.push(Anomaly::at(
                AnomalyKind::ForeignTenant,
                e.seq,
                format!("entry belongs to tenant `{other}`"),
            ));
        }
        if self.last_seq == Some(e.seq) {
            self.anomalies.push(Anomaly::at(
                AnomalyKind::DuplicateSeq,
                e.seq,
                format!("a second entry (`{}`) carries seq {}", e.id, e.seq),
            ));
        } else if e.seq != self.expected_seq {
            let mut a = Anomaly::at(
                AnomalyKind::SeqGap,
                self.expected_seq,
                format!("expected seq {}, found {}", self.expected_seq, e.seq),
            );
            if e.seq > self.expected_seq {
                a.seq_end = Some(e.seq - 1);
            }
            self.anomalies.push(a);
        }
        let stored = hashed.stored;
        let prev = hashed.prev;
        if prev != self.prev_hash {
            let earlier = self
                .recent
                .iter()
                .find(|(h, _)| *h == prev)
                .map(|(_, s)| *s);
            match earlier {
                Some(s) => self.anomalies.push(Anomaly {
                    kind: AnomalyKind::ReorderedSeq,
                    seq: Some(s + 1),
                    seq_end: Some((e.seq - 1).max(s + 1)),
                    record: None,
                    detail: format!(
                        "the entry at seq {} links to the entry at seq {s}: the entries between \
                         them were inserted or moved",
                        e.seq
                    ),
                }),
                None => {
                    self.dangling.insert(prev, e.seq);
                    self.anomalies.push(Anomaly::at(
                        AnomalyKind::BrokenPrevLink,
                        e.seq,
                        "prev_hash is not the previous entry's hash",
                    ));
                }
            }
        }
        if !self.dangling.is_empty()
            && let Some(linked_from) = self.dangling.remove(&stored)
        {
            self.anomalies.push(Anomaly::at(
                AnomalyKind::ReorderedSeq,
                linked_from.min(e.seq),
                format!(
                    "the entry at seq {linked_from} links to this later entry (seq {}): \
                     entries were moved",
                    e.seq
                ),
            ));
        }
        if hashed.computed != stored {
            self.anomalies.push(Anomaly::at(
                AnomalyKind::EntryHashMismatch,
                e.seq,
                "the stored entry_hash is not the hash of the stored fields",
            ));
        }
        self.frontier.push(stored);
        while let Some((size, root, kind, what)) = self.expected_roots.front() {
            if *size != self.frontier.size() {
                break;
            }
            if self.frontier.root() != *root {
                self.anomalies.push(Anomaly::at(
                    *kind,
                    *size as i64,
                    format!("the root of the first {size} entries differs from {what}"),
                ));
            }
            self.expected_roots.pop_front();
        }
        if self.recent.len() == REORDER_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back((stored, e.seq));
        self.last_seq = Some(e.seq);
        self.expected_seq = e.seq.max(self.expected_seq - 1) + 1;
        self.prev_hash = stored;
    }

    /// Ends the walk: expected roots beyond the ledger's size mean a removed tail.
    pub fn finish(mut self) -> (Vec<Anomaly>, Frontier, Option<Head>, u64) {
        let size = self.frontier.size() as i64;
        for (expected, _, kind, what) in self.expected_roots.drain(..) {
            let kind = if kind == AnomalyKind::CheckpointRootMismatch {
                AnomalyKind::Truncated
            } else {
                AnomalyKind::Rollback
            };
            self.anomalies.push(Anomaly {
                kind,
                seq: Some(size + 1),
                seq_end: Some(expected as i64),
                record: None,
                detail: format!("{what} covers {expected} entries, the ledger has {size}"),
            });
        }
        let head = self.last_seq.map(|seq| Head {
            seq,
            entry_hash: self.head_hash,
        });
        (self.anomalies, self.frontier, head, self.entries_checked)
    }
}

/// What the walk's messages name an entry by.
struct EntryKey<'a> {
    seq: i64,
    id: &'a str,
}

/// Serializes a frontier as concatenated hex.
pub fn frontier_text(f: &Frontier) -> String {
    f.hashes().iter().map(hex::encode).collect()
}

/// Parses a stored frontier of a tree of `size` leaves.
pub fn parse_frontier(size: u64, text: &str) -> Option<Frontier> {
    if !text.len().is_multiple_of(64) {
        return None;
    }
    let hashes = (0..text.len() / 64)
        .map(|i| merkle::parse_hash(text.get(i * 64..i * 64 + 64)?))
        .collect::<Option<Vec<_>>>()?;
    Frontier::from_parts(size, hashes)
}

/// A stored checkpoint with its signature checked.
pub(crate) struct CheckedCheckpoint {
    pub row: ledger_checkpoints::Model,
    pub root: [u8; 32],
    /// Why the checkpoint cannot be trusted; `None` when its signature, origin and row agree.
    pub problem: Option<Anomaly>,
}

/// A key trusted for a ledger's checkpoints only up to a tree size: a signing key a rotation
/// retired, for what the ledger's checkpoints covered when it was retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredKey {
    pub verifier: NoteVerifier,
    pub max_tree_size: i64,
}

/// The tenant's stored checkpoints, smallest first, each with its signature checked against
/// `verifiers` (or a `retired` key within its bound) and its note against `origin` and its row.
pub(crate) async fn read_checkpoints<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    verifiers: &[NoteVerifier],
    retired: &[RetiredKey],
    origin: &str,
) -> AppResult<Vec<CheckedCheckpoint>> {
    Ok(ledger_checkpoints::Entity::find()
        .filter(ledger_checkpoints::Column::TenantId.eq(tenant_id))
        .order_by_asc(ledger_checkpoints::Column::TreeSize)
        .all(conn)
        .await
        .context("read the ledger's checkpoints")?
        .into_iter()
        .map(|row| check_checkpoint(row, verifiers, retired, origin))
        .collect())
}

/// The Merkle frontier of the newest good checkpoint whose stored frontier folds to its signed
/// root: where a walk can resume.
pub(crate) fn newest_resumable(checkpoints: &[CheckedCheckpoint]) -> Option<Frontier> {
    checkpoints
        .iter()
        .rev()
        .filter(|c| c.problem.is_none() && c.row.tree_size > 0)
        .find_map(|c| {
            let f = parse_frontier(c.row.tree_size as u64, c.row.frontier.as_deref()?)?;
            (f.root() == c.root).then_some(f)
        })
}

fn check_checkpoint(
    row: ledger_checkpoints::Model,
    verifiers: &[NoteVerifier],
    retired: &[RetiredKey],
    origin: &str,
) -> CheckedCheckpoint {
    let root = merkle::parse_hash(&row.root_hash).unwrap_or([0u8; 32]);
    let mut opened = note::open_checkpoint(&row.signed_note, verifiers);
    if matches!(opened, Err(NoteError::UnknownKey(_))) {
        let by_retired = retired.iter().find_map(|k| {
            note::open_checkpoint(&row.signed_note, std::slice::from_ref(&k.verifier))
                .ok()
                .map(|cp| (k, cp))
        });
        match by_retired {
            Some((k, cp)) if cp.tree_size as i64 <= k.max_tree_size => opened = Ok(cp),
            Some((k, cp)) => {
                let problem = Anomaly::at(
                    AnomalyKind::UnknownKeySignature,
                    row.tree_size,
                    format!(
                        "checkpoint of size {} is signed by the retired key {}+{}, which its \
                         rotation trusts only up to size {}",
                        cp.tree_size,
                        k.verifier.name(),
                        k.verifier.key_id_hex(),
                        k.max_tree_size
                    ),
                );
                return CheckedCheckpoint {
                    row,
                    root,
                    problem: Some(problem),
                };
            }
            None => {}
        }
    }
    let problem = match opened {
        Err(NoteError::UnknownKey(who)) => Some(Anomaly::at(
            AnomalyKind::UnknownKeySignature,
            row.tree_size,
            format!(
                "checkpoint of size {} is signed by an untrusted key ({who})",
                row.tree_size
            ),
        )),
        Err(e) => Some(Anomaly::at(
            AnomalyKind::BadSignature,
            row.tree_size,
            format!("checkpoint of size {}: {}", row.tree_size, e.describe()),
        )),
        Ok(cp) if cp.origin != origin => Some(Anomaly::at(
            AnomalyKind::BadSignature,
            row.tree_size,
            format!(
                "checkpoint of size {} is signed for origin `{}`, not `{origin}`",
                row.tree_size, cp.origin
            ),
        )),
        Ok(cp) if cp.tree_size as i64 != row.tree_size || cp.root != root => Some(Anomaly::at(
            AnomalyKind::BadSignature,
            row.tree_size,
            format!(
                "the stored checkpoint row (size {}) does not match its signed note (size {})",
                row.tree_size, cp.tree_size
            ),
        )),
        Ok(_) => None,
    };
    CheckedCheckpoint { row, root, problem }
}

fn view(c: &CheckedCheckpoint) -> CheckpointView {
    CheckpointView {
        tree_size: c.row.tree_size,
        root_hash: c.row.root_hash.clone(),
        key_id: c.row.key_id.clone(),
        signature_valid: c.problem.is_none(),
        signed_note: c.row.signed_note.clone(),
        recorded_at: c.row.recorded_at,
    }
}

/// Verifies one tenant's ledger.
pub async fn verify(
    conn: &DatabaseConnection,
    tenant_id: &str,
    opts: &VerifyOptions,
) -> AppResult<Report> {
    let checkpoints = read_checkpoints(
        conn,
        tenant_id,
        &opts.verifiers,
        &opts.retired,
        &opts.origin,
    )
    .await?;
    let mut anomalies: Vec<Anomaly> = checkpoints
        .iter()
        .filter_map(|c| c.problem.clone())
        .collect();
    if !super::ledgers::tenant_row_exists(conn, tenant_id).await? {
        anomalies.push(Anomaly {
            kind: AnomalyKind::MissingTenant,
            seq: None,
            seq_end: None,
            record: None,
            detail: format!(
                "the ledger of `{tenant_id}` exists, but the tenant has no row in `tenants` \
                 (it was deleted)"
            ),
        });
    }

    let trusted = match &opts.trusted_checkpoint {
        None => None,
        Some(text) => {
            let cp = note::open_checkpoint(text, &opts.verifiers).map_err(|e| {
                AppError::bad_input(format!("the trusted checkpoint: {}", e.describe()))
            })?;
            if cp.origin != opts.origin {
                return Err(AppError::bad_input(format!(
                    "the trusted checkpoint is for origin `{}`, not `{}`",
                    cp.origin, opts.origin
                )));
            }
            Some(cp)
        }
    };

    // Where to start: the newest good checkpoint with a usable frontier (incremental only).
    let start = match (opts.mode, &trusted) {
        (VerificationMode::Incremental, None) => newest_resumable(&checkpoints),
        _ => None,
    };
    let mut mode = VerificationMode::Full;
    let mut check = match start {
        None => ChainCheck::new(tenant_id),
        Some(frontier) => {
            let size = frontier.size() as i64;
            let last = audit_ledger::Entity::find()
                .filter(audit_ledger::Column::TenantId.eq(tenant_id))
                .filter(audit_ledger::Column::Seq.eq(size))
                .one(conn)
                .await
                .context("read the entry a checkpoint ends with")?;
            match last {
                Some(e) => {
                    mode = VerificationMode::Incremental;
                    ChainCheck::resume(tenant_id, size + 1, e.entry_hash, frontier)
                }
                // The entry the checkpoint ends with is gone: walk everything to say what.
                None => ChainCheck::new(tenant_id),
            }
        }
    };
    let from_seq = check.expected_seq;
    check.expect_checkpoint_roots(&checkpoints);
    if let Some(t) = &trusted {
        check.expect_root(
            t.tree_size,
            t.root,
            AnomalyKind::Rollback,
            format!("the trusted checkpoint of size {}", t.tree_size),
        );
    }

    // Read and hash on other tasks and threads while this one walks the chain.
    let (mut rx, reader) = scan::read(conn, tenant_id, from_seq, opts.parallel);
    let mut anchors: Vec<AnchorClaim> = Vec::new();
    let mut newest: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        check.push_walked(&chunk);
        for e in &chunk.special {
            if let Some(a) = AnchorClaim::of(e) {
                anchors.push(a);
            }
        }
        if let Some((o, r)) = chunk.newest {
            newest = Some(newest.map_or((o, r), |(no, nr)| (no.max(o), nr.max(r))));
        }
    }
    reader
        .await
        .map_err(|e| AppError::internal("read the ledger for verification", e))?;
    let (chain_anomalies, frontier, head, entries_checked) = check.finish();
    anomalies.extend(chain_anomalies);

    let mut records_checked = 0;
    let anchors_checked = anchors.len() as u64;
    if opts.check_records {
        records_checked = check_anchors(conn, &anchors, &mut anomalies).await?;
        if mode == VerificationMode::Full
            && find_unanchored_records(conn, tenant_id, &anchors, &mut anomalies).await?
        {
            let size = frontier.size() as i64;
            anomalies.push(Anomaly::at(
                AnomalyKind::Truncated,
                size + 1,
                "evidence records point to anchor entries that are gone from the ledger",
            ));
        }
    }
    let mut exports_checked = 0;
    if mode == VerificationMode::Full {
        exports_checked = export_trail::check(conn, tenant_id, &mut anomalies).await?;
    }

    anomalies.sort_by_key(|a| (a.seq.unwrap_or(i64::MAX), a.kind as u8));
    let good = checkpoints.iter().rev().find(|c| c.problem.is_none());
    let covered = good.map_or(0, |c| c.row.tree_size);
    let size = frontier.size() as i64;
    let unanchored_entries = (size - covered).max(0);
    let hash_chain_valid = !anomalies.iter().any(|a| a.kind.is_chain());
    let status = if !anomalies.is_empty() {
        Verdict::Broken
    } else if size == 0 && checkpoints.is_empty() {
        Verdict::Empty
    } else if unanchored_entries > 0 {
        Verdict::VerifiedUnanchoredTail
    } else {
        Verdict::Verified
    };
    Ok(Report {
        tenant_id: tenant_id.to_string(),
        mode,
        status,
        hash_chain_valid,
        from_seq,
        entries_checked,
        checkpoints_checked: checkpoints.len() as u64,
        anchors_checked,
        records_checked,
        first_broken_seq: anomalies.iter().filter_map(|a| a.seq).min(),
        anomalies,
        head,
        merkle_root: hex::encode(frontier.root()),
        latest_checkpoint: checkpoints.last().map(view),
        unanchored_entries,
        trusted_checkpoint_size: trusted.map(|t| t.tree_size as i64),
        exports_checked,
        verified_at: Utc::now(),
        newest,
    })
}

/// An anchor entry's claim: the records linked to `anchor_id` have this Merkle root.
struct AnchorClaim {
    seq: i64,
    anchor_id: String,
    merkle_root: Option<String>,
    records: Option<u64>,
}

impl AnchorClaim {
    fn of(e: &audit_ledger::Model) -> Option<Self> {
        if e.category != "ANCHOR" || e.event_type != "EVIDENCE_BATCH_ANCHORED" {
            return None;
        }
        let state: Option<Value> = e
            .after_state
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok());
        let field = |name: &str| state.as_ref().and_then(|s| s.get(name).cloned());
        Some(AnchorClaim {
            seq: e.seq,
            anchor_id: e.entity_id.clone(),
            merkle_root: field("merkle_root").and_then(|v| v.as_str().map(str::to_string)),
            records: field("records").and_then(|v| v.as_u64()),
        })
    }
}

/// Anchors whose records are read per statement.
const ANCHORS_PER_READ: usize = 200;

/// A record recomputed: its table's position in the leaf order, key, hash, stored hash.
type Recomputed = (usize, String, [u8; 32], bool);

/// Recomputes every claimed anchor's root from the records linked to it.
async fn check_anchors(
    conn: &DatabaseConnection,
    anchors: &[AnchorClaim],
    anomalies: &mut Vec<Anomaly>,
) -> AppResult<u64> {
    let mut records = 0u64;
    for group in anchors.chunks(ANCHORS_PER_READ) {
        let ids: Vec<&str> = group.iter().map(|a| a.anchor_id.as_str()).collect();
        let mut by_anchor: HashMap<String, Vec<Recomputed>> = HashMap::new();
        let mut add = |anchor: Option<String>, r: Recomputed| {
            if let Some(a) = anchor {
                by_anchor.entry(a).or_default().push(r);
            }
        };
        for r in llm_runs::Entity::find()
            .filter(llm_runs::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored runs")?
        {
            let h = hash_json(&run_json(&r));
            add(
                r.anchor_id.clone(),
                recomputed(0, format!("llm_runs:{}", r.run_id), &h, &r.record_hash),
            );
        }
        for s in trace_steps::Entity::find()
            .filter(trace_steps::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored steps")?
        {
            let h = hash_json(&step_json(&s));
            add(
                s.anchor_id.clone(),
                recomputed(
                    1,
                    format!("trace_steps:{}#{}", s.trace_id, s.step_index),
                    &h,
                    &s.record_hash,
                ),
            );
        }
        for g in governance_events::Entity::find()
            .filter(governance_events::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored governance events")?
        {
            let h = hash_json(&governance_json(&g));
            add(
                g.anchor_id.clone(),
                recomputed(2, format!("governance_events:{}", g.id), &h, &g.record_hash),
            );
        }
        for s in system_records::Entity::find()
            .filter(system_records::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored system records")?
        {
            let h = hash_json(&system_json(&s));
            add(
                s.anchor_id.clone(),
                recomputed(3, format!("system_records:{}", s.id), &h, &s.record_hash),
            );
        }
        for t in telemetry_samples::Entity::find()
            .filter(telemetry_samples::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored telemetry samples")?
        {
            let h = hash_json(&telemetry_json(&t));
            add(
                t.anchor_id.clone(),
                recomputed(4, format!("telemetry_samples:{}", t.id), &h, &t.record_hash),
            );
        }
        for claim in group {
            let linked = by_anchor.remove(&claim.anchor_id).unwrap_or_default();
            records += linked.len() as u64;
            let mut per_table: [Vec<[u8; 32]>; 5] = Default::default();
            for (table, _, hash, _) in &linked {
                per_table[*table].push(*hash);
            }
            let root = hex::encode(merkle::root(&anchor_leaves(per_table)));
            let count_ok = claim.records.is_none_or(|n| n == linked.len() as u64);
            if claim.merkle_root.as_deref() == Some(root.as_str()) && count_ok {
                continue;
            }
            let edited: Vec<&str> = linked
                .iter()
                .filter(|(.., stored_matches)| !stored_matches)
                .map(|(_, key, ..)| key.as_str())
                .collect();
            let detail = if !edited.is_empty() {
                format!(
                    "records no longer hash to their stored hash: {}",
                    edited
                        .iter()
                        .take(5)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else if !count_ok {
                format!(
                    "the anchor covers {} records, {} are linked to it",
                    claim.records.unwrap_or_default(),
                    linked.len()
                )
            } else {
                "the records linked to this anchor do not hash to its Merkle root".to_string()
            };
            anomalies.push(Anomaly {
                kind: AnomalyKind::AnchorMismatch,
                seq: Some(claim.seq),
                seq_end: None,
                record: edited.first().map(|k| k.to_string()),
                detail,
            });
        }
    }
    Ok(records)
}

fn recomputed(table: usize, key: String, hash: &str, stored: &str) -> Recomputed {
    (
        table,
        key,
        merkle::parse_hash(hash).unwrap_or([0u8; 32]),
        hash == stored,
    )
}

/// Most records without an anchor reported one by one.
const UNANCHORED_REPORTED: usize = 20;

/// Records of the tenant linked to no anchor entry of its ledger (none, or one that is gone).
/// `anchors` are the anchor ids the walk found; an anchor written after the walk (a busy tenant)
/// is looked up before it is called gone. The platform ledger answers for the global system
/// records, whose anchors must be platform entries. True when some records point to an anchor
/// that is gone (the ledger lost entries).
async fn find_unanchored_records(
    conn: &DatabaseConnection,
    tenant_id: &str,
    anchors: &[AnchorClaim],
    anomalies: &mut Vec<Anomaly>,
) -> AppResult<bool> {
    let known: std::collections::HashSet<&str> =
        anchors.iter().map(|a| a.anchor_id.as_str()).collect();
    let backend = conn.get_database_backend();
    let p = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    };
    let platform = tenant_id == crate::auth::PLATFORM_LEDGER;
    let tables: Vec<(&str, &str)> = if platform {
        vec![("system_records", "id")]
    } else {
        vec![
            ("llm_runs", "run_id"),
            ("trace_steps", "trace_id || '#' || CAST(step_index AS TEXT)"),
            ("governance_events", "id"),
            ("system_records", "id"),
            ("telemetry_samples", "id"),
        ]
    };
    // The records this ledger answers for, and the parameters that select them.
    let (scope, scope_values): (String, Vec<sea_orm::Value>) = if platform {
        ("tenant_id IS NULL".into(), vec![])
    } else {
        (format!("tenant_id = {}", p(1)), vec![tenant_id.into()])
    };
    let next = scope_values.len() + 1;
    let mut missing_anchor = false;
    let mut reported = 0;
    for (table, key) in tables {
        // One pass over the records: which anchors do they name?
        let groups = conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT anchor_id FROM {table} WHERE {scope} GROUP BY anchor_id"),
                scope_values.clone(),
            ))
            .await
            .with_context(|| format!("list the anchors {table} records name"))?;
        for row in groups {
            let anchor: Option<String> = row.try_get("", "anchor_id").unwrap_or_default();
            if let Some(a) = &anchor
                && (known.contains(a.as_str()) || anchor_exists(conn, tenant_id, a).await?)
            {
                continue;
            }
            missing_anchor |= anchor.is_some();
            if reported >= UNANCHORED_REPORTED {
                continue;
            }
            let mut values = scope_values.clone();
            let condition = match &anchor {
                Some(a) => {
                    values.push(a.clone().into());
                    format!("anchor_id = {}", p(next))
                }
                None => "anchor_id IS NULL".to_string(),
            };
            let rows = conn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT {key} AS k FROM {table} WHERE {scope} AND {condition} \
                         ORDER BY 1 LIMIT {}",
                        UNANCHORED_REPORTED - reported
                    ),
                    values,
                ))
                .await
                .with_context(|| format!("list unanchored {table} records"))?;
            for row in rows {
                let k: String = row.try_get("", "k").unwrap_or_default();
                reported += 1;
                anomalies.push(Anomaly {
                    kind: AnomalyKind::UnanchoredRecord,
                    seq: None,
                    seq_end: None,
                    record: Some(format!("{table}:{k}")),
                    detail: match &anchor {
                        Some(a) => format!("linked to anchor `{a}`, which is not in the ledger"),
                        None => "linked to no anchor entry".to_string(),
                    },
                });
            }
        }
    }
    Ok(missing_anchor)
}

/// Whether an anchor entry with this id exists in this ledger (for the global system records
/// the platform ledger answers for: in the platform ledger, never in a tenant's).
async fn anchor_exists(
    conn: &DatabaseConnection,
    tenant_id: &str,
    anchor_id: &str,
) -> AppResult<bool> {
    let q = audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(tenant_id))
        .filter(audit_ledger::Column::Category.eq("ANCHOR"))
        .filter(audit_ledger::Column::EntityId.eq(anchor_id));
    Ok(q.one(conn)
        .await
        .context("look up an anchor entry")?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::entry_hash;
    use chrono::TimeZone;

    /// A deterministic xorshift generator: the property test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A chain of `n` entries with every optional field sometimes present, sometimes absent.
    fn chain(n: i64) -> Vec<audit_ledger::Model> {
        let mut prev = GENESIS_HASH.to_string();
        let base = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        (1..=n)
            .map(|seq| {
                let opt = |k: i64, v: &str| (seq % k != 0).then(|| v.to_string());
                let mut e = audit_ledger::Model {
                    tenant_id: "acme".into(),
                    seq,
                    id: format!("le_{seq:04}"),
                    category: "GOVERNANCE".into(),
                    event_type: "POLICY_RULE_CHANGED".into(),
                    entity_type: "policy".into(),
                    entity_id: format!("pol-{seq}"),
                    actor_type: "HUMAN".into(),
                    actor_id: opt(2, "alice@example.com"),
                    action_reason: opt(3, "quarterly review"),
                    decision: opt(4, "ALLOW"),
                    before_state: opt(2, r#"{"limit":5}"#),
                    after_state: opt(3, r#"{"limit":8}"#),
                    correlation_id: opt(5, "corr-1"),
                    occurred_at: base + chrono::Duration::seconds(seq),
                    recorded_at: base + chrono::Duration::seconds(seq + 1),
                    prev_hash: prev.clone(),
                    entry_hash: String::new(),
                };
                e.entry_hash = entry_hash(&e);
                prev = e.entry_hash.clone();
                e
            })
            .collect()
    }

    fn mutate_text(rng: &mut Rng, s: &mut String) {
        let chars: Vec<char> = s.chars().collect();
        if chars.is_empty() {
            s.push('x');
            return;
        }
        let at = rng.below(chars.len());
        let replacement = if chars[at] == 'a' { 'b' } else { 'a' };
        *s = chars
            .iter()
            .enumerate()
            .map(|(i, c)| if i == at { replacement } else { *c })
            .collect();
    }

    fn mutate_opt(rng: &mut Rng, v: &mut Option<String>) {
        match v {
            Some(_) if rng.below(3) == 0 => *v = None,
            Some(s) => mutate_text(rng, s),
            None => *v = Some("injected".into()),
        }
    }

    /// Changes one stored field of one entry at random.
    fn mutate(rng: &mut Rng, e: &mut audit_ledger::Model) -> &'static str {
        let shift = |rng: &mut Rng| {
            let micros = [1, -1, 1_000_000, -3_600_000_000][rng.below(4)];
            chrono::Duration::microseconds(micros)
        };
        match rng.below(19) {
            0 => {
                mutate_text(rng, &mut e.tenant_id);
                "tenant_id"
            }
            1 => {
                e.seq += [1, -1, 2, 100][rng.below(4)];
                "seq"
            }
            2 => {
                mutate_text(rng, &mut e.prev_hash);
                "prev_hash"
            }
            3 => {
                mutate_text(rng, &mut e.id);
                "id"
            }
            4 => {
                mutate_text(rng, &mut e.category);
                "category"
            }
            5 => {
                mutate_text(rng, &mut e.event_type);
                "event_type"
            }
            6 => {
                mutate_text(rng, &mut e.entity_type);
                "entity_type"
            }
            7 => {
                mutate_text(rng, &mut e.entity_id);
                "entity_id"
            }
            8 => {
                mutate_text(rng, &mut e.actor_type);
                "actor_type"
            }
            9 => {
                mutate_opt(rng, &mut e.actor_id);
                "actor_id"
            }
            10 => {
                mutate_opt(rng, &mut e.action_reason);
                "action_reason"
            }
            11 => {
                mutate_opt(rng, &mut e.decision);
                "decision"
            }
            12 => {
                mutate_opt(rng, &mut e.before_state);
                "before_state"
            }
            13 => {
                mutate_opt(rng, &mut e.after_state);
                "after_state"
            }
            14 => {
                mutate_opt(rng, &mut e.correlation_id);
                "correlation_id"
            }
            15 => {
                e.occurred_at += shift(rng);
                "occurred_at"
            }
            16 => {
                e.recorded_at += shift(rng);
                "recorded_at"
            }
            _ => {
                mutate_text(rng, &mut e.entry_hash);
                "entry_hash"
            }
        }
    }

    fn walk(entries: &[audit_ledger::Model], checkpoint: Option<(u64, [u8; 32])>) -> Vec<Anomaly> {
        let mut check = ChainCheck::new("acme");
        if let Some((size, root)) = checkpoint {
            check.expect_root(
                size,
                root,
                AnomalyKind::CheckpointRootMismatch,
                "the checkpoint".into(),
            );
        }
        for e in entries {
            check.push(e);
        }
        check.finish().0
    }

    #[test]
    fn an_untouched_chain_has_no_anomaly() {
        let entries = chain(40);
        assert!(walk(&entries, None).is_empty());
    }

    /// Any single mutation of any stored field of any entry is reported, with or without a
    /// checkpoint covering the chain (the walk reads entries in (seq, id) order, as the
    /// database returns them).
    #[test]
    fn any_single_mutation_is_never_reported_clean() {
        let original = chain(37);
        let leaves: Vec<[u8; 32]> = original
            .iter()
            .filter_map(|e| merkle::parse_hash(&e.entry_hash))
            .collect();
        let checkpoint = (leaves.len() as u64, merkle::root(&leaves));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..5000 {
            let mut entries = original.clone();
            let i = rng.below(entries.len());
            let field = mutate(&mut rng, &mut entries[i]);
            if entries[i] == original[i] {
                continue;
            }
            entries.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
            let with_checkpoint = round % 2 == 0;
            let anomalies = walk(&entries, with_checkpoint.then_some(checkpoint));
            assert!(
                !anomalies.is_empty(),
                "round {round}: {field} of entry {} changed and nothing was reported",
                i + 1
            );
        }
    }

    #[test]
    fn stored_frontier_round_trips() {
        let mut f = Frontier::new();
        for i in 0..13u8 {
            f.push([i; 32]);
        }
        let text = frontier_text(&f);
        let back = parse_frontier(13, &text).unwrap();
        assert_eq!(back.root(), f.root());
        assert!(parse_frontier(12, &text).is_none());
        assert!(parse_frontier(13, &text[1..]).is_none());
    }
}
