//! Signed checkpoints of each tenant's ledger tree: C2SP tlog-checkpoint notes (origin naming
//! the tenant, tree size, root hash) signed with the server's Ed25519 key, written every N
//! entries or T seconds, at the end of `seed` and at graceful shutdown.
//!
//! A checkpoint is signed only over a chain the checkpointer has just verified from the
//! previous good checkpoint on; it stores the tree's Merkle frontier beside the note so that
//! the next checkpoint and incremental verification start from there.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::lock_tenant;
use super::note;
use super::signing;
use super::verify::{ChainCheck, frontier_text, newest_resumable, read_checkpoints};
use crate::canonical::micros;
use crate::db::Db;
use crate::error::{AppError, AppResult, Context};
use entity::{audit_ledger, ledger_checkpoints};

/// When checkpoints are due (defaults in `config::CheckpointArgs`).
#[derive(Clone, Copy, Debug)]
pub struct CheckpointPolicy {
    /// A checkpoint once this many entries are not covered.
    pub every_entries: u64,
    /// A checkpoint once the oldest uncovered entry is this old.
    pub interval: Duration,
}

pub use super::signing::LedgerKeys;

/// Signs a checkpoint of the tenant's whole ledger when it has entries no checkpoint covers.
/// Refuses (an internal error naming the seq) to sign a chain that does not verify.
///
/// The walk runs without holding the tenant's write lock (committed entries always form a
/// contiguous prefix, since seqs are assigned under that lock and committed in order); only
/// storing the checkpoint takes it, after checking that the last entry walked is unchanged and
/// that no other process signed this size or more meanwhile.
pub async fn checkpoint_tenant(
    db: &Db,
    keys: &LedgerKeys,
    tenant_id: &str,
) -> AppResult<Option<ledger_checkpoints::Model>> {
    let origin = keys.origin(tenant_id);
    let checked = read_checkpoints(
        &db.conn,
        tenant_id,
        &keys.verifiers(),
        &keys.retired_for(tenant_id),
        &origin,
    )
    .await?;
    // Resume from the newest good checkpoint whose frontier is sound; otherwise walk from the
    // genesis. Either way the tree is held to every good checkpoint's root on the way.
    let resume = newest_resumable(&checked);
    let mut check = match resume {
        Some(frontier) => {
            let size = frontier.size() as i64;
            let last = entry_at(&db.conn, tenant_id, size).await?.ok_or_else(|| {
                AppError::internal(
                    format!("checkpoint the ledger of tenant {tenant_id}"),
                    format!("entry {size}, which a signed checkpoint covers, is missing"),
                )
            })?;
            ChainCheck::resume(tenant_id, size + 1, last.entry_hash, frontier)
        }
        None => ChainCheck::new(tenant_id),
    };
    check.expect_checkpoint_roots(&checked);
    // Read and hashed one range at a time on the blocking pool, as the background verifier
    // does: the checkpointer runs beside requests.
    let (mut chunks, reader) = super::scan::read(&db.conn, tenant_id, check.next_seq(), 1);
    while let Some(chunk) = chunks.recv().await {
        check.push_walked(&chunk?);
    }
    reader
        .await
        .map_err(|e| AppError::internal("read ledger entries to checkpoint", e))?;
    let (anomalies, frontier, head, entries) = check.finish();
    if let Some(a) = anomalies.first() {
        return Err(AppError::internal(
            format!("checkpoint the ledger of tenant {tenant_id}"),
            format!(
                "the chain does not verify ({:?} at seq {:?}: {}); refusing to sign it",
                a.kind, a.seq, a.detail
            ),
        ));
    }
    if entries == 0 {
        return Ok(None);
    }
    let root = frontier.root();
    let size = frontier.size();
    let tx = db.begin_write().await?;
    lock_tenant(&tx.txn, tenant_id).await?;
    // (A row claiming more entries than the ledger has is no checkpoint: it cannot stop this.)
    let head_now = super::head_seq(&tx.txn, tenant_id).await?.unwrap_or(0);
    let signed_meanwhile = ledger_checkpoints::Entity::find()
        .filter(ledger_checkpoints::Column::TenantId.eq(tenant_id))
        .filter(ledger_checkpoints::Column::TreeSize.gte(size as i64))
        .filter(ledger_checkpoints::Column::TreeSize.lte(head_now))
        .one(&tx.txn)
        .await
        .context("look for a newer checkpoint")?;
    if signed_meanwhile.is_some() {
        return Ok(None);
    }
    let last = entry_at(&tx.txn, tenant_id, size as i64).await?;
    if last.map(|e| e.entry_hash) != head.map(|h| h.entry_hash) {
        return Err(AppError::internal(
            format!("checkpoint the ledger of tenant {tenant_id}"),
            format!("entry {size} changed while the chain was being verified; not signing"),
        ));
    }
    let signed_note = keys
        .signer
        .sign(&note::checkpoint_body(&origin, size, &root));
    let row = ledger_checkpoints::Model {
        tenant_id: tenant_id.to_string(),
        tree_size: size as i64,
        root_hash: hex::encode(root),
        signed_note,
        key_id: keys.signer.key_id_hex(),
        recorded_at: micros(Utc::now()),
        frontier: Some(frontier_text(&frontier)),
    };
    ledger_checkpoints::Entity::insert(ledger_checkpoints::ActiveModel {
        tenant_id: Set(row.tenant_id.clone()),
        tree_size: Set(row.tree_size),
        root_hash: Set(row.root_hash.clone()),
        signed_note: Set(row.signed_note.clone()),
        key_id: Set(row.key_id.clone()),
        recorded_at: Set(row.recorded_at),
        frontier: Set(row.frontier.clone()),
    })
    .exec_without_returning(&tx.txn)
    .await
    .context("store a checkpoint")?;
    tx.commit().await?;
    tracing::info!(tenant = %tenant_id, tree_size = size, root = %row.root_hash, "ledger checkpoint signed");
    Ok(Some(row))
}

async fn entry_at<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    seq: i64,
) -> AppResult<Option<audit_ledger::Model>> {
    audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(tenant_id))
        .filter(audit_ledger::Column::Seq.eq(seq))
        .one(conn)
        .await
        .context("read a ledger entry")
}

/// Every ledger that may hold entries, taken from the ledgers themselves and the tenants (see
/// [`super::ledgers::ledger_names`]): a ledger whose tenant row is gone is still checkpointed.
pub async fn ledger_names(db: &Db) -> AppResult<Vec<String>> {
    super::ledgers::ledger_names(&db.conn).await
}

/// Whether the tenant's ledger has entries no checkpoint covers that are due under `policy`
/// (`None` = due as soon as there is any).
async fn due(db: &Db, tenant_id: &str, policy: Option<CheckpointPolicy>) -> AppResult<bool> {
    let Some(head) = head_of(db, tenant_id).await? else {
        return Ok(false);
    };
    let covered: i64 = ledger_checkpoints::Entity::find()
        .select_only()
        .column(ledger_checkpoints::Column::TreeSize)
        .filter(ledger_checkpoints::Column::TenantId.eq(tenant_id))
        // A row claiming more entries than the ledger has cannot stop checkpoints.
        .filter(ledger_checkpoints::Column::TreeSize.lte(head))
        .order_by_desc(ledger_checkpoints::Column::TreeSize)
        .limit(1)
        .into_tuple()
        .one(&db.conn)
        .await
        .context("read the latest checkpoint size")?
        .unwrap_or(0);
    if head <= covered {
        return Ok(false);
    }
    let Some(policy) = policy else {
        return Ok(true);
    };
    if (head - covered) as u64 >= policy.every_entries {
        return Ok(true);
    }
    let oldest = entry_at(&db.conn, tenant_id, covered + 1).await?;
    let age = oldest.map_or(Duration::ZERO, |e| {
        (Utc::now() - e.recorded_at).to_std().unwrap_or_default()
    });
    Ok(age >= policy.interval)
}

/// Checkpoints every ledger with uncovered entries (all of them with `policy: None`, those due
/// otherwise). Returns how many checkpoints were signed; a ledger that fails is logged and
/// skipped, and the first failure is returned after the others were tried.
pub async fn checkpoint_all(
    db: &Db,
    keys: &LedgerKeys,
    policy: Option<CheckpointPolicy>,
) -> AppResult<usize> {
    let mut signed = 0;
    let mut first_error = None;
    for tenant in ledger_names(db).await? {
        let result = match due(db, &tenant, policy).await {
            Ok(true) => checkpoint_tenant(db, keys, &tenant).await,
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        match result {
            Ok(Some(_)) => signed += 1,
            Ok(None) => {}
            Err(e) => {
                e.log();
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(signed),
    }
}

/// Runs until `stop` resolves: checkpoints due ledgers about once a second (or every interval,
/// if shorter). A ledger whose chain does not verify is logged once and left alone until its
/// head moves (re-walking it every tick would only hold its writers back).
pub async fn run_periodically(
    db: Db,
    keys: LedgerKeys,
    policy: CheckpointPolicy,
    stop: impl std::future::Future<Output = ()>,
) {
    let tick = policy
        .interval
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(50));
    let mut timer = tokio::time::interval(tick);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed_at: std::collections::HashMap<String, i64> = Default::default();
    // A rotation recorded while this server runs retires its key: it then signs no more.
    let mut retirement = signing::RetirementWatch::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = timer.tick() => {
                let Ok(tenants) = ledger_names(&db).await else { continue };
                for tenant in tenants {
                    let head = head_of(&db, &tenant).await.ok().flatten();
                    if head.is_some() && failed_at.get(&tenant) == head.as_ref() {
                        continue;
                    }
                    let result = match due(&db, &tenant, Some(policy)).await {
                        Ok(true) => match retirement.check(&db.conn, &keys).await {
                            Ok(()) => checkpoint_tenant(&db, &keys, &tenant).await.map(|_| ()),
                            Err(e) => Err(e),
                        },
                        Ok(false) => Ok(()),
                        Err(e) => Err(e),
                    };
                    match (result, head) {
                        (Err(e), Some(h)) => {
                            e.log();
                            failed_at.insert(tenant, h);
                        }
                        (Err(e), None) => e.log(),
                        (Ok(()), _) => {
                            failed_at.remove(&tenant);
                        }
                    }
                }
            }
        }
    }
}

/// The tenant's newest seq (`None` for an empty ledger).
pub async fn head_of(db: &Db, tenant_id: &str) -> AppResult<Option<i64>> {
    super::head_seq(&db.conn, tenant_id).await
}
