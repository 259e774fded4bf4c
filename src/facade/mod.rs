//! The facade: the 19 read operations of the three evidence topics (each answers a list and
//! five depth views), with their evidence metadata (docs/architecture.md shows where the facade
//! sits in a request's path). Resolvers call it and do nothing else; it is one of the two
//! places (with the write paths) that touch entities.
//!
//! A [`Facade`] lives for one request: it knows the caller, checks every operation against the
//! permission matrix, and owns the request's DataLoaders, bound to the caller's tenant.

pub mod audit;
pub mod decode;
pub mod exports;
pub mod inflection;
pub mod ingest;
pub mod keys;
pub mod live;
pub mod loaders;
pub mod lookup;
pub mod metadata;
pub mod page;
pub mod record;
pub mod runs;
pub mod settings;
pub mod shared;
pub mod stats;
pub mod system;

use std::sync::Arc;

use sea_orm::EntityTrait;
use tokio::sync::OnceCell;

use crate::auth::cache::KeyCache;
use crate::auth::{self, Caller, Permission};
use crate::db::Db;
use crate::error::{AppError, AppResult, Context};
use crate::export::{ExportSettings, Queue};
use crate::ledger::appender::Appender;
use crate::ledger::checkpoint::LedgerKeys;
use entity::tenants;
use loaders::Loaders;

pub use metadata::EvidenceMetadata;
pub use page::{Page, PageArgs};

/// The read operations for one request.
pub struct Facade {
    db: Db,
    caller: Option<Caller>,
    loaders: Option<Loaders>,
    tenant: OnceCell<tenants::Model>,
    /// Tenant records the server has read before.
    tenants: Arc<TenantCache>,
    /// The server's checkpoint signing identity.
    ledger: LedgerKeys,
    /// Group commit for the ledger entries reads write (verification records).
    appender: Appender,
    /// A verification reads the ledger: one per mode and request, however often it is asked.
    integrity: OnceCell<audit::AuditIntegrity>,
    integrity_full: OnceCell<audit::AuditIntegrity>,
    /// Authorization decisions and evidence reads, written to the ledger before the response.
    record: record::RequestRecord,
    /// Whether those records are written (on unless switched off for a benchmark).
    recording: bool,
    /// The server's API key cache, told at once about keys this request rotates or revokes.
    key_cache: Option<Arc<KeyCache>>,
    /// Where exports live and the queue of the export workers (absent: exports unavailable).
    exports: Option<(Arc<ExportSettings>, Queue)>,
    /// The server's live subscriptions (absent outside a subscription's transport).
    live: Option<Arc<live::Hub>>,
    /// The subscription this facade serves, once it started.
    subscription: std::sync::Mutex<Option<live::streams::SubscriptionInfo>>,
}

/// What an authorized operation works with.
pub(crate) struct Scope<'a> {
    pub tenant_id: &'a str,
    pub loaders: &'a Loaders,
    pub db: &'a Db,
}

impl Facade {
    pub fn for_request(
        db: Db,
        ledger: LedgerKeys,
        appender: Appender,
        caller: Option<Caller>,
    ) -> Self {
        let loaders = caller
            .as_ref()
            .map(|c| Loaders::new(db.clone(), c.tenant_id.clone()));
        Facade {
            db,
            caller,
            loaders,
            tenant: OnceCell::new(),
            tenants: Arc::default(),
            ledger,
            appender,
            integrity: OnceCell::new(),
            integrity_full: OnceCell::new(),
            record: record::RequestRecord::default(),
            recording: true,
            key_cache: None,
            exports: None,
            live: None,
            subscription: std::sync::Mutex::new(None),
        }
    }

    /// Serves live subscriptions from the server's hub (a subscription's facade).
    pub fn with_live(mut self, hub: Arc<live::Hub>) -> Self {
        self.live = Some(hub);
        self
    }

    /// Shares the server's API key cache.
    pub fn with_key_cache(mut self, key_cache: Option<Arc<KeyCache>>) -> Self {
        self.key_cache = key_cache;
        self
    }

    /// Serves and requests exports with the server's settings and queue.
    pub fn with_exports(mut self, exports: Option<(Arc<ExportSettings>, Queue)>) -> Self {
        self.exports = exports;
        self
    }

    /// Shares the server's cache of tenant records.
    pub fn with_tenant_cache(mut self, tenants: Arc<TenantCache>) -> Self {
        self.tenants = tenants;
        self
    }

    /// Switches the request's authorization and access records on or off.
    pub fn with_recording(mut self, on: bool) -> Self {
        self.recording = on;
        self
    }

    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// Authorizes `permission` and returns the caller's tenant scope.
    pub(crate) fn scope(&self, permission: Permission) -> AppResult<Scope<'_>> {
        let caller = self.authorize(permission)?;
        let loaders = self
            .loaders
            .as_ref()
            .ok_or_else(|| AppError::internal("prepare loaders", "caller without loaders"))?;
        Ok(Scope {
            tenant_id: &caller.tenant_id,
            loaders,
            db: &self.db,
        })
    }

    /// The caller's tenant record, loaded once per request.
    pub async fn tenant(&self) -> AppResult<&tenants::Model> {
        let caller = auth::authorize(self.caller.as_ref(), Permission::ReadEvidence)
            .or_else(|_| auth::authorize(self.caller.as_ref(), Permission::ReadAudit))
            .or_else(|e| match (&e, self.caller.as_ref()) {
                // Every authenticated key may see which tenant it belongs to.
                (AppError::Forbidden(_), Some(c)) => Ok(c),
                _ => Err(e),
            })?;
        self.tenant
            .get_or_try_init(|| async {
                if let Some(known) = self.tenants.get(&caller.tenant_id) {
                    return Ok(known);
                }
                let tenant = tenants::Entity::find_by_id(caller.tenant_id.clone())
                    .one(&self.db.conn)
                    .await
                    .with_context(|| format!("load tenant {}", caller.tenant_id))?
                    .ok_or_else(|| {
                        AppError::internal(
                            "load the caller's tenant",
                            format!("key {} names a missing tenant", caller.key_id),
                        )
                    })?;
                self.tenants.keep(&tenant);
                Ok(tenant)
            })
            .await
    }

    /// The compliance frameworks the caller's tenant reports against.
    pub async fn compliance_frameworks(&self) -> AppResult<Vec<String>> {
        let tenant = self.tenant().await?;
        serde_json::from_str(&tenant.compliance_frameworks)
            .context("parse the tenant's compliance frameworks")
    }
}

/// Tenant records by id, shared by a server's requests. A tenant is written once and never
/// changed (`auth::ensure_tenant` only inserts; nothing updates or deletes a tenant), so a
/// record read once stays true on every instance over the same database. (An operator who
/// edits a tenant row by hand must restart the servers for them to see it.)
#[derive(Debug, Default)]
pub struct TenantCache {
    known: std::sync::Mutex<std::collections::HashMap<String, tenants::Model>>,
}

impl TenantCache {
    fn get(&self, tenant_id: &str) -> Option<tenants::Model> {
        crate::locked(&self.known).get(tenant_id).cloned()
    }

    fn keep(&self, tenant: &tenants::Model) {
        crate::locked(&self.known).insert(tenant.id.clone(), tenant.clone());
    }
}

/// Validates an optional free-text filter value: non-empty, at most 256 characters.
pub(crate) fn check_text(field: &str, value: &Option<String>) -> AppResult<()> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > 256 => Err(AppError::bad_input(format!(
            "{field} must be 1 to 256 characters"
        ))),
        _ => Ok(()),
    }
}

/// Validates an optional `[after, before]` time range.
pub(crate) fn check_range(
    field: &str,
    after: &Option<crate::domain::Timestamp>,
    before: &Option<crate::domain::Timestamp>,
) -> AppResult<()> {
    match (after, before) {
        (Some(a), Some(b)) if a > b => Err(AppError::bad_input(format!(
            "{field}: the lower bound {} is after the upper bound {}",
            crate::canonical::timestamp(&a.0),
            crate::canonical::timestamp(&b.0)
        ))),
        _ => Ok(()),
    }
}
