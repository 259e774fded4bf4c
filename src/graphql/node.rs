//! Relay's `node(id)` and the caller's `viewer`.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::audit::AuditEntry;
use super::common::{NodeKind, facade, parse_global_id};
use super::runs::{GovernanceEvent, LlmRun, LogExport, TraceStep};
use super::system::{GLOBAL_OWNER, SystemRecord};
use crate::domain::Role;
use crate::error::AppError;
use crate::facade::decode::Projected;
use crate::facade::shared::Shared;

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global id (Relay)."))]
pub enum Node {
    LlmRun(LlmRun),
    TraceStep(TraceStep),
    GovernanceEvent(GovernanceEvent),
    SystemRecord(SystemRecord),
    AuditEntry(AuditEntry),
    LogExport(LogExport),
}

/// The authenticated caller.
pub struct Viewer {
    tenant_id: String,
    tenant_name: String,
    key_id: String,
    role: Role,
    compliance_frameworks: Vec<String>,
}

#[Object]
impl Viewer {
    /// The tenant the key belongs to.
    async fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
    async fn tenant_name(&self) -> &str {
        &self.tenant_name
    }
    /// Public id of the key in use.
    async fn key_id(&self) -> &str {
        &self.key_id
    }
    async fn role(&self) -> Role {
        self.role
    }
    /// Frameworks the tenant reports against.
    async fn compliance_frameworks(&self) -> &[String] {
        &self.compliance_frameworks
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id; null when it does not exist for the caller's tenant.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let f = facade(ctx)?;
        let (kind, parts) = parse_global_id(&id)?;
        let bad = || {
            AppError::bad_input(format!(
                "`{}` is not a global id returned by this API",
                id.0
            ))
        };
        let key = parts.first().ok_or_else(bad)?;
        Ok(match kind {
            NodeKind::LlmRun => f.find_run(key).await?.map(|r| Node::LlmRun(LlmRun(r))),
            NodeKind::TraceStep => {
                let index: i32 = parts.get(1).and_then(|i| i.parse().ok()).ok_or_else(bad)?;
                f.find_trace_step(key, index)
                    .await?
                    .map(|s| Node::TraceStep(TraceStep(Projected::whole(Shared::one(s)))))
            }
            NodeKind::GovernanceEvent => f
                .find_governance_event(key)
                .await?
                .map(|g| Node::GovernanceEvent(GovernanceEvent(Projected::whole(Shared::one(g))))),
            NodeKind::SystemRecord => {
                // The caller's own record, or (with the owner marker) the global one.
                let global = match parts.get(1).map(String::as_str) {
                    None => false,
                    Some(GLOBAL_OWNER) if parts.len() == 2 => true,
                    Some(_) => return Err(bad().into()),
                };
                f.find_system_record(key, global)
                    .await?
                    .map(|s| Node::SystemRecord(SystemRecord(s)))
            }
            NodeKind::AuditEntry => f
                .find_audit_entry(key)
                .await?
                .map(|e| Node::AuditEntry(AuditEntry(Projected::whole(e)))),
            NodeKind::LogExport => f
                .find_export(key)
                .await?
                .map(|e| Node::LogExport(LogExport(e))),
        })
    }

    /// The caller: tenant, key and role.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let f = facade(ctx)?;
        let tenant = f.tenant().await?;
        let caller = f
            .caller()
            .ok_or_else(|| AppError::Unauthenticated("authentication required".into()))?;
        Ok(Viewer {
            tenant_id: tenant.id.clone(),
            tenant_name: tenant.name.clone(),
            key_id: caller.key_id.clone(),
            role: caller.role,
            compliance_frameworks: f.compliance_frameworks().await?,
        })
    }
}
