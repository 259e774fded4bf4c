//! Single-record lookups behind Relay's `node(id)`: each is scoped to the caller's tenant (and,
//! for system records, the global ones) and answers `None` for anything else.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Facade;
use crate::auth::Permission;
use crate::error::{AppError, AppResult, Context};
use crate::ledger::vocabulary::EntityType;
use entity::{audit_ledger, governance_events, llm_runs, log_exports, system_records, trace_steps};

impl Facade {
    pub async fn find_run(&self, run_id: &str) -> AppResult<Option<llm_runs::Model>> {
        match self.llm_run(run_id).await {
            Ok(r) => Ok(Some(r)),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn find_trace_step(
        &self,
        trace_id: &str,
        step_index: i32,
    ) -> AppResult<Option<trace_steps::Model>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        trace_steps::Entity::find_by_id((
            scope.tenant_id.to_string(),
            trace_id.to_string(),
            step_index,
        ))
        .one(&scope.db.conn)
        .await
        .context("look up a trace step")
        .inspect(|found| {
            if found.is_some() {
                self.note_read(
                    "runs",
                    EntityType::TraceStep,
                    &format!("{trace_id}#{step_index}"),
                    "node",
                );
            }
        })
    }

    pub async fn find_governance_event(
        &self,
        id: &str,
    ) -> AppResult<Option<governance_events::Model>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        governance_events::Entity::find_by_id((scope.tenant_id.to_string(), id.to_string()))
            .one(&scope.db.conn)
            .await
            .context("look up a governance event")
            .inspect(|found| {
                if found.is_some() {
                    self.note_read("runs", EntityType::GovernanceEvent, id, "node");
                }
            })
    }

    /// The tenant's system record `id`, or (`global`) the global record `id`: ids are scoped
    /// per owner, so both may exist.
    pub async fn find_system_record(
        &self,
        id: &str,
        global: bool,
    ) -> AppResult<Option<system_records::Model>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let owner = if global {
            system_records::Column::TenantId.is_null()
        } else {
            system_records::Column::TenantId.eq(scope.tenant_id)
        };
        system_records::Entity::find()
            .filter(system_records::Column::Id.eq(id))
            .filter(owner)
            .one(&scope.db.conn)
            .await
            .context("look up a system record")
            .inspect(|found| {
                if found.is_some() {
                    // The id alone would not say which owner's record was read.
                    let entity = if global {
                        EntityType::GlobalSystemRecord
                    } else {
                        EntityType::SystemRecord
                    };
                    self.note_read("system", entity, id, "node");
                }
            })
    }

    pub async fn find_audit_entry(&self, id: &str) -> AppResult<Option<audit_ledger::Model>> {
        let scope = self.scope(Permission::ReadAudit)?;
        audit_ledger::Entity::find()
            .filter(audit_ledger::Column::TenantId.eq(scope.tenant_id))
            .filter(audit_ledger::Column::Id.eq(id))
            .one(&scope.db.conn)
            .await
            .context("look up an audit entry")
            .inspect(|found| {
                if found.is_some() {
                    self.note_read("audit", EntityType::AuditEntry, id, "node");
                }
            })
    }

    pub async fn find_export(&self, id: &str) -> AppResult<Option<log_exports::Model>> {
        let scope = self.scope(Permission::ReadAudit)?;
        log_exports::Entity::find_by_id((scope.tenant_id.to_string(), id.to_string()))
            .one(&scope.db.conn)
            .await
            .context("look up an export")
            .inspect(|found| {
                if found.is_some() {
                    self.note_read("audit", EntityType::Export, id, "node");
                }
            })
    }
}
