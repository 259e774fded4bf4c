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
//! agrees with its chained EXPORT entries (`EXPORT_MISMATCH`, see [`exports`]).
//!
//! [`ChainCheck`] is the pure part (fed entries in seq order); [`verify`] reads the database
//! (through [`super::scan`], which reads and hashes on every core).
//!
//! The parts: [`report`] (what a verification finds and how it is recorded), [`chain`] (the
//! walk), [`checkpoints`] (reading and checking signed checkpoints), [`anchors`] (evidence
//! records against their anchors).

mod anchors;
mod chain;
mod checkpoints;
mod exports;
mod report;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::note::{self, NoteVerifier};
use super::scan;
use crate::error::{AppError, AppResult, Context};
use entity::audit_ledger;

use anchors::{AnchorClaim, check_anchors, find_unanchored_records};
pub use chain::ChainCheck;
use checkpoints::view;
pub use checkpoints::{RetiredKey, frontier_text, parse_frontier};
pub(crate) use checkpoints::{newest_resumable, read_checkpoints};
pub use report::{
    Anomaly, AnomalyKind, CheckpointView, Head, RECORDED_ANOMALIES, RecordedVerification, Report,
    Verdict, VerificationMode, verification_entry, verification_reason,
};

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
    let from_seq = check.next_seq();
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
        exports_checked = exports::check(conn, tenant_id, &mut anomalies).await?;
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
