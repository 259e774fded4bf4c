//! Tenant settings: what a tenant keeps of span content (`tenant_settings`; no row means the
//! defaults, content capture off). Any reader of the tenant's evidence may see the setting; an
//! `admin` key changes it, and the change is recorded in the tenant's ledger in the same
//! transaction (`TENANT_SETTINGS_CHANGED`, before and after).

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::json;

use super::Facade;
use crate::auth::Permission;
use crate::canonical::micros;
use crate::error::{AppError, AppResult, Context};
use crate::ingest::otlp::ContentPolicy;
use crate::ledger::{self, vocabulary};
use entity::tenant_settings;

/// Smallest content limit a tenant may set, in bytes.
pub const MIN_CONTENT_BYTES: usize = 256;

async fn policy_of<C: ConnectionTrait>(db: &C, tenant_id: &str) -> AppResult<ContentPolicy> {
    let row = tenant_settings::Entity::find_by_id(tenant_id.to_string())
        .one(db)
        .await
        .with_context(|| format!("read the settings of tenant {tenant_id}"))?;
    Ok(row.map_or_else(ContentPolicy::default, |r| ContentPolicy {
        capture: r.content_capture,
        max_bytes: usize::try_from(r.content_max_bytes).unwrap_or(ContentPolicy::DEFAULT_MAX_BYTES),
    }))
}

fn policy_json(p: ContentPolicy) -> serde_json::Value {
    json!({"content_capture": p.capture, "content_max_bytes": p.max_bytes})
}

impl Facade {
    /// The content policy of `tenant_id` (the defaults when it set none).
    pub(crate) async fn content_policy_of(&self, tenant_id: &str) -> AppResult<ContentPolicy> {
        policy_of(&self.db.conn, tenant_id).await
    }

    /// The caller's tenant's content policy.
    pub async fn content_capture(&self) -> AppResult<ContentPolicy> {
        let scope = self.scope(Permission::ReadEvidence)?;
        policy_of(&scope.db.conn, scope.tenant_id).await
    }

    /// Turns content capture on or off for the caller's tenant, with the limit of kept
    /// content per step (`max_bytes`, else the current limit).
    pub async fn set_content_capture(
        &self,
        enabled: bool,
        max_bytes: Option<i64>,
    ) -> AppResult<ContentPolicy> {
        let caller = self.authorize(Permission::ManageSettings)?;
        let tenant_id = caller.tenant_id.clone();
        let max_bytes = max_bytes
            .map(|n| {
                usize::try_from(n)
                    .ok()
                    .filter(|n| (MIN_CONTENT_BYTES..=ContentPolicy::MAX_MAX_BYTES).contains(n))
                    .ok_or_else(|| {
                        AppError::bad_input(format!(
                            "maxBytes must be between {MIN_CONTENT_BYTES} and {}, got {n}",
                            ContentPolicy::MAX_MAX_BYTES
                        ))
                    })
            })
            .transpose()?;
        let tx = self.db.begin_write().await?;
        ledger::lock_tenant(&tx.txn, &tenant_id).await?;
        let before = policy_of(&tx.txn, &tenant_id).await?;
        let after = ContentPolicy {
            capture: enabled,
            max_bytes: max_bytes.unwrap_or(before.max_bytes),
        };
        let now = micros(Utc::now());
        // Settings are configuration, not evidence: the row is replaced, the ledger keeps
        // the history.
        tenant_settings::Entity::insert(tenant_settings::ActiveModel {
            tenant_id: Set(tenant_id.clone()),
            content_capture: Set(after.capture),
            content_max_bytes: Set(after.max_bytes as i64),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(tenant_settings::Column::TenantId)
                .update_columns([
                    tenant_settings::Column::ContentCapture,
                    tenant_settings::Column::ContentMaxBytes,
                    tenant_settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&tx.txn)
        .await
        .with_context(|| format!("store the settings of tenant {tenant_id}"))?;
        ledger::append(
            &tx.txn,
            &tenant_id,
            vec![vocabulary::tenant_settings_changed(
                &tenant_id,
                policy_json(before),
                policy_json(after),
                &caller.key_id,
                now,
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}
