//! A build's progress reports: each one records how far the build got and renews the builder's
//! lease on its job; a report that finds the job no longer the builder's (cancelled, or taken
//! over after the lease ran out) says so, and the build stops.

use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{ExportSettings, now_us, state};
use crate::db::Db;
use crate::error::{AppError, AppResult, Context};
use entity::export_jobs;

/// Reports a build's progress and renews its lease; notes when the job is no longer its own.
pub struct Reporter {
    db: Db,
    tenant_id: String,
    export_id: String,
    owner: String,
    settings: ExportSettings,
    lost: AtomicBool,
}

impl Reporter {
    /// The reporter of `owner`'s build of `job`.
    pub fn new(db: &Db, job: &export_jobs::Model, owner: &str, settings: &ExportSettings) -> Self {
        Reporter {
            db: db.clone(),
            tenant_id: job.tenant_id.clone(),
            export_id: job.export_id.clone(),
            owner: owner.to_string(),
            settings: settings.clone(),
            lost: AtomicBool::new(false),
        }
    }

    /// Whether a report found the job no longer this builder's.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn lease_until(&self) -> i64 {
        now_us() + self.settings.lease.as_micros() as i64
    }

    async fn update(
        &self,
        what: &str,
        cols: Vec<(export_jobs::Column, sea_orm::sea_query::SimpleExpr)>,
    ) -> AppResult<()> {
        let tx = self.db.begin_write().await?;
        let mut update = export_jobs::Entity::update_many()
            .col_expr(
                export_jobs::Column::LeaseUntilUs,
                Expr::value(self.lease_until()),
            )
            .filter(export_jobs::Column::TenantId.eq(&self.tenant_id))
            .filter(export_jobs::Column::ExportId.eq(&self.export_id))
            .filter(export_jobs::Column::State.eq(state::RUNNING))
            .filter(export_jobs::Column::LeaseOwner.eq(&self.owner));
        for (col, value) in cols {
            update = update.col_expr(col, value);
        }
        let done = update
            .exec(&tx.txn)
            .await
            .with_context(|| format!("{what} of export {}", self.export_id))?;
        tx.commit().await?;
        if done.rows_affected == 0 {
            self.lost.store(true, Ordering::SeqCst);
            return Err(AppError::Conflict(format!(
                "export {} is no longer this builder's",
                self.export_id
            )));
        }
        Ok(())
    }

    /// Records written so far (and the total, once counted).
    pub async fn progress(&self, written: u64, total: Option<u64>) -> AppResult<()> {
        let mut cols = vec![(
            export_jobs::Column::RecordsWritten,
            Expr::value(written as i64),
        )];
        if let Some(total) = total {
            cols.push((export_jobs::Column::RecordsTotal, Expr::value(total as i64)));
        }
        self.update("report the progress", cols).await
    }

    /// The checkpoint the build is pinned to, kept for a resumed build.
    pub async fn pinned(&self, size: i64) -> AppResult<()> {
        self.update(
            "pin the checkpoint",
            vec![(export_jobs::Column::CheckpointSize, Expr::value(size))],
        )
        .await
    }
}
