//! The tenant's API keys, managed by an `admin` key: issue, rotate, revoke, list. Every change
//! and its IDENTITY ledger entry are written in one transaction (see `auth`).

use super::Facade;
use crate::auth::{self, Permission};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use entity::api_keys;

/// A key just issued: its text, shown this once, and its record.
pub struct IssuedKey {
    pub key: String,
    pub record: api_keys::Model,
}

impl Facade {
    /// Issues a key of the caller's tenant.
    pub async fn create_api_key(&self, role: Role, label: Option<String>) -> AppResult<IssuedKey> {
        let caller = self.authorize(Permission::ManageKeys)?;
        if let Some(l) = &label
            && (l.is_empty() || l.chars().count() > 256 || l.chars().any(char::is_control))
        {
            return Err(AppError::bad_input(
                "label must be 1 to 256 characters without control characters",
            ));
        }
        let (key, record) =
            auth::create_key(&self.db, &caller.tenant_id, role, label, Some(caller)).await?;
        Ok(IssuedKey { key, record })
    }

    /// Replaces one of the tenant's keys with a new one of the same role and label.
    pub async fn rotate_api_key(&self, key_id: &str) -> AppResult<IssuedKey> {
        let caller = self.authorize(Permission::ManageKeys)?;
        let (key, record) =
            auth::rotate_key(&self.db, &caller.tenant_id, key_id, Some(caller)).await?;
        self.forget_key(key_id);
        Ok(IssuedKey { key, record })
    }

    /// Revokes one of the tenant's keys.
    pub async fn revoke_api_key(&self, key_id: &str) -> AppResult<api_keys::Model> {
        let caller = self.authorize(Permission::ManageKeys)?;
        let revoked = auth::revoke_key(&self.db, &caller.tenant_id, key_id, Some(caller)).await?;
        self.forget_key(key_id);
        Ok(revoked)
    }

    /// Tells this instance's key cache at once that a key changed (other instances learn it
    /// from PostgreSQL's notification).
    fn forget_key(&self, key_id: &str) {
        if let Some(cache) = &self.key_cache {
            cache.forget(key_id);
        }
    }

    /// The tenant's keys, newest first.
    pub async fn api_keys(&self) -> AppResult<Vec<api_keys::Model>> {
        let caller = self.authorize(Permission::ManageKeys)?;
        auth::list_keys(&self.db, &caller.tenant_id).await
    }
}
