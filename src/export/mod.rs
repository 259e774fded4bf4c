//! Exports: evidence leaving runledger as one file an auditor can check with nothing but the file
//! and the server's public key (docs/exports.md specifies the bundle).
//!
//! - [`request`] writes, in one transaction, the export record (`log_exports`, PENDING), its job
//!   (`export_jobs`, QUEUED) and the `EXPORT_REQUESTED` entry; [`cancel`] ends a job that has not
//!   completed (FAILED, `EXPORT_FAILED` with the reason);
//! - [`worker`] claims queued jobs (bounded per tenant), builds them and finishes them, and on
//!   start takes back jobs whose builder died (resumed from the start, or FAILED after
//!   [`worker::MAX_ATTEMPTS`]): a job is COMPLETED only by the build that wrote the whole file;
//! - [`spec`] is the scope of an export; [`select`] reads the records a scope holds;
//! - [`bundle`] writes the bundle (and, through [`csv`] and [`otlp`], the other formats),
//!   reporting through [`progress`]; [`verify`] checks one
//!   offline (`runledger verify-bundle`).

pub mod bundle;
pub mod csv;
pub mod otlp;
pub mod progress;
pub mod select;
pub mod spec;
pub mod verify;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::canonical::{canonical_json, micros};
use crate::db::Db;
use crate::domain::{ExportFormat, ExportStatus};
use crate::error::{AppError, AppResult, Context};
use crate::ledger::{self, vocabulary};
use entity::{export_jobs, log_exports};

pub use spec::ExportSpec;

/// Job states (`export_jobs.state`).
pub mod state {
    pub const QUEUED: &str = "QUEUED";
    pub const RUNNING: &str = "RUNNING";
    pub const DONE: &str = "DONE";
    pub const FAILED: &str = "FAILED";
}

/// Where export files live and how many are built at once (`config::ExportArgs`).
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// Finished exports are `<dir>/<tenant>/<export id>.<ext>`.
    pub dir: PathBuf,
    /// Builds running at once in this process; 0 builds nothing (jobs wait in the queue).
    pub workers: usize,
    /// Builds of one tenant running at once, across all processes.
    pub per_tenant: usize,
    /// Jobs one tenant may have queued or running; more requests are refused (RATE_LIMITED).
    pub max_pending_per_tenant: u64,
    /// How often an idle worker looks at the queue (a request wakes the workers of its own
    /// process at once; this is for requests made through other processes).
    pub poll: Duration,
    /// How long a claimed job stays its builder's without news from it.
    pub lease: Duration,
}

impl ExportSettings {
    /// Defaults under `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        ExportSettings {
            dir,
            workers: 2,
            per_tenant: 1,
            max_pending_per_tenant: 16,
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(60),
        }
    }

    /// The finished file of an export.
    pub fn file_of(&self, tenant_id: &str, export_id: &str, format: &str) -> PathBuf {
        self.dir
            .join(safe_component(tenant_id))
            .join(format!("{export_id}.{}", extension(format)))
    }
}

/// The digest of a set of records: lower-case hex SHA-256 over their record hashes (the SHA-256
/// of each record's canonical JSON), sorted ascending and concatenated as 32-byte values. The
/// builder keeps it for each export; a run's view recomputes it from the records stored now to
/// say whether the evidence still matches the newest export.
pub fn evidence_digest(mut hashes: Vec<[u8; 32]>) -> String {
    use sha2::Digest;
    hashes.sort_unstable();
    let mut h = sha2::Sha256::new();
    for x in &hashes {
        h.update(x);
    }
    hex::encode(h.finalize())
}

/// The formats `requestExport` builds.
pub const REQUESTABLE: &[ExportFormat] = &[
    ExportFormat::Bundle,
    ExportFormat::OtlpJson,
    ExportFormat::Csv,
];

/// File extension of a format (a bundle is typed JSONL, OTLP_JSON JSON Lines of requests).
pub fn extension(format: &str) -> &'static str {
    if format == ExportFormat::Csv.as_str() {
        "csv"
    } else {
        "jsonl"
    }
}

/// The media type a format is served as.
pub fn media_type(format: &str) -> &'static str {
    if format == ExportFormat::Csv.as_str() {
        "text/csv"
    } else if format == ExportFormat::OtlpJson.as_str() {
        "application/x-ndjson"
    } else {
        "application/jsonl"
    }
}

/// A tenant id as a directory name: tenant ids are validated at creation, but a path must never
/// leave the export directory whatever the id holds.
fn safe_component(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Wakes this process's export workers when a job is queued. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    wake: Arc<tokio::sync::Notify>,
}

impl Queue {
    /// Wakes the workers; a wake while they are busy is kept until they next wait, so none is
    /// lost between their look at the queue and their wait.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }
}

fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// Records a new export (PENDING), queues its job and chains `EXPORT_REQUESTED`, atomically.
/// `requested_by` is the actor (`key:<id>`, or the operator on the command line).
pub async fn request(
    db: &Db,
    max_pending: u64,
    tenant_id: &str,
    requested_by: &str,
    spec: &ExportSpec,
    format: ExportFormat,
) -> AppResult<log_exports::Model> {
    if !REQUESTABLE.contains(&format) {
        return Err(AppError::bad_input(format!(
            "format {format} cannot be requested: BUNDLE, OTLP_JSON or CSV"
        )));
    }
    if matches!(format, ExportFormat::Csv | ExportFormat::OtlpJson)
        && !matches!(spec, ExportSpec::Run { .. } | ExportSpec::Runs { .. })
    {
        return Err(AppError::bad_input(format!(
            "a {format} export holds runs: its scope must be runId or runs"
        )));
    }
    spec.validate()?;
    let tx = db.begin_write().await?;
    // Taken first, so that the pending count below and the insert are one step per tenant.
    ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let pending = export_jobs::Entity::find()
        .filter(export_jobs::Column::TenantId.eq(tenant_id))
        .filter(export_jobs::Column::State.is_in([state::QUEUED, state::RUNNING]))
        .count(&tx.txn)
        .await
        .context("count pending exports")?;
    if pending >= max_pending {
        return Err(AppError::RateLimited {
            message: format!(
                "tenant {tenant_id} already has {pending} exports queued or building (at most \
                 {max_pending}); retry when one has finished"
            ),
            retry_after_secs: 5,
        });
    }
    let now = micros(Utc::now());
    let row = log_exports::Model {
        tenant_id: tenant_id.to_string(),
        id: crate::ids::new_id("ex"),
        run_id: spec.run_id().map(str::to_string),
        scope: spec.scope_text(),
        format: format.as_str().to_string(),
        requested_by: requested_by.to_string(),
        status: ExportStatus::Pending.as_str().to_string(),
        checksum: None,
        requested_at: now,
        delivered_at: None,
    };
    log_exports::Entity::insert(log_exports::ActiveModel {
        tenant_id: Set(row.tenant_id.clone()),
        id: Set(row.id.clone()),
        run_id: Set(row.run_id.clone()),
        scope: Set(row.scope.clone()),
        format: Set(row.format.clone()),
        requested_by: Set(row.requested_by.clone()),
        status: Set(row.status.clone()),
        checksum: Set(None),
        requested_at: Set(now),
        delivered_at: Set(None),
    })
    .exec_without_returning(&tx.txn)
    .await
    .with_context(|| format!("record export {} of tenant {tenant_id}", row.id))?;
    export_jobs::Entity::insert(export_jobs::ActiveModel {
        tenant_id: Set(row.tenant_id.clone()),
        export_id: Set(row.id.clone()),
        spec: Set(canonical_json(&spec.to_json())),
        state: Set(state::QUEUED.to_string()),
        attempts: Set(0),
        lease_owner: Set(None),
        lease_until_us: Set(None),
        records_total: Set(None),
        records_written: Set(0),
        size_bytes: Set(None),
        checkpoint_size: Set(None),
        evidence_digest: Set(None),
        error: Set(None),
        queued_us: Set(now_us()),
    })
    .exec_without_returning(&tx.txn)
    .await
    .with_context(|| format!("queue export {}", row.id))?;
    ledger::append(
        &tx.txn,
        tenant_id,
        vec![vocabulary::export_requested(
            &row.id,
            requested_by,
            &row.scope,
            &row.format,
            row.run_id.as_deref(),
            Some(spec.to_json()),
            now,
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Ends an export that has not completed: FAILED with `reason`, chained as `EXPORT_FAILED`.
/// A builder still working on it notices at its next progress report and stops.
pub async fn cancel(
    db: &Db,
    tenant_id: &str,
    export_id: &str,
    reason: &str,
) -> AppResult<log_exports::Model> {
    let tx = db.begin_write().await?;
    ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let row = log_exports::Entity::find_by_id((tenant_id.to_string(), export_id.to_string()))
        .one(&tx.txn)
        .await
        .context("look up an export")?
        .ok_or_else(|| AppError::not_found(format!("no export `{export_id}`")))?;
    if row.status != ExportStatus::Pending.as_str() {
        return Err(AppError::Conflict(format!(
            "export `{export_id}` is {} already: only a PENDING export can be cancelled",
            row.status
        )));
    }
    let updated = fail_in(&tx.txn, &row, None, reason).await?;
    if !updated {
        return Err(AppError::Conflict(format!(
            "export `{export_id}` finished meanwhile"
        )));
    }
    tx.commit().await?;
    reread(db, tenant_id, export_id).await
}

/// Marks the export FAILED (record, job, `EXPORT_FAILED`) inside `txn`, provided the job is
/// still unfinished (and, with `owner`, still held by that builder). `false` when it was not.
pub(crate) async fn fail_in<C: sea_orm::ConnectionTrait>(
    txn: &C,
    row: &log_exports::Model,
    owner: Option<&str>,
    reason: &str,
) -> AppResult<bool> {
    let mut update = export_jobs::Entity::update_many()
        .col_expr(export_jobs::Column::State, Expr::value(state::FAILED))
        .col_expr(export_jobs::Column::Error, Expr::value(reason))
        .col_expr(
            export_jobs::Column::LeaseUntilUs,
            Expr::value(Option::<i64>::None),
        )
        .filter(export_jobs::Column::TenantId.eq(&row.tenant_id))
        .filter(export_jobs::Column::ExportId.eq(&row.id))
        .filter(export_jobs::Column::State.is_in([state::QUEUED, state::RUNNING]));
    if let Some(owner) = owner {
        update = update.filter(export_jobs::Column::LeaseOwner.eq(owner));
    }
    let done = update
        .exec(txn)
        .await
        .with_context(|| format!("fail export job {}", row.id))?;
    if done.rows_affected == 0 {
        return Ok(false);
    }
    log_exports::Entity::update_many()
        .col_expr(
            log_exports::Column::Status,
            Expr::value(ExportStatus::Failed.as_str()),
        )
        .filter(log_exports::Column::TenantId.eq(&row.tenant_id))
        .filter(log_exports::Column::Id.eq(&row.id))
        .filter(log_exports::Column::Status.eq(ExportStatus::Pending.as_str()))
        .exec(txn)
        .await
        .with_context(|| format!("fail export {}", row.id))?;
    ledger::append(
        txn,
        &row.tenant_id,
        vec![vocabulary::export_failed(
            &row.id,
            row.run_id.as_deref(),
            Some(reason),
            micros(Utc::now()),
        )],
    )
    .await?;
    Ok(true)
}

async fn reread(db: &Db, tenant_id: &str, export_id: &str) -> AppResult<log_exports::Model> {
    log_exports::Entity::find_by_id((tenant_id.to_string(), export_id.to_string()))
        .one(&db.conn)
        .await
        .context("read an export")?
        .ok_or_else(|| AppError::internal("read an export", format!("{export_id} vanished")))
}

/// The job of an export.
pub async fn job_of(
    db: &Db,
    tenant_id: &str,
    export_id: &str,
) -> AppResult<Option<export_jobs::Model>> {
    export_jobs::Entity::find_by_id((tenant_id.to_string(), export_id.to_string()))
        .one(&db.conn)
        .await
        .context("read an export job")
}

/// A finished export's file, checked against its size before it is served (the checksum was
/// checked when the file was finished; the file is renamed into place only then).
pub fn finished_file(
    settings: &ExportSettings,
    row: &log_exports::Model,
    job: &export_jobs::Model,
) -> AppResult<(PathBuf, u64)> {
    let path = settings.file_of(&row.tenant_id, &row.id, &row.format);
    let size = file_size(&path)?;
    if Some(size as i64) != job.size_bytes {
        return Err(AppError::internal(
            format!("serve export {}", row.id),
            format!(
                "{} holds {size} bytes, the export {:?}",
                path.display(),
                job.size_bytes
            ),
        ));
    }
    Ok((path, size))
}

fn file_size(path: &Path) -> AppResult<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .with_context(|| format!("read the size of {}", path.display()))
}
