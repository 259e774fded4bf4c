//! The ledger's vocabulary: every event type and entity type runledger itself writes, as enum
//! variants spelt in one place, and one constructor per event, used by the server, the seeder
//! and the tests alike (docs/ledger.md, "Vocabulary", lists them with who writes each and when).
//!
//! Two kinds of entries reach a ledger:
//!
//! - **product-written**: every category but `GOVERNANCE`. Their event type is an [`EventType`],
//!   their entity type an [`EntityType`], and they are built only by the constructors below
//!   ([`tenant_created`], [`permission_decided`], [`evidence_read`], …), so that an entry of a
//!   kind has one shape wherever it is written.
//! - **client-submitted**: the `GOVERNANCE` entries a producer reports through ingest
//!   (`ingestAuditEvents`: a policy rule or a limit changed). Their event and entity types are
//!   the producer's own words (validated as identifiers, not drawn from a list), so they stay
//!   text; [`ProducerEvent`] builds them, always in the `GOVERNANCE` category.
//!
//! Categories are [`LedgerCategory`] (a foundation vocabulary, also a GraphQL enum); each
//! product event type belongs to exactly one ([`EventType::category`]).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::NewEntry;
pub use crate::domain::LedgerCategory;
use crate::domain::{AccessDecision, ActorType, Role};

/// Declares a closed, stored vocabulary: `as_str`, `parse` and `ALL` in one place.
macro_rules! stored_vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_vocabulary! {
    /// The event types runledger writes (client-submitted `GOVERNANCE` entries bring their own).
    EventType {
        /// A tenant was created (`runledger tenants create`, the seeder).
        TenantCreated = "TENANT_CREATED",
        /// An API key was issued (`keys create`, the `createApiKey` mutation).
        KeyCreated = "KEY_CREATED",
        /// An API key was replaced by a new one with the same role and label.
        KeyRotated = "KEY_ROTATED",
        /// An API key was revoked.
        KeyRevoked = "KEY_REVOKED",
        /// A presented key was refused (malformed, unknown, wrong secret, revoked).
        AuthenticationFailed = "AUTHENTICATION_FAILED",
        /// The checkpoint signing key was replaced (platform ledger).
        SigningKeyRotated = "SIGNING_KEY_ROTATED",
        /// A tenant's settings changed (content capture of spans).
        TenantSettingsChanged = "TENANT_SETTINGS_CHANGED",
        /// A request's permission check allowed it.
        PermissionGranted = "PERMISSION_GRANTED",
        /// A request's permission check refused it.
        PermissionDenied = "PERMISSION_DENIED",
        /// A request returned evidence.
        EvidenceRead = "EVIDENCE_READ",
        /// A live subscription began: who, what, with which filter and from which cursor.
        SubscriptionStarted = "SUBSCRIPTION_STARTED",
        /// A live subscription ended: why, and how many events it delivered.
        SubscriptionEnded = "SUBSCRIPTION_ENDED",
        /// A compliance export was requested.
        ExportRequested = "EXPORT_REQUESTED",
        /// A compliance export was delivered, with its checksum.
        ExportCompleted = "EXPORT_COMPLETED",
        /// A compliance export failed.
        ExportFailed = "EXPORT_FAILED",
        /// A verification of the ledger completed.
        LedgerVerified = "LEDGER_VERIFIED",
        /// A batch of evidence records was committed to by its Merkle root.
        EvidenceBatchAnchored = "EVIDENCE_BATCH_ANCHORED",
    }
}

impl EventType {
    /// The category every entry of this type is filed under.
    pub const fn category(self) -> LedgerCategory {
        match self {
            EventType::TenantCreated
            | EventType::KeyCreated
            | EventType::KeyRotated
            | EventType::KeyRevoked
            | EventType::AuthenticationFailed
            | EventType::SigningKeyRotated
            | EventType::TenantSettingsChanged => LedgerCategory::Identity,
            EventType::PermissionGranted | EventType::PermissionDenied => {
                LedgerCategory::Authorization
            }
            EventType::EvidenceRead
            | EventType::SubscriptionStarted
            | EventType::SubscriptionEnded => LedgerCategory::Access,
            EventType::ExportRequested | EventType::ExportCompleted | EventType::ExportFailed => {
                LedgerCategory::Export
            }
            EventType::LedgerVerified => LedgerCategory::Integrity,
            EventType::EvidenceBatchAnchored => LedgerCategory::Anchor,
        }
    }
}

stored_vocabulary! {
    /// What a product-written entry is about.
    EntityType {
        /// A tenant (`TENANT_CREATED`).
        Tenant = "tenant",
        /// An API key (key lifecycle, failed authentication).
        ApiKey = "api_key",
        /// A checkpoint signing key (`SIGNING_KEY_ROTATED`).
        SigningKey = "signing_key",
        /// A permission (`read:evidence`, …) that was checked.
        Permission = "permission",
        /// A compliance export record (`EXPORT_*`).
        LogExport = "log_export",
        /// A tenant's ledger as a whole: verified, or read (integrity, proofs).
        AuditLedger = "audit_ledger",
        /// A batch of evidence records (`EVIDENCE_BATCH_ANCHORED`).
        EvidenceBatch = "evidence_batch",
        // What an `EVIDENCE_READ` entry says was read.
        /// One LLM run (any of its views).
        LlmRun = "llm_run",
        /// A filtered list of runs.
        LlmRunList = "llm_run_list",
        /// One session (conversation) with its runs.
        LlmSession = "llm_session",
        /// The list of traces without a run record.
        OpenTraceList = "open_trace_list",
        /// One trace step (by node id).
        TraceStep = "trace_step",
        /// One governance event (by node id).
        GovernanceEvent = "governance_event",
        /// One system record of the tenant.
        SystemRecord = "system_record",
        /// One global system record.
        GlobalSystemRecord = "global_system_record",
        /// A filtered list of system records.
        SystemRecordList = "system_record_list",
        /// One ledger entry.
        AuditEntry = "audit_entry",
        /// A filtered list of ledger entries.
        AuditEntryList = "audit_entry_list",
        /// One export record (by node id).
        Export = "export",
        /// The list of export records.
        ExportList = "export_list",
        /// Aggregates of runs (`llmRunStats`).
        LlmRunStats = "llm_run_stats",
        /// Aggregates of system records (`systemRecordStats`).
        SystemRecordStats = "system_record_stats",
        /// Aggregates of ledger entries (`auditStats`).
        AuditStats = "audit_stats",
        /// A live subscription (`SUBSCRIPTION_*`; its deliveries are `EVIDENCE_READ` entries
        /// whose filters name it).
        Subscription = "subscription",
    }
}

stored_vocabulary! {
    /// Why a presented key was refused (`AUTHENTICATION_FAILED`'s `action_reason`).
    AuthFailureReason {
        /// Not of the shape `rl_<12 hex>_<64 hex>`.
        MalformedKey = "malformed key",
        /// No key has this id.
        UnknownKeyId = "unknown key id",
        /// The key exists; the secret does not match.
        WrongSecret = "wrong secret",
        /// The key was revoked.
        RevokedKey = "revoked key",
    }
}

/// `actor_id` of what the command line does.
pub const CLI_ACTOR: &str = "runledger-cli";
/// `actor_id` of what the server does on its own (tenant creation).
pub const SERVER_ACTOR: &str = "runledger";
/// `actor_id` of the ingest path's anchors.
pub const INGEST_ACTOR: &str = "runledger-ingest";
/// `actor_id` of the export path's outcomes.
pub const EXPORT_ACTOR: &str = "runledger-export";

/// The `actor_id` of a request made with API key `key_id`.
pub fn key_actor(key_id: &str) -> String {
    format!("key:{key_id}")
}

/// A product-written entry with no optional field set.
fn product(
    event_type: EventType,
    entity_type: EntityType,
    entity_id: impl Into<String>,
    actor_type: ActorType,
    actor_id: Option<String>,
    occurred_at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        id: None,
        category: event_type.category(),
        event_type: event_type.as_str().to_string(),
        entity_type: entity_type.as_str().to_string(),
        entity_id: entity_id.into(),
        actor_type,
        actor_id,
        action_reason: None,
        decision: None,
        before_state: None,
        after_state: None,
        correlation_id: None,
        occurred_at,
    }
}

// -- identity -----------------------------------------------------------------------------------

/// `TENANT_CREATED`: the tenant, its name and compliance frameworks.
pub fn tenant_created(
    tenant_id: &str,
    name: &str,
    compliance_frameworks: &[&str],
    at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        after_state: Some(json!({"name": name, "compliance_frameworks": compliance_frameworks})),
        ..product(
            EventType::TenantCreated,
            EntityType::Tenant,
            tenant_id,
            ActorType::System,
            Some(SERVER_ACTOR.into()),
            at,
        )
    }
}

/// `TENANT_SETTINGS_CHANGED`: the tenant's settings before and after, changed by an admin key.
pub fn tenant_settings_changed(
    tenant_id: &str,
    before: Value,
    after: Value,
    admin_key_id: &str,
    at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        before_state: Some(before),
        after_state: Some(after),
        ..product(
            EventType::TenantSettingsChanged,
            EntityType::Tenant,
            tenant_id,
            ActorType::Human,
            Some(key_actor(admin_key_id)),
            at,
        )
    }
}

/// Who changed a key: an admin key through the API, or the command line.
#[derive(Clone, Copy, Debug)]
pub enum KeyChangedBy<'a> {
    /// The admin key with this id.
    AdminKey(&'a str),
    /// `runledger keys …`.
    Cli,
}

impl KeyChangedBy<'_> {
    fn actor(self) -> (ActorType, Option<String>) {
        match self {
            KeyChangedBy::AdminKey(id) => (ActorType::Human, Some(key_actor(id))),
            KeyChangedBy::Cli => (ActorType::System, Some(CLI_ACTOR.to_string())),
        }
    }
}

fn key_change(
    event_type: EventType,
    key_id: &str,
    by: KeyChangedBy<'_>,
    after_state: Value,
    at: DateTime<Utc>,
) -> NewEntry {
    let (actor_type, actor_id) = by.actor();
    NewEntry {
        after_state: Some(after_state),
        ..product(
            event_type,
            EntityType::ApiKey,
            key_id,
            actor_type,
            actor_id,
            at,
        )
    }
}

/// `KEY_CREATED`: the new key's id, role and label.
pub fn key_created(
    key_id: &str,
    role: Role,
    label: Option<&str>,
    by: KeyChangedBy<'_>,
    at: DateTime<Utc>,
) -> NewEntry {
    let after = json!({"role": role.as_str(), "label": label});
    key_change(EventType::KeyCreated, key_id, by, after, at)
}

/// `KEY_ROTATED`: the replaced key (its stored role) and the key replacing it.
pub fn key_rotated(
    key_id: &str,
    role: &str,
    replaced_by: &str,
    by: KeyChangedBy<'_>,
    at: DateTime<Utc>,
) -> NewEntry {
    let after = json!({"role": role, "replaced_by": replaced_by});
    key_change(EventType::KeyRotated, key_id, by, after, at)
}

/// `KEY_REVOKED`: the revoked key and its stored role.
pub fn key_revoked(key_id: &str, role: &str, by: KeyChangedBy<'_>, at: DateTime<Utc>) -> NewEntry {
    key_change(EventType::KeyRevoked, key_id, by, json!({"role": role}), at)
}

/// `AUTHENTICATION_FAILED`: the key id presented (`unknown` when the key was malformed), why it
/// was refused, a DENY.
pub fn authentication_failed(
    key_id: Option<&str>,
    reason: AuthFailureReason,
    at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        action_reason: Some(reason.as_str().to_string()),
        decision: Some(AccessDecision::Deny),
        ..product(
            EventType::AuthenticationFailed,
            EntityType::ApiKey,
            key_id.unwrap_or("unknown"),
            ActorType::System,
            key_id.map(key_actor),
            at,
        )
    }
}

/// `SIGNING_KEY_ROTATED` (platform ledger): the new key's id, both verifier keys and the old
/// key's signed statement of what it covers.
pub fn signing_key_rotated(
    new_key_id: &str,
    old_verifier_key: &str,
    new_verifier_key: &str,
    statement: &str,
    at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        before_state: Some(json!({"verifier_key": old_verifier_key})),
        after_state: Some(json!({"verifier_key": new_verifier_key, "statement": statement})),
        ..product(
            EventType::SigningKeyRotated,
            EntityType::SigningKey,
            new_key_id,
            ActorType::System,
            Some(CLI_ACTOR.into()),
            at,
        )
    }
}

// -- authorization and access -------------------------------------------------------------------

/// One permission decision of a request.
#[derive(Clone, Debug)]
pub struct PermissionDecision<'a> {
    /// The caller's key id.
    pub key_id: &'a str,
    pub role: Role,
    /// E.g. `read:evidence`.
    pub permission: &'a str,
    pub allowed: bool,
    /// `role VIEWER grants read:evidence`, `role VIEWER does not grant read:audit`.
    pub reason: String,
    /// The GraphQL operation name, `(anonymous)` when it has none.
    pub operation: &'a str,
    /// How often the request checked this permission with this outcome.
    pub checks: u32,
}

/// `PERMISSION_GRANTED` or `PERMISSION_DENIED`: a request's decision on one permission.
pub fn permission_decided(d: PermissionDecision<'_>, at: DateTime<Utc>) -> NewEntry {
    let (event_type, decision) = if d.allowed {
        (EventType::PermissionGranted, AccessDecision::Allow)
    } else {
        (EventType::PermissionDenied, AccessDecision::Deny)
    };
    NewEntry {
        action_reason: Some(d.reason),
        decision: Some(decision),
        after_state: Some(json!({
            "role": d.role.as_str(),
            "permission": d.permission,
            "operation": d.operation,
            "checks": d.checks,
        })),
        ..product(
            event_type,
            EntityType::Permission,
            d.permission,
            ActorType::System,
            Some(key_actor(d.key_id)),
            at,
        )
    }
}

/// What one `EVIDENCE_READ` entry says was returned.
#[derive(Clone, Debug)]
pub struct EvidenceRead<'a> {
    /// The caller's key id.
    pub key_id: &'a str,
    /// The GraphQL operation name, `(anonymous)` when it has none.
    pub operation: &'a str,
    /// `runs`, `system`, `audit`.
    pub topic: &'a str,
    pub entity_type: EntityType,
    /// The entity, or the list's field for a list.
    pub entity_id: String,
    /// The views read of it (`run`, `trace`, … or the list's field).
    pub views: Vec<&'a str>,
    /// A list's filters; `None` for one entity.
    pub filters: Option<Value>,
    /// Rows returned.
    pub rows: usize,
    /// Ids of the rows returned (at most a thousand).
    pub ids: Vec<String>,
}

/// `EVIDENCE_READ`: which evidence a request returned to whom.
pub fn evidence_read(r: EvidenceRead<'_>, at: DateTime<Utc>) -> NewEntry {
    NewEntry {
        action_reason: Some(r.operation.to_string()),
        after_state: Some(json!({
            "topic": r.topic,
            "operation": r.operation,
            "views": r.views,
            "filters": r.filters,
            "rows": r.rows,
            "ids": r.ids,
        })),
        ..product(
            EventType::EvidenceRead,
            r.entity_type,
            r.entity_id,
            ActorType::System,
            Some(key_actor(r.key_id)),
            at,
        )
    }
}

/// What a `SUBSCRIPTION_STARTED` or `SUBSCRIPTION_ENDED` entry says.
#[derive(Clone, Debug)]
pub struct SubscriptionRecord<'a> {
    /// The subscription's id (`sb_…`), which its delivery entries name in their filters.
    pub subscription_id: &'a str,
    /// The caller's key id.
    pub key_id: &'a str,
    /// The GraphQL operation name, `(anonymous)` when it has none.
    pub operation: &'a str,
    /// The subscription field, e.g. `llmRunAdded`.
    pub field: &'a str,
    /// Its arguments (filter, cursor) as the client gave them.
    pub arguments: Value,
    /// Ended only: why (`complete`, `client`, `revoked`, `slow consumer`, `shutdown`, `error`).
    pub reason: Option<&'a str>,
    /// Ended only: events delivered over its life.
    pub delivered: Option<u64>,
}

/// `SUBSCRIPTION_STARTED` / `SUBSCRIPTION_ENDED`: a live subscription's bounds.
pub fn subscription(started: bool, r: SubscriptionRecord<'_>, at: DateTime<Utc>) -> NewEntry {
    let mut state = json!({
        "operation": r.operation,
        "field": r.field,
        "arguments": r.arguments,
    });
    if let Some(m) = state.as_object_mut() {
        if let Some(reason) = r.reason {
            m.insert("reason".into(), json!(reason));
        }
        if let Some(delivered) = r.delivered {
            m.insert("delivered".into(), json!(delivered));
        }
    }
    NewEntry {
        action_reason: Some(r.operation.to_string()),
        after_state: Some(state),
        ..product(
            if started {
                EventType::SubscriptionStarted
            } else {
                EventType::SubscriptionEnded
            },
            EntityType::Subscription,
            r.subscription_id,
            ActorType::System,
            Some(key_actor(r.key_id)),
            at,
        )
    }
}

// -- exports ------------------------------------------------------------------------------------

/// `EXPORT_REQUESTED`: the export's scope and format, PENDING, and the scope's filter as
/// requested (`spec`, docs/exports.md); the actor is who asked.
pub fn export_requested(
    export_id: &str,
    requested_by: &str,
    scope: &str,
    format: &str,
    run_id: Option<&str>,
    spec: Option<Value>,
    at: DateTime<Utc>,
) -> NewEntry {
    let mut state = json!({"scope": scope, "format": format, "status": "PENDING"});
    if let (Some(spec), Some(m)) = (spec, state.as_object_mut()) {
        m.insert("spec".into(), spec);
    }
    NewEntry {
        after_state: Some(state),
        correlation_id: run_id.map(str::to_string),
        ..product(
            EventType::ExportRequested,
            EntityType::LogExport,
            export_id,
            ActorType::Human,
            Some(requested_by.to_string()),
            at,
        )
    }
}

/// What a completed export holds, beside its checksum (absent for the seeder's run bundles).
#[derive(Clone, Copy, Debug)]
pub struct ExportContents {
    pub records: u64,
    pub size_bytes: u64,
    /// Tree size of the checkpoint the bundle is pinned to.
    pub checkpoint_size: u64,
}

/// `EXPORT_COMPLETED`: the delivered file's checksum (and, for a built export, its record
/// count, size and pinned checkpoint); `at` is the delivery time.
pub fn export_completed(
    export_id: &str,
    run_id: Option<&str>,
    checksum: &str,
    contents: Option<ExportContents>,
    at: DateTime<Utc>,
) -> NewEntry {
    let mut state = json!({"status": "COMPLETED", "checksum": checksum});
    if let (Some(c), Some(m)) = (contents, state.as_object_mut()) {
        m.insert("records".into(), json!(c.records));
        m.insert("size_bytes".into(), json!(c.size_bytes));
        m.insert("checkpoint_size".into(), json!(c.checkpoint_size));
    }
    NewEntry {
        after_state: Some(state),
        correlation_id: run_id.map(str::to_string),
        ..product(
            EventType::ExportCompleted,
            EntityType::LogExport,
            export_id,
            ActorType::System,
            Some(EXPORT_ACTOR.into()),
            at,
        )
    }
}

/// `EXPORT_FAILED`, with why when known.
pub fn export_failed(
    export_id: &str,
    run_id: Option<&str>,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        action_reason: reason.map(str::to_string),
        after_state: Some(json!({"status": "FAILED"})),
        correlation_id: run_id.map(str::to_string),
        ..product(
            EventType::ExportFailed,
            EntityType::LogExport,
            export_id,
            ActorType::System,
            Some(EXPORT_ACTOR.into()),
            at,
        )
    }
}

// -- integrity and anchors ----------------------------------------------------------------------

/// `LEDGER_VERIFIED`: a completed verification of `tenant_id`'s ledger, who asked (a key actor,
/// the background verifier, the command line) and its summary.
pub fn ledger_verified(
    tenant_id: &str,
    actor_id: Option<String>,
    reason: String,
    summary: Value,
    at: DateTime<Utc>,
) -> NewEntry {
    NewEntry {
        action_reason: Some(reason),
        after_state: Some(summary),
        ..product(
            EventType::LedgerVerified,
            EntityType::AuditLedger,
            tenant_id,
            ActorType::System,
            actor_id,
            at,
        )
    }
}

/// `EVIDENCE_BATCH_ANCHORED`: the anchor id the batch's records point at, and its commitment
/// (Merkle root, leaf counts).
pub fn batch_anchored(anchor_id: String, commitment: Value, at: DateTime<Utc>) -> NewEntry {
    NewEntry {
        after_state: Some(commitment),
        ..product(
            EventType::EvidenceBatchAnchored,
            EntityType::EvidenceBatch,
            anchor_id,
            ActorType::System,
            Some(INGEST_ACTOR.into()),
            at,
        )
    }
}

// -- client-submitted ---------------------------------------------------------------------------

/// A change a producer reports (`ingestAuditEvents`), validated: always a `GOVERNANCE` entry,
/// its event and entity types the producer's own.
#[derive(Clone, Debug)]
pub struct ProducerEvent {
    /// The entry id derived from the tenant and the producer's event id (a re-send is the
    /// same entry).
    pub entry_id: String,
    /// E.g. `POLICY_RULE_CHANGED`, `LIMIT_CHANGED`.
    pub event_type: String,
    /// E.g. `policy`, `rule`, `limit`.
    pub entity_type: String,
    pub entity_id: String,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub action_reason: Option<String>,
    pub before_state: Option<Value>,
    pub after_state: Option<Value>,
    pub correlation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl ProducerEvent {
    /// The `GOVERNANCE` entry of the event.
    pub fn into_entry(self) -> NewEntry {
        NewEntry {
            id: Some(self.entry_id),
            category: LedgerCategory::Governance,
            event_type: self.event_type,
            entity_type: self.entity_type,
            entity_id: self.entity_id,
            actor_type: self.actor_type,
            actor_id: self.actor_id,
            action_reason: self.action_reason,
            decision: None,
            before_state: self.before_state,
            after_state: self.after_state,
            correlation_id: self.correlation_id,
            occurred_at: self.occurred_at,
        }
    }
}

/// The ledger id of a producer event: `le_` and 32 hex characters of
/// SHA-256(tenant ‖ 0x1f ‖ event id).
pub fn producer_entry_id(tenant_id: &str, event_id: &str) -> String {
    let digest = crate::canonical::sha256_hex(format!("{tenant_id}\u{1f}{event_id}").as_bytes());
    format!("le_{}", &digest[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_are_unique() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(*e));
        }
        for e in EntityType::ALL {
            assert_eq!(EntityType::parse(e.as_str()), Some(*e));
        }
        for r in AuthFailureReason::ALL {
            assert_eq!(AuthFailureReason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(EventType::parse("ACCESS_DECISION"), None);
    }

    #[test]
    fn no_product_event_is_filed_under_governance() {
        // GOVERNANCE is the producers' category; the product never writes it.
        assert!(
            EventType::ALL
                .iter()
                .all(|e| e.category() != LedgerCategory::Governance)
        );
    }

    #[test]
    fn constructors_file_each_event_under_its_category() {
        let at = Utc::now();
        let e = permission_decided(
            PermissionDecision {
                key_id: "k",
                role: Role::Viewer,
                permission: "read:audit",
                allowed: false,
                reason: "role VIEWER does not grant read:audit".into(),
                operation: "(anonymous)",
                checks: 1,
            },
            at,
        );
        assert_eq!(e.category, LedgerCategory::Authorization);
        assert_eq!(e.event_type, "PERMISSION_DENIED");
        assert_eq!(e.entity_type, "permission");
        assert_eq!(e.entity_id, "read:audit");
        assert_eq!(e.actor_id.as_deref(), Some("key:k"));
        assert_eq!(e.decision, Some(AccessDecision::Deny));
        let f = authentication_failed(None, AuthFailureReason::MalformedKey, at);
        assert_eq!(
            (f.entity_id.as_str(), f.actor_id),
            ("unknown", None::<String>)
        );
    }
}
