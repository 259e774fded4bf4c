//! The seeded audit trail: what a tenant's ledger holds after a week of real use — keys set up
//! and rotated, requests with their permission decisions and the evidence they read, refused
//! keys, and the policy changes producers report. Every entry is built by the ledger's
//! own constructors ([`crate::ledger::vocabulary`]) with the values the server would give it
//! (a request's actor is its key, its reason the permission check's), so a seeded ledger holds
//! only entries the product writes. (Entry ids of product entries, hashes and `recorded_at`
//! are the appender's; producer entries carry their event's id as ingest derives it.)

use super::*;
use crate::auth::{Permission, decision_reason};
use crate::ledger::vocabulary::{
    self, AuthFailureReason, EntityType, EvidenceRead, KeyChangedBy, PermissionDecision,
    ProducerEvent, producer_entry_id,
};

/// One piece of evidence a seeded request returns.
pub(super) struct SeededRead {
    topic: &'static str,
    entity_type: EntityType,
    entity_id: String,
    view: &'static str,
    /// A list's filters (as the API echoes them) and row ids; `None` for one entity.
    list: Option<(Value, Vec<String>)>,
}

impl SeededRead {
    fn of_run(topic: &'static str, run_id: &str, view: &'static str) -> Self {
        SeededRead {
            topic,
            entity_type: EntityType::LlmRun,
            entity_id: run_id.to_string(),
            view,
            list: None,
        }
    }

    fn list(
        topic: &'static str,
        entity_type: EntityType,
        field: &'static str,
        ids: Vec<String>,
    ) -> Self {
        SeededRead {
            topic,
            entity_type,
            entity_id: field.to_string(),
            view: field,
            list: Some((json!({}), ids)),
        }
    }
}

/// The views of one run a viewer or auditor opens: (GraphQL operation, topic, view).
const RUN_VIEWS: [(&str, &str, &str); 5] = [
    ("RunEnvelope", "runs", "envelope"),
    ("RunTrace", "runs", "trace"),
    ("RunGovernance", "runs", "governance"),
    ("RunReplay", "runs", "replay"),
    ("RunSystemEvents", "system", "system.events"),
];

/// Occasional requests around a run: (role, permission, operation, what an allowed one reads).
#[derive(Clone, Copy, Debug)]
enum Occasional {
    RunList,
    SystemRecordList,
    AuditEntryList,
    /// `{ audit { integrity } }`: refused to a viewer (an allowed one would verify the ledger).
    Integrity,
}

impl TenantGenerator {
    /// A request made with `role`'s key: its permission decision and, when allowed, the
    /// evidence it returned — the entries the server writes for such a request.
    fn request(
        &self,
        role: Role,
        permission: Permission,
        operation: &str,
        read: Option<SeededRead>,
        occurred_us: i64,
    ) -> Vec<NewEntry> {
        let key_id = self.keys.of(role);
        let allowed = auth::role_grants(role, permission);
        let at = ts(occurred_us);
        let decision = PermissionDecision {
            key_id,
            role,
            permission: permission.as_str(),
            allowed,
            reason: decision_reason(role, permission, allowed),
            operation,
            checks: 1,
        };
        let mut out = vec![vocabulary::permission_decided(decision, at)];
        if let (true, Some(r)) = (allowed, read) {
            let (filters, ids) = match r.list {
                Some((filters, ids)) => (Some(filters), ids),
                None => (None, vec![r.entity_id.clone()]),
            };
            let read = EvidenceRead {
                key_id,
                operation,
                topic: r.topic,
                entity_type: r.entity_type,
                entity_id: r.entity_id,
                views: vec![r.view],
                filters,
                rows: ids.len(),
                ids,
            };
            out.push(vocabulary::evidence_read(read, at));
        }
        out
    }

    /// An occasional request by `role` (allowed or refused as the role matrix says).
    fn occasional(
        &self,
        role: Role,
        what: Occasional,
        runs_listed: Vec<String>,
        occurred_us: i64,
    ) -> Vec<NewEntry> {
        let (permission, operation, read) = match what {
            Occasional::RunList => (
                Permission::ReadEvidence,
                "Runs",
                Some(SeededRead::list(
                    "runs",
                    EntityType::LlmRunList,
                    "llmRuns",
                    runs_listed,
                )),
            ),
            Occasional::SystemRecordList => (
                Permission::ReadEvidence,
                "SystemRecords",
                Some(SeededRead::list(
                    "system",
                    EntityType::SystemRecordList,
                    "systemRecords",
                    Vec::new(),
                )),
            ),
            Occasional::AuditEntryList => (
                Permission::ReadAudit,
                "AuditEntries",
                Some(SeededRead::list(
                    "audit",
                    EntityType::AuditEntryList,
                    "auditEntries",
                    Vec::new(),
                )),
            ),
            Occasional::Integrity => (Permission::ReadAudit, "Integrity", None),
        };
        self.request(role, permission, operation, read, occurred_us)
    }

    /// The ledger around a run: its views, occasional other requests, refused keys, key
    /// rotations and policy changes, in proportion to the number of runs.
    pub(super) fn run_ledger_entries(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        ledger: &mut Vec<NewEntry>,
    ) {
        let latest_us = ANCHOR_US - SECOND;
        let in_slot = |rng: &mut Prng| ctx.slot_start_us + rng.range(0, ctx.slot_len_us);

        // Each view is a request that reads the run: failed runs are looked at more often.
        let views = if ctx.status == RunStatus::Succeeded {
            rng.range(1, 3)
        } else {
            rng.range(2, 5)
        };
        for _ in 0..views {
            let occurred_us = (ctx.completed_us + rng.range(MINUTE, 6 * HOUR)).min(latest_us);
            let (operation, topic, view) = *rng.pick(&RUN_VIEWS);
            let role = if rng.chance(0.7) {
                Role::Viewer
            } else {
                Role::Auditor
            };
            let read = SeededRead::of_run(topic, &ctx.run_id, view);
            ledger.extend(self.request(
                role,
                Permission::ReadEvidence,
                operation,
                Some(read),
                occurred_us,
            ));
        }
        if rng.chance(0.05) {
            let (role, what) = rng.weighted(&[
                ((Role::Viewer, Occasional::RunList), 30),
                ((Role::Viewer, Occasional::SystemRecordList), 15),
                ((Role::Auditor, Occasional::SystemRecordList), 15),
                ((Role::Auditor, Occasional::AuditEntryList), 15),
                ((Role::Viewer, Occasional::Integrity), 12),
                ((Role::Viewer, Occasional::AuditEntryList), 8),
                ((Role::Ingest, Occasional::RunList), 5),
            ]);
            let occurred_us = in_slot(rng);
            ledger.extend(self.occasional(role, what, vec![ctx.run_id.clone()], occurred_us));
        }
        if rng.chance(0.03) {
            let occurred_us = in_slot(rng);
            let failure = self.failed_authentication(rng, occurred_us);
            ledger.push(failure);
        }
        if rng.chance(0.003) {
            let role = *rng.pick(&[Role::Viewer, Role::Auditor, Role::Ingest]);
            let new_key = rng.hex(12);
            let occurred_us = in_slot(rng);
            ledger.push(self.key_rotation(role, self.keys.of(role), &new_key, occurred_us));
        }
        if rng.chance(0.008) {
            let occurred_us = in_slot(rng);
            let change = *rng.pick(&POLICY_CHANGES);
            let event_id = format!("chg_{}", rng.hex(16));
            ledger.push(self.policy_change(change, &event_id, occurred_us));
        }
    }

    /// A key of the tenant presented with a wrong secret, or the viewer key it rotated away.
    fn failed_authentication(&self, rng: &mut Prng, occurred_us: i64) -> NewEntry {
        let (key, reason) = if rng.chance(0.4) {
            (self.keys.viewer.as_str(), AuthFailureReason::RevokedKey)
        } else {
            let key = self
                .keys
                .of(*rng.pick(&[Role::Viewer, Role::Auditor, Role::Ingest]));
            (key, AuthFailureReason::WrongSecret)
        };
        vocabulary::authentication_failed(Some(key), reason, ts(occurred_us))
    }

    /// A rotation by the admin key: the old key replaced by `new` (and revoked with it).
    fn key_rotation(&self, role: Role, old: &str, new: &str, occurred_us: i64) -> NewEntry {
        let by = KeyChangedBy::AdminKey(&self.keys.admin);
        vocabulary::key_rotated(old, role.as_str(), new, by, ts(occurred_us))
    }

    /// A policy change a producer reports (`ingestAuditEvents`), with its event id.
    fn policy_change(&self, change: PolicyChange, event_id: &str, occurred_us: i64) -> NewEntry {
        let (policy_id, rule_id, field, before, after, reason) = change;
        ProducerEvent {
            entry_id: producer_entry_id(&self.tenant_id, event_id),
            event_type: "POLICY_RULE_CHANGED".to_string(),
            entity_type: "policy".to_string(),
            entity_id: policy_id.to_string(),
            actor_type: ActorType::Human,
            actor_id: Some(self.admin().to_string()),
            action_reason: Some(reason.to_string()),
            before_state: Some(json!({"rule_id": rule_id, field: before})),
            after_state: Some(json!({"rule_id": rule_id, field: after})),
            correlation_id: None,
            occurred_at: ts(occurred_us),
        }
        .into_entry()
    }

    /// The tenant's first hour: the bootstrap admin key from the command line, the other keys
    /// from it, a policy tuned, a refused and an allowed audit request, a refused key and a
    /// key rotation, so that every audit view has something to show even for tiny seeds.
    pub(super) fn setup_entries(&self) -> Vec<NewEntry> {
        let at = |minutes: i64| PERIOD_START_US + minutes * MINUTE;
        let admin = KeyChangedBy::AdminKey(&self.keys.admin);
        let key_created = |role: Role, key: &str, label: &str, by, minutes: i64| {
            vocabulary::key_created(key, role, Some(label), by, ts(at(minutes)))
        };
        let mut rng = Prng::derive(self.stream, &[STREAM_TENANT, 1]);
        let mut entries = vec![
            key_created(
                Role::Admin,
                &self.keys.admin,
                "bootstrap",
                KeyChangedBy::Cli,
                0,
            ),
            key_created(Role::Viewer, &self.keys.viewer, "dashboard", admin, 2),
            key_created(
                Role::Auditor,
                &self.keys.auditor,
                "compliance-team",
                admin,
                3,
            ),
            key_created(Role::Ingest, &self.keys.ingest, "agent-runtime", admin, 4),
            self.policy_change(POLICY_CHANGES[0], "chg_setup", at(10)),
        ];
        let integrity = Occasional::Integrity;
        let audit_list = Occasional::AuditEntryList;
        entries.extend(self.occasional(Role::Viewer, integrity, Vec::new(), at(20)));
        entries.extend(self.occasional(Role::Auditor, audit_list, Vec::new(), at(21)));
        entries.push(self.failed_authentication(&mut rng, at(30)));
        entries.push(self.key_rotation(
            Role::Viewer,
            &self.keys.viewer,
            &self.keys.viewer_rotated,
            at(40),
        ));
        entries
    }
}

/// (policy, rule, field, before, after, reason)
pub(super) type PolicyChange = (
    &'static str,
    &'static str,
    &'static str,
    PolicyValue,
    PolicyValue,
    &'static str,
);

#[derive(Clone, Copy, Debug)]
pub(super) enum PolicyValue {
    Number(f64),
    Text(&'static str),
    List(&'static [&'static str]),
}

impl serde::Serialize for PolicyValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PolicyValue::Number(n) if n.fract() == 0.0 => s.serialize_i64(*n as i64),
            PolicyValue::Number(n) => s.serialize_f64(*n),
            PolicyValue::Text(t) => s.serialize_str(t),
            PolicyValue::List(items) => serde::Serialize::serialize(items, s),
        }
    }
}

pub(super) const POLICY_CHANGES: [PolicyChange; 4] = [
    (
        "pol-cost-ceiling",
        "daily-tenant-ceiling",
        "limit_usd",
        PolicyValue::Number(500.0),
        PolicyValue::Number(800.0),
        "raised after the Q4 budget review",
    ),
    (
        "pol-pii-redaction",
        "pii-email",
        "action",
        PolicyValue::Text("MASK"),
        PolicyValue::Text("REDACT"),
        "DPO request: remove addresses instead of masking them",
    ),
    (
        "pol-tool-allowlist",
        "allowlist-v3",
        "tools",
        PolicyValue::List(&["tool:web_search"]),
        PolicyValue::List(&["tool:sql_query", "tool:web_search"]),
        "read-only analytics database approved for agents",
    ),
    (
        "pol-prompt-injection",
        "classifier-threshold",
        "threshold",
        PolicyValue::Number(0.85),
        PolicyValue::Number(0.8),
        "tightened after a red-team exercise",
    ),
];
