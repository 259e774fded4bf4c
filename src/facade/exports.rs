//! Exports through the API: request one (`requestExport`), cancel one, read the build's progress,
//! and authorize a download (`GET /exports/{id}`). The job queue, the builder and the bundle
//! format are [`crate::export`]'s; this is where the caller's permission (`export:evidence`) is
//! checked and where a download is recorded as an evidence read of the export.

use std::path::PathBuf;

use super::Facade;
use crate::auth::Permission;
use crate::domain::{ExportFormat, ExportStatus};
use crate::error::{AppError, AppResult};
use crate::export::{self, ExportSpec};
use crate::ledger::vocabulary::EntityType;
use crate::ledger::vocabulary::key_actor;
use entity::{export_jobs, log_exports};

/// A completed export ready to be served.
pub struct Download {
    pub export: log_exports::Model,
    pub path: PathBuf,
    pub size: u64,
    /// The export's checksum (the ETag).
    pub checksum: String,
    /// The name offered to the client (`Content-Disposition`).
    pub file_name: String,
}

impl Facade {
    fn export_settings(
        &self,
    ) -> AppResult<&(std::sync::Arc<export::ExportSettings>, export::Queue)> {
        self.exports.as_ref().ok_or_else(|| {
            AppError::internal(
                "serve exports",
                "the server was started without export settings",
            )
        })
    }

    /// Queues an export of the caller's tenant; answers its record in PENDING.
    pub async fn request_export(
        &self,
        spec: ExportSpec,
        format: ExportFormat,
    ) -> AppResult<log_exports::Model> {
        let caller = self.authorize(Permission::ExportEvidence)?;
        let (settings, queue) = self.export_settings()?;
        if let Some(run_id) = spec.run_id() {
            // NOT_FOUND for a run the tenant does not have, rather than an empty export.
            self.llm_run(run_id).await?;
        }
        let row = export::request(
            &self.db,
            settings.max_pending_per_tenant,
            &caller.tenant_id,
            &key_actor(&caller.key_id),
            &spec,
            format,
        )
        .await?;
        queue.wake();
        Ok(row)
    }

    /// Cancels an export of the caller's tenant that has not completed.
    pub async fn cancel_export(&self, export_id: &str) -> AppResult<log_exports::Model> {
        let caller = self.authorize(Permission::ExportEvidence)?;
        let reason = format!("cancelled by {}", key_actor(&caller.key_id));
        export::cancel(&self.db, &caller.tenant_id, export_id, &reason).await
    }

    /// The build job of an export the caller may see (progress, size, failure reason); batched
    /// across the exports of a page.
    pub async fn export_job(&self, export_id: &str) -> AppResult<Option<export_jobs::Model>> {
        let scope = self.scope(Permission::ReadAudit)?;
        Ok(scope
            .loaders
            .export_jobs
            .load_one(export_id.to_string())
            .await?)
    }

    /// A completed export of the caller's tenant, to download; recorded as a read of the export
    /// (`view` names the byte range asked for). Another tenant's export is NOT_FOUND, as a
    /// missing one is.
    pub async fn download_export(
        &self,
        export_id: &str,
        view: &'static str,
    ) -> AppResult<Download> {
        let caller = self.authorize(Permission::ExportEvidence)?;
        let (settings, _) = self.export_settings()?;
        let missing = || AppError::not_found(format!("no export `{export_id}`"));
        let row = self
            .find_export_row(&caller.tenant_id, export_id)
            .await?
            .ok_or_else(missing)?;
        if row.status != ExportStatus::Completed.as_str() {
            return Err(AppError::Conflict(format!(
                "export `{export_id}` is {}: only a COMPLETED export can be downloaded",
                row.status
            )));
        }
        let job = export::job_of(&self.db, &caller.tenant_id, export_id)
            .await?
            .ok_or_else(|| {
                AppError::Conflict(format!(
                    "export `{export_id}` was not built by runledger's export path: it has no file"
                ))
            })?;
        let (path, size) = export::finished_file(settings, &row, &job)?;
        let checksum = row.checksum.clone().unwrap_or_default();
        self.note_read("audit", EntityType::Export, export_id, view);
        Ok(Download {
            file_name: format!("{}.{}", row.id, export::extension(&row.format)),
            export: row,
            path,
            size,
            checksum,
        })
    }

    async fn find_export_row(
        &self,
        tenant_id: &str,
        export_id: &str,
    ) -> AppResult<Option<log_exports::Model>> {
        use crate::error::Context;
        use sea_orm::EntityTrait;
        log_exports::Entity::find_by_id((tenant_id.to_string(), export_id.to_string()))
            .one(&self.db.conn)
            .await
            .context("look up an export")
    }
}
