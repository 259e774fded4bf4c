//! Tenant settings: what a tenant keeps of span content (`tenant_settings`; no row means the
//! defaults, content capture off).

use sea_orm::EntityTrait;

use super::Facade;
use crate::error::{AppResult, Context};
use crate::ingest::otlp::ContentPolicy;
use entity::tenant_settings;

impl Facade {
    /// The content policy of `tenant_id` (the defaults when it set none).
    pub(crate) async fn content_policy_of(&self, tenant_id: &str) -> AppResult<ContentPolicy> {
        let row = tenant_settings::Entity::find_by_id(tenant_id.to_string())
            .one(&self.db.conn)
            .await
            .with_context(|| format!("read the settings of tenant {tenant_id}"))?;
        Ok(row.map_or_else(ContentPolicy::default, |r| ContentPolicy {
            capture: r.content_capture,
            max_bytes: usize::try_from(r.content_max_bytes)
                .unwrap_or(ContentPolicy::DEFAULT_MAX_BYTES),
        }))
    }
}
