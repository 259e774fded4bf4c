//! Authentication and authorization: API keys (issued once, stored hashed, compared in constant
//! time), the caller they identify, and the one place where roles are checked against
//! permissions.

pub mod cache;

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;

use crate::canonical::{micros, sha256_hex};
use crate::db::Db;
use crate::domain::Role;
use crate::error::{AppError, AppResult, Context};
use crate::ids::secret_hex;
use crate::ledger::{
    self, PLATFORM_LEDGER,
    vocabulary::{self, AuthFailureReason},
};
use cache::KeyCache;
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
    /// Creating, rotating and revoking the tenant's API keys.
    ManageKeys,
    /// Changing the tenant's settings (content capture).
    ManageSettings,
    /// Requesting, cancelling and downloading exports of the tenant's evidence.
    ExportEvidence,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadEvidence => "read:evidence",
            Permission::ReadAudit => "read:audit",
            Permission::WriteEvidence => "write:evidence",
            Permission::ManageKeys => "manage:keys",
            Permission::ManageSettings => "manage:settings",
            Permission::ExportEvidence => "export:evidence",
        }
    }
}

/// The permission matrix: the only place roles are checked.
pub fn role_grants(role: Role, permission: Permission) -> bool {
    match permission {
        Permission::ReadEvidence => role.can_read_evidence(),
        Permission::ReadAudit => role.can_read_audit(),
        Permission::WriteEvidence => role.can_write_evidence(),
        Permission::ManageKeys | Permission::ManageSettings => role == Role::Admin,
        Permission::ExportEvidence => matches!(role, Role::Auditor | Role::Admin),
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
        Err(AppError::Forbidden(decision_reason(
            caller.role,
            permission,
            false,
        )))
    }
}

/// Why a role was or was not granted a permission, as the refusal says and the decision's
/// ledger entry records it: `role VIEWER grants read:evidence`, `role VIEWER does not grant
/// read:audit`.
pub fn decision_reason(role: Role, permission: Permission, allowed: bool) -> String {
    let verb = if allowed { "grants" } else { "does not grant" };
    format!("role {role} {verb} {}", permission.as_str())
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

/// Why a presented key was refused, for the identity record (never told to the client, which
/// only learns that the key is invalid or revoked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// The ledger the failure is recorded in: the key's tenant when the key id is known, else
    /// the platform ledger.
    pub ledger: String,
    /// The key id presented, when the key was well formed.
    pub key_id: Option<String>,
    pub reason: AuthFailureReason,
}

/// Resolves a presented key to its caller; `Unauthenticated` when unknown, revoked or wrong.
pub async fn authenticate(db: &Db, presented: &str) -> AppResult<Caller> {
    match check_key(db, None, presented).await? {
        Ok(caller) => Ok(caller),
        Err(_) => Err(rejected_key()),
    }
}

fn rejected_key() -> AppError {
    AppError::Unauthenticated("invalid or revoked API key".into())
}

/// Like [`authenticate`], and records a refused key in the ledger (IDENTITY
/// `AUTHENTICATION_FAILED`) through the group-commit appender before answering. With a rate
/// limiter, failures are recorded at most at its rate per key id (one shared budget for unknown
/// and malformed keys), so that nobody can flood a ledger without a valid key; the refusal
/// itself is the same either way.
pub async fn authenticate_recorded(
    db: &Db,
    key_cache: Option<&KeyCache>,
    appender: &crate::ledger::appender::Appender,
    may_record_failure: impl Fn(&str) -> bool,
    presented: &str,
) -> AppResult<Caller> {
    let failure = match check_key(db, key_cache, presented).await? {
        Ok(caller) => return Ok(caller),
        Err(f) => f,
    };
    let budget = match (&failure.key_id, failure.ledger.as_str()) {
        (Some(id), ledger) if ledger != PLATFORM_LEDGER => format!("auth-failure:{id}"),
        _ => "auth-failure:platform".to_string(),
    };
    if !may_record_failure(&budget) {
        return Err(rejected_key());
    }
    let entry = vocabulary::authentication_failed(
        failure.key_id.as_deref(),
        failure.reason,
        micros(Utc::now()),
    );
    appender.append(&failure.ledger, vec![entry]).await?;
    Err(rejected_key())
}

/// Checks a presented key: the caller, or why it is refused.
async fn check_key(
    db: &Db,
    key_cache: Option<&KeyCache>,
    presented: &str,
) -> AppResult<Result<Caller, AuthFailure>> {
    let Some(id) = key_id_of(presented) else {
        return Ok(Err(AuthFailure {
            ledger: PLATFORM_LEDGER.into(),
            key_id: None,
            reason: AuthFailureReason::MalformedKey,
        }));
    };
    let Some(key) = find_key(db, key_cache, id).await? else {
        return Ok(Err(AuthFailure {
            ledger: PLATFORM_LEDGER.into(),
            key_id: Some(id.to_string()),
            reason: AuthFailureReason::UnknownKeyId,
        }));
    };
    let presented_hash = sha256_hex(presented.as_bytes());
    let failed = |reason| {
        Ok(Err(AuthFailure {
            ledger: key.tenant_id.clone(),
            key_id: Some(key.id.clone()),
            reason,
        }))
    };
    if !constant_time_eq(presented_hash.as_bytes(), key.secret_hash.as_bytes()) {
        return failed(AuthFailureReason::WrongSecret);
    }
    if key.revoked_at.is_some() {
        return failed(AuthFailureReason::RevokedKey);
    }
    let role = Role::parse(&key.role).ok_or_else(|| {
        AppError::internal(
            format!("read the role of key {id}"),
            format!("unknown stored role `{}`", key.role),
        )
    })?;
    Ok(Ok(Caller {
        tenant_id: key.tenant_id.clone(),
        key_id: key.id.clone(),
        role,
    }))
}

/// The stored key `id`: from the key cache when it serves, else read (and offered to it).
async fn find_key(
    db: &Db,
    key_cache: Option<&KeyCache>,
    id: &str,
) -> AppResult<Option<Arc<api_keys::Model>>> {
    let ticket = match key_cache.map(|c| c.get(id)) {
        Some(cache::Cached::Hit(key)) => return Ok(Some(key)),
        Some(cache::Cached::Miss(ticket)) => ticket,
        None => None,
    };
    let key = api_keys::Entity::find_by_id(id.to_string())
        .one(&db.conn)
        .await
        .context("look up an API key")?
        .map(Arc::new);
    if let (Some(cache), Some(key)) = (key_cache, &key) {
        cache.keep(ticket, key.clone());
    }
    Ok(key)
}

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

/// Checks that the tenant exists: a malformed id is `BAD_USER_INPUT`, an unknown one
/// `NOT_FOUND` naming it and how to create it. Commands that act on a tenant call this before
/// writing anything.
pub async fn require_tenant(db: &Db, tenant_id: &str) -> AppResult<()> {
    validate_tenant_id(tenant_id)?;
    let found = tenants::Entity::find_by_id(tenant_id.to_string())
        .one(&db.conn)
        .await
        .with_context(|| format!("look up tenant {tenant_id}"))?;
    match found {
        Some(_) => Ok(()),
        None => Err(AppError::not_found(format!(
            "tenant `{tenant_id}` does not exist; create it first with \
             `runledger tenants create --id {tenant_id}`"
        ))),
    }
}

/// The ids of the tenants other than `except`, in id order.
pub async fn other_tenants(db: &Db, except: &str) -> AppResult<Vec<String>> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    tenants::Entity::find()
        .select_only()
        .column(tenants::Column::Id)
        .filter(tenants::Column::Id.ne(except))
        .order_by_asc(tenants::Column::Id)
        .into_tuple()
        .all(&db.conn)
        .await
        .context("list tenants")
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
        vec![vocabulary::tenant_created(
            tenant_id,
            name,
            compliance_frameworks,
            now,
        )],
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
    ledger::append(
        &tx.txn,
        tenant_id,
        vec![vocabulary::key_created(
            &id,
            role,
            model.label.as_deref(),
            changed_by(actor),
            now,
        )],
    )
    .await?;
    tx.commit().await?;
    Ok((key, model))
}

/// Who a key change is attributed to: the admin key that made it, or the command line.
fn changed_by(actor: Option<&Caller>) -> vocabulary::KeyChangedBy<'_> {
    match actor {
        Some(c) => vocabulary::KeyChangedBy::AdminKey(&c.key_id),
        None => vocabulary::KeyChangedBy::Cli,
    }
}

/// The tenant's key `key_id`, locked for the write transaction; NOT_FOUND for another tenant's.
async fn key_of_tenant<C: sea_orm::ConnectionTrait>(
    txn: &C,
    tenant_id: &str,
    key_id: &str,
) -> AppResult<api_keys::Model> {
    api_keys::Entity::find_by_id(key_id.to_string())
        .one(txn)
        .await
        .with_context(|| format!("look up key {key_id}"))?
        .filter(|k| k.tenant_id == tenant_id)
        .ok_or_else(|| AppError::not_found(format!("no key `{key_id}` in tenant `{tenant_id}`")))
}

/// Marks a key revoked (from now on it authenticates nothing) and records it.
async fn revoke_in<C: sea_orm::ConnectionTrait>(
    txn: &C,
    key: &api_keys::Model,
    now: chrono::DateTime<Utc>,
) -> AppResult<()> {
    if key.revoked_at.is_some() {
        return Err(AppError::Conflict(format!(
            "key `{}` is already revoked",
            key.id
        )));
    }
    use sea_orm::{ColumnTrait, QueryFilter};
    api_keys::Entity::update_many()
        .col_expr(
            api_keys::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(api_keys::Column::Id.eq(key.id.as_str()))
        .exec(txn)
        .await
        .with_context(|| format!("revoke key {}", key.id))?;
    Ok(())
}

/// Revokes one of the tenant's keys and records `KEY_REVOKED` in its ledger, atomically.
pub async fn revoke_key(
    db: &Db,
    tenant_id: &str,
    key_id: &str,
    actor: Option<&Caller>,
) -> AppResult<api_keys::Model> {
    let now = micros(Utc::now());
    let tx = db.begin_write().await?;
    ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let mut key = key_of_tenant(&tx.txn, tenant_id, key_id).await?;
    revoke_in(&tx.txn, &key, now).await?;
    ledger::append(
        &tx.txn,
        tenant_id,
        vec![vocabulary::key_revoked(
            key_id,
            &key.role,
            changed_by(actor),
            now,
        )],
    )
    .await?;
    tx.commit().await?;
    key.revoked_at = Some(now);
    Ok(key)
}

/// Replaces a key: a new key with the same role and label, the old one revoked, and
/// `KEY_ROTATED` recorded, atomically. Returns the new key's text (shown once) and record.
pub async fn rotate_key(
    db: &Db,
    tenant_id: &str,
    key_id: &str,
    actor: Option<&Caller>,
) -> AppResult<(String, api_keys::Model)> {
    let now = micros(Utc::now());
    let id = secret_hex(KEY_ID_HEX / 2)?;
    let secret = secret_hex(32)?;
    let text = format!("rl_{id}_{secret}");
    let tx = db.begin_write().await?;
    ledger::lock_tenant(&tx.txn, tenant_id).await?;
    let old = key_of_tenant(&tx.txn, tenant_id, key_id).await?;
    revoke_in(&tx.txn, &old, now).await?;
    let new = api_keys::Model {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        role: old.role.clone(),
        secret_hash: sha256_hex(text.as_bytes()),
        label: old.label.clone(),
        created_at: now,
        revoked_at: None,
    };
    api_keys::Entity::insert(api_keys::ActiveModel {
        id: Set(new.id.clone()),
        tenant_id: Set(new.tenant_id.clone()),
        role: Set(new.role.clone()),
        secret_hash: Set(new.secret_hash.clone()),
        label: Set(new.label.clone()),
        created_at: Set(now),
        revoked_at: Set(None),
    })
    .exec_without_returning(&tx.txn)
    .await
    .with_context(|| format!("store the key replacing {key_id}"))?;
    ledger::append(
        &tx.txn,
        tenant_id,
        vec![vocabulary::key_rotated(
            key_id,
            &old.role,
            &id,
            changed_by(actor),
            now,
        )],
    )
    .await?;
    tx.commit().await?;
    Ok((text, new))
}

/// The tenant's keys, newest first (never their secrets, which are not stored).
pub async fn list_keys(db: &Db, tenant_id: &str) -> AppResult<Vec<api_keys::Model>> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    api_keys::Entity::find()
        .filter(api_keys::Column::TenantId.eq(tenant_id))
        .order_by_desc(api_keys::Column::CreatedAt)
        .order_by_desc(api_keys::Column::Id)
        .all(&db.conn)
        .await
        .with_context(|| format!("list the keys of tenant {tenant_id}"))
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
        for (role, exports) in [
            (Role::Viewer, false),
            (Role::Auditor, true),
            (Role::Ingest, false),
            (Role::Admin, true),
        ] {
            assert_eq!(
                role_grants(role, Permission::ExportEvidence),
                exports,
                "{role}"
            );
        }
    }
}
