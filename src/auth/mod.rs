//! Authentication and authorization: API keys (issued once, stored hashed, compared in constant
//! time), the caller they identify, and the one place where roles are checked against
//! permissions.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;

use crate::canonical::{micros, sha256_hex};
use crate::db::Db;
use crate::domain::{ActorType, LedgerCategory, Role};
use crate::error::{AppError, AppResult, Context};
use crate::ids::secret_hex;
use crate::ledger::{self, NewEntry};
use entity::{api_keys, tenants};

/// Who is calling: the tenant and role decided by the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: String,
    pub key_id: String,
    pub role: Role,
}

/// What an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Runs and system logs.
    ReadEvidence,
    /// The audit ledger views and exports.
    ReadAudit,
    /// Writing evidence.
    WriteEvidence,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadEvidence => "read:evidence",
            Permission::ReadAudit => "read:audit",
            Permission::WriteEvidence => "write:evidence",
        }
    }
}

/// The permission matrix: the only place roles are checked.
pub fn role_grants(role: Role, permission: Permission) -> bool {
    match permission {
        Permission::ReadEvidence => role.can_read_evidence(),
        Permission::ReadAudit => role.can_read_audit(),
        Permission::WriteEvidence => role.can_write_evidence(),
    }
}

/// Checks a permission for an optional caller.
pub fn authorize(caller: Option<&Caller>, permission: Permission) -> AppResult<&Caller> {
    let caller = caller.ok_or_else(|| {
        AppError::Unauthenticated(
            "authentication required: send `Authorization: Bearer <api key>`".into(),
        )
    })?;
    if role_grants(caller.role, permission) {
        Ok(caller)
    } else {
        Err(AppError::Forbidden(format!(
            "role {} does not grant {}",
            caller.role,
            permission.as_str()
        )))
    }
}

/// Length of the public key id (hex characters).
const KEY_ID_HEX: usize = 12;

/// Splits `rl_<id>_<secret>` into its id; `None` when the shape is wrong.
fn key_id_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix("rl_")?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == KEY_ID_HEX
        && secret.len() == 64
        && id
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(id)
}

/// Compares two byte strings in time that depends only on their length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Resolves a presented key to its caller; `Unauthenticated` when unknown, revoked or wrong.
pub async fn authenticate(db: &Db, presented: &str) -> AppResult<Caller> {
    let rejected = || AppError::Unauthenticated("invalid or revoked API key".into());
    let id = key_id_of(presented).ok_or_else(rejected)?;
    let key = api_keys::Entity::find_by_id(id.to_string())
        .one(&db.conn)
        .await
        .context("look up an API key")?
        .ok_or_else(rejected)?;
    let presented_hash = sha256_hex(presented.as_bytes());
    if !constant_time_eq(presented_hash.as_bytes(), key.secret_hash.as_bytes())
        || key.revoked_at.is_some()
    {
        return Err(rejected());
    }
    let role = Role::parse(&key.role).ok_or_else(|| {
        AppError::internal(
            format!("read the role of key {id}"),
            format!("unknown stored role `{}`", key.role),
        )
    })?;
    Ok(Caller {
        tenant_id: key.tenant_id,
        key_id: key.id,
        role,
    })
}

/// The ledger that anchors global system records written by operators. Its name cannot be a
/// tenant id (those never start with `_`), so no key can read or write it as a tenant.
pub const PLATFORM_LEDGER: &str = "_platform";

/// Validates a tenant id: 1–64 characters of `[A-Za-z0-9._-]`, not starting with `_`.
pub fn validate_tenant_id(id: &str) -> AppResult<()> {
    let ok = !id.is_empty()
        && !id.starts_with('_')
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_input(format!(
            "tenant id `{id}` must be 1-64 characters of letters, digits, '-', '_' or '.', not starting with '_'"
        )))
    }
}

/// Creates the tenant when it does not exist (recording it in its ledger). Returns whether it
/// was created.
pub async fn ensure_tenant(
    db: &Db,
    tenant_id: &str,
    name: &str,
    compliance_frameworks: &[&str],
) -> AppResult<bool> {
    validate_tenant_id(tenant_id)?;
    let tx = db.begin_write().await?;
    let existing = tenants::Entity::find_by_id(tenant_id.to_string())
        .one(&tx.txn)
        .await
        .with_context(|| format!("look up tenant {tenant_id}"))?;
    if existing.is_some() {
        return Ok(false);
    }
    let now = micros(Utc::now());
    tenants::Entity::insert(tenants::ActiveModel {
        id: Set(tenant_id.to_string()),
        name: Set(name.to_string()),
        compliance_frameworks: Set(json!(compliance_frameworks).to_string()),
        created_at: Set(now),
    })
    .exec_without_returning(&tx.txn)
    .await
    .with_context(|| format!("create tenant {tenant_id}"))?;
    ledger::append(
        &tx.txn,
        tenant_id,
        vec![NewEntry {
            id: None,
            category: LedgerCategory::Identity,
            event_type: "TENANT_CREATED".into(),
            entity_type: "tenant".into(),
            entity_id: tenant_id.to_string(),
            actor_type: ActorType::System,
            actor_id: Some("runledger".into()),
            action_reason: None,
            decision: None,
            before_state: None,
            after_state: Some(
                json!({"name": name, "compliance_frameworks": compliance_frameworks}),
            ),
            correlation_id: None,
            occurred_at: now,
        }],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Issues a new key for an existing tenant and records it in the tenant's ledger. Returns the
/// key text, which is shown this once and never stored.
pub async fn create_key(
    db: &Db,
    tenant_id: &str,
    role: Role,
    label: Option<String>,
    actor: Option<&Caller>,
) -> AppResult<(String, api_keys::Model)> {
    let id = secret_hex(KEY_ID_HEX / 2)?;
    let secret = secret_hex(32)?;
    let key = format!("rl_{id}_{secret}");
    let now = micros(Utc::now());
    let model = api_keys::Model {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        role: role.as_str().to_string(),
        secret_hash: sha256_hex(key.as_bytes()),
        label,
        created_at: now,
        revoked_at: None,
    };
    let tx = db.begin_write().await?;
    tenants::Entity::find_by_id(tenant_id.to_string())
        .one(&tx.txn)
        .await
        .with_context(|| format!("look up tenant {tenant_id}"))?
        .ok_or_else(|| AppError::not_found(format!("tenant `{tenant_id}` does not exist")))?;
    api_keys::Entity::insert(api_keys::ActiveModel {
        id: Set(model.id.clone()),
        tenant_id: Set(model.tenant_id.clone()),
        role: Set(model.role.clone()),
        secret_hash: Set(model.secret_hash.clone()),
        label: Set(model.label.clone()),
        created_at: Set(now),
        revoked_at: Set(None),
    })
    .exec_without_returning(&tx.txn)
    .await
    .with_context(|| format!("store a new key for tenant {tenant_id}"))?;
    let (actor_type, actor_id) = match actor {
        Some(c) => (ActorType::Human, Some(format!("key:{}", c.key_id))),
        None => (ActorType::System, Some("runledger-cli".to_string())),
    };
    ledger::append(
        &tx.txn,
        tenant_id,
        vec![NewEntry {
            id: None,
            category: LedgerCategory::Identity,
            event_type: "KEY_CREATED".into(),
            entity_type: "api_key".into(),
            entity_id: id,
            actor_type,
            actor_id,
            action_reason: None,
            decision: None,
            before_state: None,
            after_state: Some(json!({"role": role.as_str(), "label": model.label})),
            correlation_id: None,
            occurred_at: now,
        }],
    )
    .await?;
    tx.commit().await?;
    Ok((key, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_is_checked_before_any_lookup() {
        let good = format!("rl_{}_{}", "a".repeat(12), "b".repeat(64));
        assert_eq!(key_id_of(&good), Some("aaaaaaaaaaaa"));
        assert_eq!(key_id_of("rl_short_x"), None);
        assert_eq!(key_id_of("Bearer nonsense"), None);
    }

    #[test]
    fn role_matrix() {
        assert!(role_grants(Role::Viewer, Permission::ReadEvidence));
        assert!(!role_grants(Role::Viewer, Permission::ReadAudit));
        assert!(role_grants(Role::Auditor, Permission::ReadAudit));
        assert!(!role_grants(Role::Ingest, Permission::ReadEvidence));
        assert!(role_grants(Role::Admin, Permission::ReadAudit));
    }
}
