//! Writes an evidence bundle (docs/exports.md): one typed JSONL file whose members are the
//! pinned signed checkpoint, the verifier key, the `EXPORT_REQUESTED` entry with its inclusion
//! proof, the anchor entries with theirs, the records (or, for a ledger scope, the entries) with
//! their proofs, and the manifest last, with the SHA-256 of every member.
//!
//! The builder checks everything it writes before it writes it: the ledger it proves against
//! must hash to the pinned checkpoint's signed root, every entry it includes must hash to its
//! leaf, every anchor's batch must hash to the anchor's root and every record must be a leaf of
//! its batch. Evidence that no longer matches its ledger fails the export (naming what differs)
//! rather than producing a bundle whose proofs do not hold.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::progress::Reporter;
use super::select::{Anchors, Chunk, Walk, WalkOrder};
use super::{ExportSettings, ExportSpec};
use crate::canonical::{canonical_json, timestamp};
use crate::db::Db;
use crate::error::{AppError, AppResult, Context};
use crate::ledger::anchor::{AnchorState, anchor_leaves};
use crate::ledger::checkpoint::{self, LedgerKeys};
use crate::ledger::note::{self, NoteVerifier};
use crate::ledger::proof::{Levels, tree_height};
use crate::ledger::vocabulary::{EntityType, EventType, LedgerCategory};
use crate::ledger::{entry_hash, merkle};
use entity::{
    audit_ledger, export_jobs, governance_events, ledger_checkpoints, llm_runs, log_exports,
    system_records, telemetry_samples, trace_steps,
};

/// The bundle format's version, the manifest's `format` (v2 added the subtree roots of anchor
/// lines).
pub const FORMAT_VERSION: &str = "runledger.bundle.v2";

/// The versions a verifier reads: v1 files are v2 files without subtree roots.
pub const READABLE_FORMATS: [&str; 2] = ["runledger.bundle.v1", FORMAT_VERSION];

/// Lines written between two progress reports.
const REPORT_EVERY: u64 = 2000;

/// Leaves of the batch trees kept while building (about 100 bytes each with their index): the
/// walk takes records batch by batch ([`WalkOrder::Anchor`]), so a few batches at a time are
/// enough, and memory stays bounded whatever the size of the export.
const BATCH_CACHE_LEAVES: usize = 1 << 18;

/// Ledger entry hashes read per query while building the checkpoint's tree.
const LEAF_PAGE: i64 = 50_000;

/// What a finished build produced.
#[derive(Clone, Debug)]
pub struct Built {
    pub checksum: String,
    pub size: u64,
    pub records: u64,
    pub checkpoint_size: i64,
    /// [`super::evidence_digest`] of the records written, for the export of one run (what a
    /// run's view compares with its records as stored now); `None` for other scopes, so a
    /// build of millions of records keeps no hash per record in memory.
    pub evidence_digest: Option<String>,
}

/// Why a build stopped early (a message for the ledger and the client, no internals).
fn refuse(why: impl Into<String>) -> AppError {
    AppError::Conflict(why.into())
}

/// The JSON form of an entry's 18 fields (docs/exports.md, "Entry lines").
pub fn entry_json(e: &audit_ledger::Model) -> Value {
    json!({
        "tenant_id": e.tenant_id,
        "seq": e.seq,
        "prev_hash": e.prev_hash,
        "id": e.id,
        "category": e.category,
        "event_type": e.event_type,
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "actor_type": e.actor_type,
        "actor_id": e.actor_id,
        "action_reason": e.action_reason,
        "decision": e.decision,
        "before_state": e.before_state,
        "after_state": e.after_state,
        "correlation_id": e.correlation_id,
        "occurred_at": timestamp(&e.occurred_at),
        "recorded_at": timestamp(&e.recorded_at),
    })
}

fn hexes(path: &[[u8; 32]]) -> Vec<String> {
    path.iter().map(hex::encode).collect()
}

/// An entry line, after checking the entry hashes to the leaf the checkpoint's tree holds.
fn entry_line(kind: &str, e: &audit_ledger::Model, tree: &Levels) -> AppResult<String> {
    entry_line_with(kind, e, tree, None)
}

/// An anchor line: an entry line, with the roots of its batch's subtrees when the records of
/// the bundle prove to those (docs/exports.md, "Subtree roots").
fn anchor_line(e: &audit_ledger::Model, tree: &Levels, batch: &Batch) -> AppResult<String> {
    let subtrees = batch.height.map(|h| (h, hexes(batch.tree.level(h))));
    entry_line_with("anchor", e, tree, subtrees)
}

fn entry_line_with(
    kind: &str,
    e: &audit_ledger::Model,
    tree: &Levels,
    subtrees: Option<(u32, Vec<String>)>,
) -> AppResult<String> {
    let index = (e.seq - 1) as usize;
    let hash = entry_hash(e);
    let leaf = tree.leaves().get(index).map(hex::encode);
    if leaf.as_deref() != Some(hash.as_str()) {
        return Err(refuse(format!(
            "ledger entry {} no longer hashes to the leaf the pinned checkpoint covers",
            e.seq
        )));
    }
    let proof = tree.path(index).unwrap_or_default();
    let mut line = json!({
        "type": kind,
        "entry": entry_json(e),
        "entry_hash": hash,
        "proof": hexes(&proof),
    });
    if let Some((height, roots)) = subtrees {
        line["subtree_height"] = json!(height);
        line["subtree_roots"] = json!(roots);
    }
    Ok(canonical_json(&line))
}

/// The height of the subtrees an anchor line lists the roots of, for a bundle of `records`
/// records out of `leaves` anchored ones: about log2(leaves / records), the height that makes
/// the record's paths plus the lists of roots shortest. A bundle of most of a tenant's records
/// lists each batch's leaves once (height 0) instead of an audit path per record; a bundle of a
/// few records keeps whole paths and lists nothing.
fn subtree_height(records: u64, leaves: u64) -> u32 {
    match leaves.checked_div(records) {
        Some(0) | Some(1) => 0,
        Some(ratio) => ratio.ilog2(),
        None => u32::MAX,
    }
}

/// A record line (docs/exports.md, "Record lines"), written without building a JSON tree: its
/// members in RFC 8785 order, as `canonical_json` would write them (a unit test holds the two
/// equal).
fn record_line(
    out: &mut String,
    r: &super::select::Record,
    leaf_index: usize,
    leaf_count: usize,
    proof: &[[u8; 32]],
) {
    use crate::canonical::write_string;
    use std::fmt::Write as _;
    out.clear();
    out.push_str("{\"anchor\":");
    write_string(&r.anchor_id, out);
    let _ = write!(
        out,
        ",\"leaf_count\":{leaf_count},\"leaf_index\":{leaf_index},\"name\":"
    );
    write_string(&r.name, out);
    out.push_str(",\"proof\":[");
    let mut hex = [0u8; 64];
    for (i, node) in proof.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        if hex::encode_to_slice(node, &mut hex).is_ok() {
            out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
        }
        out.push('"');
    }
    out.push_str("],\"record\":");
    write_string(&r.canonical, out);
    out.push_str(",\"table\":");
    write_string(r.table, out);
    out.push_str(",\"type\":\"record\"}");
}

/// One member being written: its line count and running SHA-256.
struct Member {
    name: &'static str,
    lines: u64,
    hash: Sha256,
}

impl Member {
    fn new(name: &'static str) -> Member {
        Member {
            name,
            lines: 0,
            hash: Sha256::new(),
        }
    }

    fn summary(self) -> Value {
        json!({"name": self.name, "lines": self.lines, "sha256": hex::encode(self.hash.finalize())})
    }
}

/// A file being written with the running hash of all of it.
struct Out {
    file: BufWriter<std::fs::File>,
    whole: Sha256,
    size: u64,
    path: PathBuf,
}

impl Out {
    fn create(path: PathBuf) -> AppResult<Out> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create the export directory {}", dir.display()))?;
        }
        let file =
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Out {
            file: BufWriter::with_capacity(1 << 20, file),
            whole: Sha256::new(),
            size: 0,
            path,
        })
    }

    fn line(&mut self, member: &mut Member, text: &str) -> AppResult<()> {
        for part in [text.as_bytes(), b"\n"] {
            member.hash.update(part);
            self.bytes(part)?;
        }
        member.lines += 1;
        Ok(())
    }

    fn bytes(&mut self, bytes: &[u8]) -> AppResult<()> {
        self.whole.update(bytes);
        self.size += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .with_context(|| format!("write {}", self.path.display()))
    }

    fn finish(self) -> AppResult<(String, u64)> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| AppError::internal("flush an export file", e.into_error()))?;
        file.sync_all()
            .with_context(|| format!("sync {}", self.path.display()))?;
        Ok((hex::encode(self.whole.finalize()), self.size))
    }
}

/// The tree of one anchored batch, from the stored hashes of every record linked to it.
struct Batch {
    tree: Levels,
    index: HashMap<[u8; 32], usize>,
    /// The anchor entry.
    anchor: audit_ledger::Model,
    /// The height of the subtrees its records prove to; `None` for the whole tree.
    height: Option<u32>,
}

/// Builds the bundle of `row` into its file (written under a temporary name and renamed into
/// place once complete).
pub(crate) async fn build(
    db: &Db,
    keys: &LedgerKeys,
    settings: &ExportSettings,
    row: &log_exports::Model,
    job: &export_jobs::Model,
    reporter: &Reporter,
) -> AppResult<Built> {
    let t = row.tenant_id.as_str();
    let spec = ExportSpec::parse(&job.spec)?;
    let request = audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(t))
        .filter(audit_ledger::Column::Category.eq(LedgerCategory::Export.as_str()))
        .filter(audit_ledger::Column::EventType.eq(EventType::ExportRequested.as_str()))
        .filter(audit_ledger::Column::EntityType.eq(EntityType::LogExport.as_str()))
        .filter(audit_ledger::Column::EntityId.eq(&row.id))
        .order_by_asc(audit_ledger::Column::Seq)
        .one(&db.conn)
        .await
        .context("read the export's request entry")?
        .ok_or_else(|| {
            refuse(format!(
                "the EXPORT_REQUESTED entry of export {} is missing",
                row.id
            ))
        })?;

    // Pinned once: a build resumed after a restart proves against the same checkpoint.
    let size = match job.checkpoint_size {
        Some(size) => size,
        None => {
            checkpoint::checkpoint_tenant(db, keys, t).await?;
            let pinned = ledger_checkpoints::Entity::find()
                .filter(ledger_checkpoints::Column::TenantId.eq(t))
                .filter(ledger_checkpoints::Column::TreeSize.gte(request.seq))
                .filter(ledger_checkpoints::Column::KeyId.eq(keys.signer.key_id_hex()))
                .order_by_asc(ledger_checkpoints::Column::TreeSize)
                .one(&db.conn)
                .await
                .context("find the checkpoint to pin")?
                .ok_or_else(|| refuse("no signed checkpoint covers the export's request"))?;
            reporter.pinned(pinned.tree_size).await?;
            pinned.tree_size
        }
    };
    let cp = ledger_checkpoints::Entity::find_by_id((t.to_string(), size))
        .one(&db.conn)
        .await
        .context("read the pinned checkpoint")?
        .ok_or_else(|| refuse(format!("the pinned checkpoint of size {size} is gone")))?;
    let verifier = NoteVerifier::from(keys.signer.as_ref());
    let opened =
        note::open_checkpoint(&cp.signed_note, std::slice::from_ref(&verifier)).map_err(|e| {
            refuse(format!(
                "the pinned checkpoint does not open: {}",
                e.describe()
            ))
        })?;
    if opened.origin != keys.origin(t) || opened.tree_size != size as u64 {
        return Err(refuse("the pinned checkpoint names another ledger or size"));
    }

    // The leaves of the checkpoint's tree, held to its signed root: read in pages of seqs, so
    // only the 32-byte leaves of a large ledger are held, never its rows.
    let mut leaves: Vec<[u8; 32]> = Vec::with_capacity(size.max(0) as usize);
    while (leaves.len() as i64) < size {
        let from = leaves.len() as i64;
        let page: Vec<(i64, String)> = audit_ledger::Entity::find()
            .select_only()
            .column(audit_ledger::Column::Seq)
            .column(audit_ledger::Column::EntryHash)
            .filter(audit_ledger::Column::TenantId.eq(t))
            .filter(audit_ledger::Column::Seq.gt(from))
            .filter(audit_ledger::Column::Seq.lte(size.min(from + LEAF_PAGE)))
            .order_by_asc(audit_ledger::Column::Seq)
            .into_tuple()
            .all(&db.conn)
            .await
            .context("read the ledger's entry hashes")?;
        if page.is_empty() {
            return Err(refuse(format!("ledger entry {} is missing", from + 1)));
        }
        for (seq, h) in &page {
            let expected = leaves.len() as i64 + 1;
            match merkle::parse_hash(h) {
                Some(leaf) if *seq == expected => leaves.push(leaf),
                _ => {
                    return Err(refuse(format!(
                        "ledger entry {expected} is missing or malformed"
                    )));
                }
            }
        }
    }
    let tree = Levels::new(leaves);
    if tree.size() as i64 != size || tree.root() != opened.root {
        return Err(refuse(format!(
            "the ledger no longer matches its signed checkpoint of size {size}"
        )));
    }

    // Anchors before the request: the evidence as it stood when the export was asked for.
    let anchor_rows: Vec<(String, i64, Option<String>)> = audit_ledger::Entity::find()
        .select_only()
        .column(audit_ledger::Column::EntityId)
        .column(audit_ledger::Column::Seq)
        .column(audit_ledger::Column::AfterState)
        .filter(audit_ledger::Column::TenantId.eq(t))
        .filter(audit_ledger::Column::Category.eq(LedgerCategory::Anchor.as_str()))
        .filter(audit_ledger::Column::EventType.eq(EventType::EvidenceBatchAnchored.as_str()))
        .filter(audit_ledger::Column::Seq.lt(request.seq))
        .into_tuple()
        .all(&db.conn)
        .await
        .context("read the ledger's anchors")?;
    let anchored_leaves: u64 = anchor_rows
        .iter()
        .filter_map(|(_, _, state)| AnchorState::parse(state.as_deref()).records)
        .sum();
    let anchors: Anchors = anchor_rows
        .into_iter()
        .map(|(id, seq, _)| (id, seq))
        .collect();

    let final_path = settings.file_of(t, &row.id, &row.format);
    let records_path = with_suffix(&final_path, "records.partial");
    let partial_path = with_suffix(&final_path, "partial");
    let one_run = matches!(spec, ExportSpec::Run { .. });
    let is_csv = row.format == crate::domain::ExportFormat::Csv.as_str();
    let is_file_of_runs = is_csv || row.format == crate::domain::ExportFormat::OtlpJson.as_str();
    // A bundle walks runs batch by batch; the files of runs (CSV, OTLP_JSON) by run id.
    let order = if is_file_of_runs {
        WalkOrder::Key
    } else {
        WalkOrder::Anchor
    };
    let mut walk = Walk::new(t, spec.clone(), anchors.clone(), request.seq, order);
    let total = walk.count(&db.conn).await?;
    reporter.progress(0, Some(total)).await?;

    if is_file_of_runs {
        let mut file = Out::create(partial_path.clone())?;
        let (rows, hashes) = if is_csv {
            super::csv::write_runs(&db.conn, &mut walk, |bytes| file.bytes(bytes)).await?
        } else {
            super::otlp::write_runs(&db.conn, &mut walk, |bytes| file.bytes(bytes)).await?
        };
        let (checksum, file_size) = file.finish()?;
        let _ = std::fs::remove_file(&records_path);
        std::fs::rename(&partial_path, &final_path)
            .with_context(|| format!("move {} into place", final_path.display()))?;
        reporter.progress(rows, Some(rows)).await?;
        return Ok(Built {
            checksum,
            size: file_size,
            records: rows,
            checkpoint_size: size,
            evidence_digest: one_run.then(|| super::evidence_digest(hashes)),
        });
    }
    let is_ledger = matches!(spec, ExportSpec::Ledger(_));
    let height = subtree_height(total, anchored_leaves);
    let mut body = Member::new(if is_ledger { "entries" } else { "records" });
    let mut out = Out::create(records_path.clone())?;
    // The anchor lines, written as each batch is first used and copied out in seq order at
    // the end: `seq → (offset, length)` in this side file.
    let anchors_path = with_suffix(&final_path, "anchors.partial");
    let mut anchor_file = std::fs::File::create(&anchors_path)
        .with_context(|| format!("create {}", anchors_path.display()))?;
    let mut anchor_file_size = 0u64;
    let mut batches: HashMap<String, Batch> = HashMap::new();
    let mut cached_leaves = 0usize;
    let mut used: BTreeMap<i64, (u64, usize)> = BTreeMap::new();
    let mut line = String::new();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut written = 0u64;
    let mut record_hashes: Vec<[u8; 32]> = Vec::new();
    let mut walk = walk.ahead(db.conn.clone());
    while let Some(chunk) = walk.next().await? {
        match chunk {
            Chunk::Entries(entries) => {
                for e in &entries {
                    out.line(&mut body, &entry_line("entry", e, &tree)?)?;
                    written += 1;
                }
            }
            Chunk::Records(records) => {
                for r in records {
                    if !batches.contains_key(&r.anchor_id) {
                        let seq = anchors.get(&r.anchor_id).copied().unwrap_or(0);
                        let batch = load_batch(db, t, &r.anchor_id, seq, height).await?;
                        if cached_leaves + batch.tree.size() > BATCH_CACHE_LEAVES {
                            batches.clear();
                            cached_leaves = 0;
                        }
                        cached_leaves += batch.tree.size();
                        if let std::collections::btree_map::Entry::Vacant(slot) = used.entry(seq) {
                            let text = anchor_line(&batch.anchor, &tree, &batch)?;
                            anchor_file
                                .write_all(text.as_bytes())
                                .with_context(|| format!("write {}", anchors_path.display()))?;
                            slot.insert((anchor_file_size, text.len()));
                            anchor_file_size += text.len() as u64;
                        }
                        batches.insert(r.anchor_id.clone(), batch);
                    }
                    let Some(batch) = batches.get(&r.anchor_id) else {
                        continue;
                    };
                    let hash: [u8; 32] = Sha256::digest(r.canonical.as_bytes()).into();
                    let index = *batch.index.get(&hash).ok_or_else(|| {
                        refuse(format!(
                            "record {} no longer matches the batch its anchor {} commits to",
                            r.name, r.anchor_id
                        ))
                    })?;
                    let proof = match batch.height {
                        Some(h) => batch.tree.path_below(index, h),
                        None => batch.tree.path(index),
                    }
                    .unwrap_or_default();
                    if one_run {
                        record_hashes.push(hash);
                    }
                    record_line(&mut line, &r, index, batch.tree.size(), &proof);
                    out.line(&mut body, &line)?;
                    *counts.entry(r.table).or_default() += 1;
                    written += 1;
                    if written.is_multiple_of(REPORT_EVERY) {
                        reporter.progress(written, None).await?;
                    }
                }
            }
        }
        reporter.progress(written, None).await?;
    }
    out.finish()?;

    // The whole file: checkpoint, key, request, anchors, the body copied in, the manifest.
    let mut file = Out::create(partial_path.clone())?;
    let mut m_checkpoint = Member::new("checkpoint");
    file.line(
        &mut m_checkpoint,
        &canonical_json(&json!({"type": "checkpoint", "note": cp.signed_note})),
    )?;
    let mut m_key = Member::new("verifier_key");
    file.line(
        &mut m_key,
        &canonical_json(&json!({"type": "verifier_key", "key": verifier.verifier_key()})),
    )?;
    let mut m_request = Member::new("request");
    file.line(&mut m_request, &entry_line("request", &request, &tree)?)?;
    let mut m_anchors = Member::new("anchors");
    drop(anchor_file);
    let lines = std::fs::File::open(&anchors_path)
        .with_context(|| format!("reopen {}", anchors_path.display()))?;
    for (offset, len) in used.values() {
        let mut text = vec![0u8; *len];
        std::os::unix::fs::FileExt::read_exact_at(&lines, &mut text, *offset)
            .with_context(|| format!("read {}", anchors_path.display()))?;
        let text = String::from_utf8(text)
            .map_err(|e| AppError::internal("read an anchor line back", e))?;
        file.line(&mut m_anchors, &text)?;
    }
    drop(lines);
    let _ = std::fs::remove_file(&anchors_path);
    let mut source = std::fs::File::open(&records_path)
        .with_context(|| format!("reopen {}", records_path.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = source
            .read(&mut buffer)
            .with_context(|| format!("read {}", records_path.display()))?;
        if n == 0 {
            break;
        }
        file.bytes(&buffer[..n])?;
    }
    drop(source);
    let _ = std::fs::remove_file(&records_path);
    let records: u64 = if is_ledger {
        written
    } else {
        counts.values().sum()
    };
    let mut count_json = serde_json::Map::new();
    for (table, n) in &counts {
        count_json.insert((*table).to_string(), json!(n));
    }
    count_json.insert("records".into(), json!(counts.values().sum::<u64>()));
    count_json.insert("entries".into(), json!(if is_ledger { written } else { 0 }));
    count_json.insert("anchors".into(), json!(m_anchors.lines));
    let members = vec![
        m_checkpoint.summary(),
        m_key.summary(),
        m_request.summary(),
        m_anchors.summary(),
        body.summary(),
    ];
    let manifest = json!({
        "type": "manifest",
        "format": FORMAT_VERSION,
        "export_id": row.id,
        "tenant": t,
        "scope": row.scope,
        "spec": spec.to_json(),
        "export_format": row.format,
        "requested_by": row.requested_by,
        "requested_at": timestamp(&row.requested_at),
        "request_seq": request.seq,
        "checkpoint": {
            "origin": opened.origin,
            "tree_size": size,
            "root": hex::encode(opened.root),
        },
        "counts": Value::Object(count_json),
        "members": members,
    });
    let mut m_manifest = Member::new("manifest");
    file.line(&mut m_manifest, &canonical_json(&manifest))?;
    let (checksum, file_size) = file.finish()?;
    std::fs::rename(&partial_path, &final_path)
        .with_context(|| format!("move {} into place", final_path.display()))?;
    reporter.progress(written, Some(written)).await?;
    Ok(Built {
        checksum,
        size: file_size,
        records,
        checkpoint_size: size,
        evidence_digest: one_run.then(|| super::evidence_digest(record_hashes)),
    })
}

/// `<file>.<suffix>` beside `path`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

async fn entry_at(db: &Db, tenant_id: &str, seq: i64) -> AppResult<audit_ledger::Model> {
    audit_ledger::Entity::find_by_id((tenant_id.to_string(), seq))
        .one(&db.conn)
        .await
        .context("read an anchor entry")?
        .ok_or_else(|| refuse(format!("ledger entry {seq} is gone")))
}

/// The tree of an anchored batch from the stored hashes of its records, held to the anchor's
/// root.
async fn load_batch(
    db: &Db,
    tenant_id: &str,
    anchor_id: &str,
    seq: i64,
    height: u32,
) -> AppResult<Batch> {
    let anchor = entry_at(db, tenant_id, seq).await?;
    let claimed = AnchorState::parse(anchor.after_state.as_deref()).merkle_root;
    macro_rules! hashes {
        ($entity:ident) => {{
            let rows: Vec<String> = $entity::Entity::find()
                .select_only()
                .column($entity::Column::RecordHash)
                .filter($entity::Column::AnchorId.eq(anchor_id))
                .into_tuple()
                .all(&db.conn)
                .await
                .with_context(|| format!("read the records of batch {anchor_id}"))?;
            rows.iter()
                .map(|h| {
                    merkle::parse_hash(h).ok_or_else(|| {
                        refuse(format!(
                            "a record of batch {anchor_id} has a malformed hash"
                        ))
                    })
                })
                .collect::<AppResult<Vec<_>>>()?
        }};
    }
    let leaves = anchor_leaves([
        hashes!(llm_runs),
        hashes!(trace_steps),
        hashes!(governance_events),
        hashes!(system_records),
        hashes!(telemetry_samples),
    ]);
    let tree = Levels::new(leaves);
    if claimed.as_deref() != Some(hex::encode(tree.root()).as_str()) {
        return Err(refuse(format!(
            "the records of batch {anchor_id} no longer hash to its anchor's root (entry {seq})"
        )));
    }
    let mut index = HashMap::with_capacity(tree.size());
    for (i, leaf) in tree.leaves().iter().enumerate() {
        index.entry(*leaf).or_insert(i);
    }
    // Subtrees as high as the whole tree are the whole tree: the records carry whole paths.
    let height = (height < tree_height(tree.size() as u64)).then_some(height);
    Ok(Batch {
        tree,
        index,
        anchor,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_line_is_the_canonical_json_of_its_members() {
        let r = super::super::select::Record {
            table: "trace_steps",
            name: "trace_steps:tr_\"1\"#3".into(),
            canonical: r#"{"kind":"trace_step","note":"a\nb\\c\u0001é"}"#.into(),
            anchor_id: "eb_1".into(),
        };
        for proof in [
            vec![],
            vec![[7u8; 32]],
            vec![[1u8; 32], [0xab; 32], [0; 32]],
        ] {
            let mut line = String::new();
            record_line(&mut line, &r, 5, 9, &proof);
            let expected = canonical_json(&json!({
                "type": "record",
                "table": r.table,
                "name": r.name,
                "record": r.canonical,
                "anchor": r.anchor_id,
                "leaf_index": 5,
                "leaf_count": 9,
                "proof": hexes(&proof),
            }));
            assert_eq!(line, expected);
        }
    }

    #[test]
    fn subtrees_are_as_high_as_leaves_per_record() {
        assert_eq!(subtree_height(100, 100), 0);
        assert_eq!(subtree_height(100, 150), 0);
        assert_eq!(subtree_height(100, 400), 2);
        assert_eq!(subtree_height(25, 2_600_000), 16);
        assert_eq!(subtree_height(0, 10), u32::MAX);
    }
}
