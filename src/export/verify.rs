//! Offline verification of an evidence bundle (`runledger verify-bundle`): no database, only
//! the file, a verifier key and optionally a checkpoint the auditor kept. Reads the file once,
//! line by line (memory holds the anchors and a 16-byte digest of each record name seen), and
//! reports every problem with the member, line and record it was found in (docs/exports.md,
//! "Verifying").

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::bundle::{FORMAT_VERSION, READABLE_FORMATS};
use crate::canonical::timestamp;
use crate::ledger::anchor::AnchorState;
use crate::ledger::note::{self, NoteError, NoteVerifier};
use crate::ledger::proof::{subtree_of, verify_consistency, verify_inclusion};
use crate::ledger::{entry_hash, merkle};
use entity::audit_ledger;

/// The members of a bundle, in file order.
pub const MEMBERS: [&str; 7] = [
    "checkpoint",
    "verifier_key",
    "request",
    "anchors",
    "records",
    "entries",
    "manifest",
];

/// The member a line of `type` belongs to.
fn member_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "checkpoint" => "checkpoint",
        "verifier_key" => "verifier_key",
        "request" => "request",
        "anchor" => "anchors",
        "record" => "records",
        "entry" => "entries",
        "manifest" => "manifest",
        _ => return None,
    })
}

/// What the auditor brings besides the file.
#[derive(Default)]
pub struct Options {
    /// The key to trust; without it, the bundle's own `verifier_key` (which proves only that
    /// the bundle is self-consistent: see the exit codes).
    pub public_key: Option<NoteVerifier>,
    /// A signed checkpoint the auditor kept, of the same ledger.
    pub trusted_checkpoint: Option<String>,
    /// The consistency proof between the bundle's checkpoint and the kept one, when their sizes
    /// differ and the bundle does not carry it (`audit { consistencyProof }`).
    pub consistency_proof: Option<Vec<[u8; 32]>>,
}

/// One problem found.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub member: String,
    /// 1-based line of the file, when the problem is in one line.
    pub line: Option<u64>,
    /// The record or entry, e.g. `trace_steps:tr_1#3`, `ledger:42`.
    pub record: Option<String>,
    pub detail: String,
}

/// The report `verify-bundle` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `VERIFIED`, `VERIFIED_UNTRUSTED_KEY` (only against the key the bundle carries) or `BROKEN`.
    pub status: &'static str,
    pub export_id: Option<String>,
    pub tenant: Option<String>,
    pub checkpoint_size: Option<u64>,
    pub checkpoint_root: Option<String>,
    /// `argument` (`--public-key`) or `bundle`.
    pub key_source: &'static str,
    pub records_checked: u64,
    pub entries_checked: u64,
    pub anchors_checked: u64,
    /// `consistent` when a kept checkpoint was given and the bundle's tree extends it (or it
    /// extends the bundle's); absent when none was given.
    pub trusted_checkpoint: Option<&'static str>,
    pub first_bad_member: Option<String>,
    pub first_bad_record: Option<String>,
    pub problems: Vec<Problem>,
}

impl Report {
    /// The exit code, as `runledger verify`'s: 0 verified under the key given; 1 a problem;
    /// 3 verified, but only against the key the bundle itself carries.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            "VERIFIED" => 0,
            "VERIFIED_UNTRUSTED_KEY" => 3,
            _ => 1,
        }
    }
}

/// An anchor line's commitment.
struct Anchor {
    seq: i64,
    root: Option<[u8; 32]>,
    records: Option<u64>,
    /// The height and roots of the subtrees its records' proofs lead to, when the line lists
    /// them (already held to `root`); `None` when the proofs lead to `root` itself.
    subtrees: Option<Subtrees>,
}

/// A subtree height and the roots of the subtrees of that height, in order.
type Subtrees = (u32, Vec<[u8; 32]>);

struct State {
    opts_key: Option<NoteVerifier>,
    problems: Vec<Problem>,
    note: Option<String>,
    /// `(origin, size, root)` of the opened checkpoint.
    checkpoint: Option<(String, u64, [u8; 32])>,
    tenant: Option<String>,
    request: Option<audit_ledger::Model>,
    anchors: HashMap<String, Anchor>,
    /// The first 16 bytes of SHA-256 of every record or entry name seen (a duplicate is a
    /// repeated name; 16 bytes a name keeps millions of them in tens of megabytes).
    names: HashSet<[u8; 16]>,
    per_table: BTreeMap<String, u64>,
    entries: u64,
    members: BTreeMap<&'static str, (u64, Sha256)>,
    last_member: usize,
    manifest: Option<Value>,
    line_no: u64,
    key_source: &'static str,
}

impl State {
    fn problem(
        &mut self,
        kind: &'static str,
        member: &str,
        record: Option<String>,
        detail: impl Into<String>,
    ) {
        self.problems.push(Problem {
            kind,
            member: member.to_string(),
            line: Some(self.line_no),
            record,
            detail: detail.into(),
        });
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn hashes(v: Option<&Value>) -> Option<Vec<[u8; 32]>> {
    v?.as_array()?
        .iter()
        .map(|h| h.as_str().and_then(merkle::parse_hash))
        .collect()
}

/// A canonical timestamp back to an instant; `None` unless the text is exactly canonical.
fn canonical_time(t: Option<String>) -> Option<DateTime<Utc>> {
    let t = t?;
    let parsed = DateTime::parse_from_rfc3339(&t).ok()?.with_timezone(&Utc);
    (timestamp(&parsed) == t).then_some(parsed)
}

/// The entry an entry line holds, or why it cannot be read.
fn entry_of(e: &Value) -> Result<audit_ledger::Model, String> {
    let req = |k: &str| text(e, k).ok_or_else(|| format!("entry field `{k}` is missing"));
    let opt = |k: &str| text(e, k);
    Ok(audit_ledger::Model {
        tenant_id: req("tenant_id")?,
        seq: e
            .get("seq")
            .and_then(Value::as_i64)
            .filter(|s| *s >= 1)
            .ok_or("entry field `seq` is not a positive integer")?,
        id: req("id")?,
        category: req("category")?,
        event_type: req("event_type")?,
        entity_type: req("entity_type")?,
        entity_id: req("entity_id")?,
        actor_type: req("actor_type")?,
        actor_id: opt("actor_id"),
        action_reason: opt("action_reason"),
        decision: opt("decision"),
        before_state: opt("before_state"),
        after_state: opt("after_state"),
        correlation_id: opt("correlation_id"),
        occurred_at: canonical_time(opt("occurred_at"))
            .ok_or("entry field `occurred_at` is not a canonical timestamp")?,
        recorded_at: canonical_time(opt("recorded_at"))
            .ok_or("entry field `recorded_at` is not a canonical timestamp")?,
        prev_hash: req("prev_hash")?,
        entry_hash: String::new(),
    })
}

/// The members of a line the verifier reads straight from its text, without building a JSON
/// tree: all a record line has, and the `type` of the other (few) lines, which are then read as
/// a tree.
#[derive(Deserialize)]
struct LineFields<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    table: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<Cow<'a, str>>,
    #[serde(borrow)]
    anchor: Option<Cow<'a, str>>,
    leaf_index: Option<u64>,
    leaf_count: Option<u64>,
    #[serde(borrow)]
    proof: Option<Vec<Cow<'a, str>>>,
}

/// The fields of a record's canonical form the verifier reads (the rest is only hashed): read
/// without building the whole record as a JSON tree, which was most of the time per record.
#[derive(Deserialize)]
struct RecordFields<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    run_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    trace_id: Option<Cow<'a, str>>,
    step_index: Option<i64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

/// What [`State::names`] keeps of a name.
fn name_key(name: &str) -> [u8; 16] {
    let digest = Sha256::digest(name.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The name the report gives a record: `<table>:<key>`.
fn record_name(table: &str, r: &RecordFields<'_>) -> Option<String> {
    let key = match table {
        "llm_runs" => r.run_id.as_deref()?.to_string(),
        "trace_steps" => format!("{}#{}", r.trace_id.as_deref()?, r.step_index?),
        _ => r.id.as_deref()?.to_string(),
    };
    Some(format!("{table}:{key}"))
}

/// The record `kind` each table's canonical form carries.
fn kind_of(table: &str) -> Option<&'static str> {
    Some(match table {
        "llm_runs" => "llm_run",
        "trace_steps" => "trace_step",
        "governance_events" => "governance_event",
        "system_records" => "system_record",
        "telemetry_samples" => "telemetry_sample",
        _ => return None,
    })
}

/// Checks an entry line against the checkpoint; returns the entry when it hashes and proves.
fn check_entry(s: &mut State, member: &str, line: &Value) -> Option<audit_ledger::Model> {
    let Some(raw) = line.get("entry") else {
        s.problem("MALFORMED", member, None, "no `entry` object");
        return None;
    };
    let e = match entry_of(raw) {
        Ok(e) => e,
        Err(why) => {
            s.problem("MALFORMED", member, None, why);
            return None;
        }
    };
    let name = Some(format!("ledger:{}", e.seq));
    let computed = entry_hash(&e);
    if text(line, "entry_hash").as_deref() != Some(computed.as_str()) {
        s.problem(
            "ENTRY_HASH_MISMATCH",
            member,
            name,
            format!("the entry's fields hash to {computed}, not to its entry_hash"),
        );
        return None;
    }
    if let Some(tenant) = &s.tenant
        && &e.tenant_id != tenant
    {
        s.problem(
            "FOREIGN_TENANT",
            member,
            name,
            format!("entry of tenant {}", e.tenant_id),
        );
        return None;
    }
    let Some((_, size, root)) = s.checkpoint.clone() else {
        return Some(e);
    };
    let leaf = merkle::parse_hash(&computed).unwrap_or_default();
    let proof = hashes(line.get("proof"));
    let ok = proof
        .as_ref()
        .is_some_and(|p| verify_inclusion(&leaf, (e.seq - 1) as u64, size, p, &root));
    if !ok {
        s.problem(
            "INCLUSION_PROOF_INVALID",
            member,
            name,
            format!("the entry's proof does not lead to the checkpoint's root (tree of {size})"),
        );
        return None;
    }
    Some(e)
}

fn open_checkpoint(s: &mut State, key: &NoteVerifier) {
    let Some(note_text) = s.note.clone() else {
        return;
    };
    match note::open_checkpoint(&note_text, std::slice::from_ref(key)) {
        Ok(cp) => {
            s.tenant = cp.origin.split_once('/').map(|(_, t)| t.to_string());
            s.checkpoint = Some((cp.origin, cp.tree_size, cp.root));
        }
        Err(e) => {
            let kind = match e {
                NoteError::BadSignature(_) => "BAD_SIGNATURE",
                NoteError::UnknownKey(_) => "UNKNOWN_KEY_SIGNATURE",
                NoteError::Malformed(_) => "MALFORMED",
            };
            s.line_no = 1;
            s.problem(kind, "checkpoint", None, e.describe());
        }
    }
}

/// Verifies the bundle read from `input`.
pub fn verify(input: impl BufRead, opts: &Options) -> std::io::Result<Report> {
    let mut s = State {
        opts_key: opts.public_key.clone(),
        problems: Vec::new(),
        note: None,
        checkpoint: None,
        tenant: None,
        request: None,
        anchors: HashMap::new(),
        names: HashSet::new(),
        per_table: BTreeMap::new(),
        entries: 0,
        members: BTreeMap::new(),
        last_member: 0,
        manifest: None,
        line_no: 0,
        key_source: if opts.public_key.is_some() {
            "argument"
        } else {
            "bundle"
        },
    };
    let mut records_checked = 0u64;
    for raw in input.split(b'\n') {
        let raw = raw?;
        s.line_no += 1;
        if s.manifest.is_some() {
            s.problem("MALFORMED", "manifest", None, "lines after the manifest");
            break;
        }
        let fields: Option<LineFields> = serde_json::from_slice(&raw).ok();
        let is_record = fields
            .as_ref()
            .is_some_and(|f| f.kind.as_deref() == Some("record"));
        // Every line but a well-typed record line is also read as a JSON tree.
        let line: Value = if is_record {
            Value::Null
        } else {
            let parsed: Option<Value> = serde_json::from_slice(&raw).ok();
            let Some(line) = parsed.filter(Value::is_object) else {
                if raw.is_empty() {
                    s.problem("MALFORMED", "file", None, "an empty line");
                } else {
                    s.problem(
                        "MALFORMED",
                        "file",
                        None,
                        "a line that is not a JSON object",
                    );
                }
                continue;
            };
            line
        };
        let kind = if is_record {
            "record".to_string()
        } else {
            text(&line, "type").unwrap_or_default()
        };
        let Some(member) = member_of(&kind) else {
            s.problem(
                "MALFORMED",
                "file",
                None,
                format!("unknown line type {kind:?}"),
            );
            continue;
        };
        let position = MEMBERS.iter().position(|m| *m == member).unwrap_or(0);
        if position < s.last_member {
            s.problem(
                "MEMBER_ORDER",
                member,
                None,
                format!(
                    "a `{kind}` line after the {} member",
                    MEMBERS[s.last_member]
                ),
            );
        }
        s.last_member = s.last_member.max(position);
        if member != "manifest" {
            let m = s
                .members
                .entry(member)
                .or_insert_with(|| (0, Sha256::new()));
            m.0 += 1;
            m.1.update(&raw);
            m.1.update(b"\n");
        }
        match member {
            "checkpoint" => {
                if s.note.is_some() {
                    s.problem("MALFORMED", member, None, "a second checkpoint");
                }
                s.note = text(&line, "note");
                if let Some(key) = s.opts_key.clone() {
                    open_checkpoint(&mut s, &key);
                }
            }
            "verifier_key" => {
                if s.opts_key.is_none() {
                    match text(&line, "key").map(|k| NoteVerifier::parse(&k)) {
                        Some(Ok(key)) => open_checkpoint(&mut s, &key),
                        _ => {
                            s.problem("MALFORMED", member, None, "the verifier key does not parse")
                        }
                    }
                }
            }
            "request" => {
                if let Some(e) = check_entry(&mut s, member, &line) {
                    if e.event_type != "EXPORT_REQUESTED" || e.entity_type != "log_export" {
                        s.problem(
                            "MALFORMED",
                            member,
                            Some(format!("ledger:{}", e.seq)),
                            "the request entry is not an EXPORT_REQUESTED entry of a log_export",
                        );
                    }
                    s.request = Some(e);
                }
            }
            "anchors" => {
                if let Some(e) = check_entry(&mut s, member, &line) {
                    if e.category != "ANCHOR" || e.event_type != "EVIDENCE_BATCH_ANCHORED" {
                        s.problem(
                            "MALFORMED",
                            member,
                            Some(format!("ledger:{}", e.seq)),
                            "not an anchor entry",
                        );
                        continue;
                    }
                    let state = AnchorState::parse(e.after_state.as_deref());
                    let root = state.merkle_root.as_deref().and_then(merkle::parse_hash);
                    let records = state.records;
                    let (root, subtrees) = match subtrees_of(&line, root, records) {
                        Ok(subtrees) => (root, subtrees),
                        Err(why) => {
                            s.problem(
                                "SUBTREE_ROOTS_INVALID",
                                member,
                                Some(format!("ledger:{}", e.seq)),
                                why,
                            );
                            (None, None)
                        }
                    };
                    s.anchors.insert(
                        e.entity_id.clone(),
                        Anchor {
                            seq: e.seq,
                            root,
                            records,
                            subtrees,
                        },
                    );
                }
            }
            "entries" => {
                if let Some(e) = check_entry(&mut s, member, &line) {
                    let name = format!("ledger:{}", e.seq);
                    if !s.names.insert(name_key(&name)) {
                        s.problem(
                            "DUPLICATE_RECORD",
                            member,
                            Some(name),
                            "the entry appears twice",
                        );
                    }
                    s.entries += 1;
                }
            }
            "records" => {
                records_checked += 1;
                match &fields {
                    Some(f) if is_record => check_record(&mut s, f),
                    _ => s.problem(
                        "MALFORMED",
                        member,
                        text(&line, "name"),
                        "a record line whose members are not of their types",
                    ),
                }
            }
            _ => s.manifest = Some(line),
        }
    }
    check_manifest(&mut s);
    let trusted = opts
        .trusted_checkpoint
        .as_deref()
        .map(|t| check_trusted(&mut s, t, opts));
    let status = if !s.problems.is_empty() {
        "BROKEN"
    } else if s.key_source == "bundle" {
        "VERIFIED_UNTRUSTED_KEY"
    } else {
        "VERIFIED"
    };
    let first = s.problems.first().cloned();
    Ok(Report {
        status,
        export_id: s.manifest.as_ref().and_then(|m| text(m, "export_id")),
        tenant: s.tenant.clone(),
        checkpoint_size: s.checkpoint.as_ref().map(|c| c.1),
        checkpoint_root: s.checkpoint.as_ref().map(|c| hex::encode(c.2)),
        key_source: s.key_source,
        records_checked,
        entries_checked: s.entries,
        anchors_checked: s.anchors.len() as u64,
        trusted_checkpoint: trusted.flatten(),
        first_bad_member: first.as_ref().map(|p| p.member.clone()),
        first_bad_record: first.and_then(|p| p.record),
        problems: s.problems,
    })
}

/// The subtree roots an anchor line lists, held to the anchor's root: as many as subtrees of
/// that height over the batch's leaves, and their MTH (taken as leaf hashes) is the root.
fn subtrees_of(
    line: &Value,
    root: Option<[u8; 32]>,
    records: Option<u64>,
) -> Result<Option<Subtrees>, String> {
    let (Some(height), roots) = (line.get("subtree_height"), line.get("subtree_roots")) else {
        return match line.get("subtree_roots") {
            None => Ok(None),
            Some(_) => Err("subtree_roots without a subtree_height".into()),
        };
    };
    let height = height
        .as_u64()
        .filter(|h| *h < 64)
        .ok_or("subtree_height is not an integer below 64")? as u32;
    let roots = hashes(roots).ok_or("subtree_roots is not an array of hashes")?;
    let (Some(root), Some(n)) = (root, records) else {
        return Err("the anchor names no root and leaf count".into());
    };
    if roots.len() as u64 != n.div_ceil(1u64 << height) {
        return Err(format!(
            "{} subtree roots, not one per 2^{height} of the batch's {n} leaves",
            roots.len()
        ));
    }
    if merkle::root(&roots) != root {
        return Err("the subtree roots do not hash to the anchor's merkle_root".into());
    }
    Ok(Some((height, roots)))
}

fn check_record(s: &mut State, line: &LineFields<'_>) {
    let member = "records";
    let line_name = line.name.as_deref().map(str::to_string);
    let table = line.table.as_deref().unwrap_or_default().to_string();
    let Some(canonical) = line.record.as_deref() else {
        s.problem("MALFORMED", member, line_name, "no `record` text");
        return;
    };
    let record: Option<RecordFields> = serde_json::from_str(canonical).ok();
    let Some(record) = record else {
        s.problem("MALFORMED", member, line_name, "the record is not JSON");
        return;
    };
    let name = record_name(&table, &record).or_else(|| line_name.clone());
    if kind_of(&table).is_none() || record.kind.as_deref() != kind_of(&table) {
        s.problem(
            "MALFORMED",
            member,
            name,
            format!(
                "a record of kind {:?} in table {table:?}",
                record.kind.as_deref()
            ),
        );
        return;
    }
    if name.is_some() && line_name != name {
        s.problem(
            "MALFORMED",
            member,
            name,
            "the line's name is not the record's",
        );
        return;
    }
    let label = name.clone().unwrap_or_default();
    if !s.names.insert(name_key(&label)) {
        s.problem("DUPLICATE_RECORD", member, name, "the record appears twice");
        return;
    }
    if let Some(tenant) = s.tenant.as_deref()
        && record.tenant_id.as_deref() != Some(tenant)
    {
        s.problem(
            "FOREIGN_TENANT",
            member,
            name,
            "the record is not of the bundle's tenant",
        );
        return;
    }
    let anchor_id = line.anchor.as_deref().unwrap_or_default();
    let Some(anchor) = s.anchors.get(anchor_id) else {
        s.problem(
            "UNKNOWN_ANCHOR",
            member,
            name,
            format!("anchor {anchor_id:?} is not in the anchors member"),
        );
        return;
    };
    if let Some(request) = &s.request
        && anchor.seq >= request.seq
    {
        let detail = format!("anchored at {}, after the request", anchor.seq);
        s.problem("ANCHOR_AFTER_REQUEST", member, name, detail);
        return;
    }
    let hash: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
    let proof: Option<Vec<[u8; 32]>> = line
        .proof
        .as_ref()
        .and_then(|p| p.iter().map(|h| merkle::parse_hash(h)).collect());
    let ok = match (line.leaf_index, line.leaf_count, proof, anchor.root) {
        (Some(i), Some(n), Some(p), Some(root)) if Some(n) == anchor.records && i < n => {
            match &anchor.subtrees {
                Some((height, roots)) => {
                    let (j, at, width) = subtree_of(i, n, *height);
                    roots
                        .get(j as usize)
                        .is_some_and(|r| verify_inclusion(&hash, at, width, &p, r))
                }
                None => verify_inclusion(&hash, i, n, &p, &root),
            }
        }
        _ => false,
    };
    if !ok {
        let detail = format!(
            "the record's hash {} does not lead to the root of anchor {anchor_id}",
            hex::encode(hash)
        );
        s.problem("RECORD_PROOF_INVALID", member, name, detail);
        return;
    }
    *s.per_table.entry(table).or_default() += 1;
}

fn check_manifest(s: &mut State) {
    let Some(m) = s.manifest.clone() else {
        s.problem(
            "MALFORMED",
            "manifest",
            None,
            "the bundle has no manifest (last line)",
        );
        return;
    };
    let listed = m
        .get("members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut seen = HashSet::new();
    for entry in &listed {
        let name = text(entry, "name").unwrap_or_default();
        seen.insert(name.clone());
        let (lines, hash) = match s.members.get(name.as_str()) {
            Some((n, h)) => (*n, hex::encode(h.clone().finalize())),
            None => (0, hex::encode(Sha256::digest(b""))),
        };
        if entry.get("lines").and_then(Value::as_u64) != Some(lines) {
            s.problem(
                "MEMBER_LINES_MISMATCH",
                &name,
                None,
                format!(
                    "the manifest lists {:?} lines, the bundle holds {lines}",
                    entry.get("lines")
                ),
            );
        }
        if text(entry, "sha256").as_deref() != Some(hash.as_str()) {
            s.problem(
                "MEMBER_HASH_MISMATCH",
                &name,
                None,
                format!("the member hashes to {hash}, not to the manifest's sha256"),
            );
        }
    }
    let unlisted: Vec<&str> = s
        .members
        .keys()
        .filter(|k| !seen.contains(**k))
        .copied()
        .collect();
    for name in unlisted {
        s.problem(
            "MEMBER_HASH_MISMATCH",
            name,
            None,
            "a member the manifest does not list",
        );
    }
    let bad = |s: &mut State, what: &str, detail: String| {
        s.problem(
            "MANIFEST_MISMATCH",
            "manifest",
            None,
            format!("{what}: {detail}"),
        );
    };
    if !text(&m, "format").is_some_and(|f| READABLE_FORMATS.contains(&f.as_str())) {
        bad(
            s,
            "format",
            format!("not {FORMAT_VERSION} (nor an earlier version)"),
        );
    }
    if let Some((origin, size, root)) = s.checkpoint.clone() {
        let cp = m.get("checkpoint");
        let same = cp.and_then(|c| text(c, "origin")) == Some(origin.clone())
            && cp.and_then(|c| c.get("tree_size")).and_then(Value::as_u64) == Some(size)
            && cp.and_then(|c| text(c, "root")) == Some(hex::encode(root));
        if !same {
            bad(s, "checkpoint", "differs from the signed checkpoint".into());
        }
    }
    if s.tenant.is_some() && text(&m, "tenant") != s.tenant {
        bad(s, "tenant", "differs from the checkpoint's origin".into());
    }
    if let Some(r) = s.request.clone() {
        let state: Option<Value> = r
            .after_state
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok());
        if text(&m, "export_id").as_deref() != Some(r.entity_id.as_str()) {
            bad(s, "export_id", "is not the request entry's export".into());
        }
        if m.get("request_seq").and_then(Value::as_i64) != Some(r.seq) {
            bad(s, "request_seq", "is not the request entry's seq".into());
        }
        if text(&m, "requested_by") != r.actor_id {
            bad(s, "requested_by", "is not the request entry's actor".into());
        }
        if m.get("spec") != state.as_ref().and_then(|v| v.get("spec"))
            || text(&m, "scope") != state.as_ref().and_then(|v| text(v, "scope"))
        {
            bad(
                s,
                "scope",
                "is not the scope the request entry chains".into(),
            );
        }
    } else {
        bad(
            s,
            "request",
            "the bundle holds no valid request entry".into(),
        );
    }
    let counts = m.get("counts").cloned().unwrap_or(Value::Null);
    let records: u64 = s.per_table.values().sum();
    let mut expected: Vec<(String, u64)> =
        s.per_table.iter().map(|(k, v)| (k.clone(), *v)).collect();
    expected.push(("records".into(), records));
    expected.push(("entries".into(), s.entries));
    expected.push(("anchors".into(), s.anchors.len() as u64));
    for (k, v) in expected {
        if counts.get(&k).and_then(Value::as_u64).unwrap_or(0) != v {
            bad(
                s,
                "counts",
                format!("{k} is {:?}, the bundle holds {v}", counts.get(&k)),
            );
        }
    }
}

/// Compares the bundle's checkpoint with one the auditor kept.
fn check_trusted(s: &mut State, kept: &str, opts: &Options) -> Option<&'static str> {
    let key = opts.public_key.clone().or_else(|| {
        s.note.as_ref()?;
        None
    })?;
    let (origin, size, root) = s.checkpoint.clone()?;
    let cp = match note::open_checkpoint(kept, std::slice::from_ref(&key)) {
        Ok(cp) => cp,
        Err(e) => {
            s.problem("BAD_SIGNATURE", "trusted_checkpoint", None, e.describe());
            return None;
        }
    };
    if cp.origin != origin {
        s.problem(
            "TRUSTED_CHECKPOINT_MISMATCH",
            "trusted_checkpoint",
            None,
            format!(
                "the kept checkpoint is of {}, the bundle of {origin}",
                cp.origin
            ),
        );
        return None;
    }
    let (old, new) = if cp.tree_size <= size {
        ((cp.tree_size, cp.root), (size, root))
    } else {
        ((size, root), (cp.tree_size, cp.root))
    };
    let proof = opts.consistency_proof.clone().unwrap_or_default();
    if verify_consistency(old.0, new.0, &old.1, &new.1, &proof) {
        Some("consistent")
    } else {
        s.problem(
            "CONSISTENCY_FAILED",
            "trusted_checkpoint",
            None,
            format!(
                "no valid consistency proof between the trees of {} and {} entries (the ledger forked, or the proof is missing)",
                old.0, new.0
            ),
        );
        None
    }
}
