//! GraphQL surface of key management (role `admin`): issue, rotate, revoke and list the
//! tenant's API keys. Secrets are returned once, when issued, and never stored.

use async_graphql::{Context, Object, Result};

use super::common::facade;
use super::rows::stored;
use crate::domain::{Role, Timestamp};
use crate::facade::keys::IssuedKey;
use entity::api_keys;

/// An API key's record (never its secret).
pub struct ApiKey(api_keys::Model);

#[Object]
impl ApiKey {
    /// Public id: the `<id>` of `rl_<id>_<secret>`.
    async fn key_id(&self) -> &str {
        &self.0.id
    }
    async fn role(&self) -> Result<Option<Role>> {
        stored(&self.0.role, || {
            format!("api_keys {}/{}", self.0.tenant_id, self.0.id)
        })
        .map(Some)
    }
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }
    async fn created_at(&self) -> Timestamp {
        self.0.created_at.into()
    }
    async fn revoked_at(&self) -> Option<Timestamp> {
        self.0.revoked_at.map(Into::into)
    }
    /// Whether the key still authenticates.
    async fn active(&self) -> bool {
        self.0.revoked_at.is_none()
    }
}

/// A key just issued.
pub struct IssuedApiKey(IssuedKey);

#[Object]
impl IssuedApiKey {
    /// The key to send as `Authorization: Bearer <key>`: shown this once, stored only hashed.
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn api_key(&self) -> ApiKey {
        ApiKey(self.0.record.clone())
    }
}

#[derive(Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// The tenant's API keys, newest first (role `admin`).
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        Ok(facade(ctx)?
            .api_keys()
            .await?
            .into_iter()
            .map(ApiKey)
            .collect())
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object]
impl KeysMutation {
    /// Issues a key of the caller's tenant (role `admin`); recorded as KEY_CREATED.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        role: Role,
        label: Option<String>,
    ) -> Result<IssuedApiKey> {
        Ok(IssuedApiKey(
            facade(ctx)?.create_api_key(role, label).await?,
        ))
    }
    /// Replaces a key: a new key with the same role and label; the old one stops working at
    /// once. Recorded as KEY_ROTATED.
    async fn rotate_api_key(&self, ctx: &Context<'_>, key_id: String) -> Result<IssuedApiKey> {
        Ok(IssuedApiKey(facade(ctx)?.rotate_api_key(&key_id).await?))
    }
    /// Revokes a key: it authenticates nothing from now on. Recorded as KEY_REVOKED.
    async fn revoke_api_key(&self, ctx: &Context<'_>, key_id: String) -> Result<ApiKey> {
        Ok(ApiKey(facade(ctx)?.revoke_api_key(&key_id).await?))
    }
}
