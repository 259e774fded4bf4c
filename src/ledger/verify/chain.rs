//! The chain walk: the pure check fed entries in (seq, id) order. Seq numbers, `prev_hash`
//! links, entry hashes, moved and foreign entries, and the Merkle roots the tree must have at
//! the sizes signed checkpoints (or an auditor's) cover.

use std::collections::{HashMap, VecDeque};

use super::checkpoints::CheckedCheckpoint;
use super::report::{Anomaly, AnomalyKind, Head};
use crate::ledger::proof::Frontier;
use crate::ledger::scan::{self, Hashed, UNPARSABLE};
use crate::ledger::{GENESIS_HASH, merkle};
use entity::audit_ledger;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::entry_hash;
    use chrono::{TimeZone, Utc};

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
}
