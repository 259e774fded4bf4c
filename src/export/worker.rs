//! The export workers: jobs move through the `export_jobs` table only (no other service), so
//! they survive restarts and several server processes can share one queue.
//!
//! - A worker **claims** the oldest QUEUED job whose tenant has fewer than
//!   `per_tenant` RUNNING jobs (counted under the tenant's ledger lock, so the bound holds
//!   across processes), takes a lease on it and counts an attempt.
//! - While building it reports progress, which also renews the lease; a report that finds the
//!   job no longer its own (cancelled, or taken over after its lease ran out) stops the build.
//! - It **finishes** a job in one transaction — record COMPLETED with the checksum, job DONE,
//!   `EXPORT_COMPLETED` with checksum, records, size and pinned checkpoint — only after the
//!   whole file was written, synced and renamed into place, and only while it still holds the
//!   job; a failed build is FAILED with its reason (`EXPORT_FAILED`).
//! - On a graceful stop it gives its jobs back (QUEUED); a job whose builder died is taken back
//!   once its lease runs out: queued again (the build starts over, against the checkpoint it had
//!   pinned) or, after [`MAX_ATTEMPTS`], FAILED with the reason. No job is ever COMPLETED from a
//!   partial file: the file is written under a temporary name, which a new attempt overwrites.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::task::JoinSet;

use super::bundle::{self, with_suffix};
use super::progress::Reporter;
use super::{ExportSettings, Queue, fail_in, now_us, state};
use crate::canonical::micros;
use crate::db::Db;
use crate::domain::ExportStatus;
use crate::error::{AppError, AppResult, Context};
use crate::ledger::checkpoint::LedgerKeys;
use crate::ledger::vocabulary::{self, ExportContents};
use crate::ledger::{self};
use entity::{export_jobs, log_exports};

/// Builds started for one job before it is failed as unbuildable.
pub const MAX_ATTEMPTS: i32 = 3;

/// Runs the workers until `stop` resolves (see the module doc). With `settings.workers` 0 it
/// only returns when stopped.
pub async fn run(
    db: Db,
    keys: LedgerKeys,
    settings: ExportSettings,
    queue: Queue,
    stop: impl Future<Output = ()>,
) {
    let owner = format!("worker:{}", crate::ids::random_hex(8));
    tokio::pin!(stop);
    if settings.workers == 0 {
        stop.await;
        return;
    }
    let settings = Arc::new(settings);
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        if let Err(e) = take_back(&db).await {
            e.log();
        }
        while running.len() < settings.workers {
            match claim(&db, &owner, &settings).await {
                Ok(Some(job)) => {
                    let (db, keys, settings, owner) =
                        (db.clone(), keys.clone(), settings.clone(), owner.clone());
                    running
                        .spawn(async move { build_one(&db, &keys, &settings, &owner, job).await });
                }
                Ok(None) => break,
                Err(e) => {
                    e.log();
                    break;
                }
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = queue.woken() => {}
            _ = tokio::time::sleep(settings.poll) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    running.abort_all();
    while running.join_next().await.is_some() {}
    if let Err(e) = give_back(&db, &owner).await {
        e.log();
    }
}

/// Builds one queued export now, in this process (`runledger export`): claims it, builds it and
/// finishes it as a worker would; answers the record as it ended.
pub async fn build_now(
    db: &Db,
    keys: &LedgerKeys,
    settings: &ExportSettings,
    row: &log_exports::Model,
) -> AppResult<log_exports::Model> {
    let owner = format!("cli:{}", crate::ids::random_hex(8));
    let job = export_jobs::Entity::find_by_id((row.tenant_id.clone(), row.id.clone()))
        .one(&db.conn)
        .await
        .context("read an export job")?
        .ok_or_else(|| AppError::internal("build an export", "its job is missing"))?;
    let tx = db.begin_write().await?;
    let lease = now_us() + settings.lease.as_micros() as i64;
    let claimed = export_jobs::Entity::update_many()
        .col_expr(export_jobs::Column::State, Expr::value(state::RUNNING))
        .col_expr(export_jobs::Column::LeaseOwner, Expr::value(owner.as_str()))
        .col_expr(export_jobs::Column::LeaseUntilUs, Expr::value(lease))
        .col_expr(export_jobs::Column::Attempts, Expr::value(job.attempts + 1))
        .filter(export_jobs::Column::TenantId.eq(&row.tenant_id))
        .filter(export_jobs::Column::ExportId.eq(&row.id))
        .filter(export_jobs::Column::State.eq(state::QUEUED))
        .exec(&tx.txn)
        .await
        .context("claim an export")?;
    tx.commit().await?;
    if claimed.rows_affected == 1 {
        let job = export_jobs::Model {
            state: state::RUNNING.into(),
            lease_owner: Some(owner.clone()),
            lease_until_us: Some(lease),
            attempts: job.attempts + 1,
            ..job
        };
        build_and_finish(db, keys, settings, &owner, &job).await?;
    }
    // Not claimed: a server's worker took the job first. Its outcome is the export's, once it
    // has one (a worker that dies leaves the job to its lease: give up after two of them).
    let deadline = std::time::Instant::now() + settings.lease * 2;
    loop {
        let current = export_row(&db.conn, &job_key(row))
            .await?
            .ok_or_else(|| AppError::internal("build an export", "its record vanished"))?;
        if current.status != ExportStatus::Pending.as_str() || std::time::Instant::now() > deadline
        {
            return Ok(current);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn job_key(row: &log_exports::Model) -> export_jobs::Model {
    export_jobs::Model {
        tenant_id: row.tenant_id.clone(),
        export_id: row.id.clone(),
        spec: String::new(),
        state: String::new(),
        attempts: 0,
        lease_owner: None,
        lease_until_us: None,
        records_total: None,
        records_written: 0,
        size_bytes: None,
        checkpoint_size: None,
        evidence_digest: None,
        error: None,
        queued_us: 0,
    }
}

/// Jobs whose builder stopped reporting: queued again, or failed after [`MAX_ATTEMPTS`].
async fn take_back(db: &Db) -> AppResult<()> {
    let stale = export_jobs::Entity::find()
        .filter(export_jobs::Column::State.eq(state::RUNNING))
        .filter(export_jobs::Column::LeaseUntilUs.lt(now_us()))
        .all(&db.conn)
        .await
        .context("look for interrupted exports")?;
    for job in stale {
        let tx = db.begin_write().await?;
        ledger::lock_tenant(&tx.txn, &job.tenant_id).await?;
        if job.attempts >= MAX_ATTEMPTS {
            if let Some(row) = export_row(&tx.txn, &job).await? {
                let reason = format!(
                    "the build was interrupted {} times (the server stopped while building)",
                    job.attempts
                );
                fail_in(&tx.txn, &row, job.lease_owner.as_deref(), &reason).await?;
            }
        } else {
            requeue()
                .filter(export_jobs::Column::TenantId.eq(&job.tenant_id))
                .filter(export_jobs::Column::ExportId.eq(&job.export_id))
                .filter(export_jobs::Column::State.eq(state::RUNNING))
                .filter(export_jobs::Column::LeaseUntilUs.lt(now_us()))
                .exec(&tx.txn)
                .await
                .context("queue an interrupted export again")?;
            tracing::warn!(tenant = %job.tenant_id, export = %job.export_id, attempts = job.attempts, "export build interrupted; queued again");
        }
        tx.commit().await?;
    }
    Ok(())
}

/// An update that puts jobs back in the queue, unleased and from the start (callers say which).
fn requeue() -> sea_orm::UpdateMany<export_jobs::Entity> {
    export_jobs::Entity::update_many()
        .col_expr(export_jobs::Column::State, Expr::value(state::QUEUED))
        .col_expr(
            export_jobs::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            export_jobs::Column::LeaseUntilUs,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(export_jobs::Column::RecordsWritten, Expr::value(0i64))
}

/// This process's RUNNING jobs back to the queue (graceful stop).
async fn give_back(db: &Db, owner: &str) -> AppResult<()> {
    let tx = db.begin_write().await?;
    requeue()
        .filter(export_jobs::Column::State.eq(state::RUNNING))
        .filter(export_jobs::Column::LeaseOwner.eq(owner))
        .exec(&tx.txn)
        .await
        .context("give unfinished exports back to the queue")?;
    tx.commit().await
}

async fn export_row<C: sea_orm::ConnectionTrait>(
    conn: &C,
    job: &export_jobs::Model,
) -> AppResult<Option<log_exports::Model>> {
    log_exports::Entity::find_by_id((job.tenant_id.clone(), job.export_id.clone()))
        .one(conn)
        .await
        .context("read an export")
}

/// Claims the oldest queued job whose tenant is below its bound.
async fn claim(
    db: &Db,
    owner: &str,
    settings: &ExportSettings,
) -> AppResult<Option<export_jobs::Model>> {
    let queued = export_jobs::Entity::find()
        .filter(export_jobs::Column::State.eq(state::QUEUED))
        .order_by_asc(export_jobs::Column::QueuedUs)
        .order_by_asc(export_jobs::Column::ExportId)
        .limit(64)
        .all(&db.conn)
        .await
        .context("read the export queue")?;
    let mut full: HashMap<String, bool> = HashMap::new();
    for job in queued {
        if full.get(&job.tenant_id).copied().unwrap_or(false) {
            continue;
        }
        let tx = db.begin_write().await?;
        ledger::lock_tenant(&tx.txn, &job.tenant_id).await?;
        let busy = export_jobs::Entity::find()
            .filter(export_jobs::Column::TenantId.eq(&job.tenant_id))
            .filter(export_jobs::Column::State.eq(state::RUNNING))
            .count(&tx.txn)
            .await
            .context("count running exports")?;
        if busy >= settings.per_tenant as u64 {
            full.insert(job.tenant_id.clone(), true);
            continue;
        }
        let lease = now_us() + settings.lease.as_micros() as i64;
        let claimed = export_jobs::Entity::update_many()
            .col_expr(export_jobs::Column::State, Expr::value(state::RUNNING))
            .col_expr(export_jobs::Column::LeaseOwner, Expr::value(owner))
            .col_expr(export_jobs::Column::LeaseUntilUs, Expr::value(lease))
            .col_expr(export_jobs::Column::Attempts, Expr::value(job.attempts + 1))
            .filter(export_jobs::Column::TenantId.eq(&job.tenant_id))
            .filter(export_jobs::Column::ExportId.eq(&job.export_id))
            .filter(export_jobs::Column::State.eq(state::QUEUED))
            .exec(&tx.txn)
            .await
            .context("claim an export")?;
        tx.commit().await?;
        if claimed.rows_affected == 1 {
            return Ok(Some(export_jobs::Model {
                state: state::RUNNING.into(),
                lease_owner: Some(owner.into()),
                lease_until_us: Some(lease),
                attempts: job.attempts + 1,
                ..job
            }));
        }
    }
    Ok(None)
}

async fn build_one(
    db: &Db,
    keys: &LedgerKeys,
    settings: &ExportSettings,
    owner: &str,
    job: export_jobs::Model,
) {
    let outcome = build_and_finish(db, keys, settings, owner, &job).await;
    if let Err(e) = outcome {
        e.log();
    }
}

async fn build_and_finish(
    db: &Db,
    keys: &LedgerKeys,
    settings: &ExportSettings,
    owner: &str,
    job: &export_jobs::Model,
) -> AppResult<()> {
    let Some(row) = export_row(&db.conn, job).await? else {
        return Err(AppError::internal(
            "build an export",
            format!("job {} has no export record", job.export_id),
        ));
    };
    let reporter = Reporter::new(db, job, owner, settings);
    let final_path = settings.file_of(&row.tenant_id, &row.id, &row.format);
    let built = bundle::build(db, keys, settings, &row, job, &reporter).await;
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            remove_partials(&final_path);
            if reporter.is_lost() {
                return Ok(());
            }
            let reason = match &e {
                AppError::Internal { .. } => {
                    e.log();
                    "internal error while building the export".to_string()
                }
                other => other.client_message(),
            };
            let tx = db.begin_write().await?;
            ledger::lock_tenant(&tx.txn, &row.tenant_id).await?;
            fail_in(&tx.txn, &row, Some(owner), &reason).await?;
            tx.commit().await?;
            tracing::warn!(tenant = %row.tenant_id, export = %row.id, %reason, "export failed");
            return Ok(());
        }
    };
    let tx = db.begin_write().await?;
    ledger::lock_tenant(&tx.txn, &row.tenant_id).await?;
    let done = export_jobs::Entity::update_many()
        .col_expr(export_jobs::Column::State, Expr::value(state::DONE))
        .col_expr(
            export_jobs::Column::EvidenceDigest,
            Expr::value(built.evidence_digest.clone()),
        )
        .col_expr(
            export_jobs::Column::SizeBytes,
            Expr::value(built.size as i64),
        )
        .col_expr(
            export_jobs::Column::RecordsWritten,
            Expr::value(built.records as i64),
        )
        .col_expr(
            export_jobs::Column::RecordsTotal,
            Expr::value(built.records as i64),
        )
        .col_expr(
            export_jobs::Column::LeaseUntilUs,
            Expr::value(Option::<i64>::None),
        )
        .filter(export_jobs::Column::TenantId.eq(&row.tenant_id))
        .filter(export_jobs::Column::ExportId.eq(&row.id))
        .filter(export_jobs::Column::State.eq(state::RUNNING))
        .filter(export_jobs::Column::LeaseOwner.eq(owner))
        .exec(&tx.txn)
        .await
        .context("finish an export job")?;
    if done.rows_affected == 0 {
        // Cancelled (or taken over) while the file was finished: it is not this build's to
        // deliver.
        drop(tx);
        let _ = std::fs::remove_file(&final_path);
        return Ok(());
    }
    let delivered = micros(Utc::now());
    log_exports::Entity::update_many()
        .col_expr(
            log_exports::Column::Status,
            Expr::value(ExportStatus::Completed.as_str()),
        )
        .col_expr(
            log_exports::Column::Checksum,
            Expr::value(built.checksum.clone()),
        )
        .col_expr(log_exports::Column::DeliveredAt, Expr::value(delivered))
        .filter(log_exports::Column::TenantId.eq(&row.tenant_id))
        .filter(log_exports::Column::Id.eq(&row.id))
        .filter(log_exports::Column::Status.eq(ExportStatus::Pending.as_str()))
        .exec(&tx.txn)
        .await
        .context("complete an export")?;
    ledger::append(
        &tx.txn,
        &row.tenant_id,
        vec![vocabulary::export_completed(
            &row.id,
            row.run_id.as_deref(),
            &built.checksum,
            Some(ExportContents {
                records: built.records,
                size_bytes: built.size,
                checkpoint_size: built.checkpoint_size as u64,
            }),
            delivered,
        )],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %row.tenant_id, export = %row.id, records = built.records, bytes = built.size, "export completed");
    Ok(())
}

fn remove_partials(final_path: &std::path::Path) {
    for suffix in ["partial", "records.partial", "anchors.partial"] {
        let _ = std::fs::remove_file(with_suffix(final_path, suffix));
    }
}
