//! What a request must leave in the tenant's ledger: every authorization decision the facade
//! took (allowed and denied, with role, permission and reason) and which evidence it returned
//! to whom (topic, the run, entry or list with its filters, the rows, the operation). Collected
//! while the request runs; written through the group-commit appender before the response
//! leaves (`http::run_one`), so no evidence is sent before its access record is durable.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::Utc;
use serde_json::Value;

use super::Facade;
use crate::auth::{self, Caller, Permission};
use crate::canonical::micros;
use crate::error::{AppError, AppResult};
use crate::ledger::NewEntry;
use crate::ledger::appender::Appender;
use crate::ledger::vocabulary::{self, EntityType, EvidenceRead, PermissionDecision};
use crate::locked;

/// Most ids an access entry lists (a page holds at most 100; aliased pages of one list with the
/// same filters share an entry).
const MAX_IDS: usize = 1000;

/// One piece of evidence returned.
#[derive(Clone, Debug)]
struct Read {
    topic: &'static str,
    entity_type: EntityType,
    entity_id: String,
    view: &'static str,
    filters: Option<Value>,
    ids: Vec<String>,
}

/// Decisions by (permission, allowed): the reason and how often it was taken.
type Decisions = BTreeMap<(&'static str, bool), (String, u32)>;

/// The decisions and reads of one request.
#[derive(Debug, Default)]
pub struct RequestRecord {
    operation: Mutex<Option<String>>,
    /// (permission, allowed) → reason, how often.
    decisions: Mutex<Decisions>,
    reads: Mutex<Vec<Read>>,
    /// Entries written as given, after the decisions and before the reads (a subscription's
    /// start and end).
    entries: Mutex<Vec<NewEntry>>,
}

impl RequestRecord {
    fn decision(&self, permission: Permission, allowed: bool, reason: String) {
        let mut d = locked(&self.decisions);
        d.entry((permission.as_str(), allowed))
            .or_insert((reason, 0))
            .1 += 1;
    }

    fn read(
        &self,
        topic: &'static str,
        entity_type: EntityType,
        entity_id: String,
        view: &'static str,
        filters: Option<Value>,
        ids: Vec<String>,
    ) {
        locked(&self.reads).push(Read {
            topic,
            entity_type,
            entity_id,
            view,
            filters,
            ids,
        });
    }

    /// The ledger entries this request owes, for `caller`: its permission decisions, then
    /// the evidence it returned.
    fn entries(&self, caller: &Caller) -> Vec<NewEntry> {
        let now = micros(Utc::now());
        let operation = locked(&self.operation)
            .clone()
            .unwrap_or_else(|| "(anonymous)".into());
        let mut out = Vec::new();
        for ((permission, allowed), (reason, checks)) in locked(&self.decisions).iter() {
            let decision = PermissionDecision {
                key_id: &caller.key_id,
                role: caller.role,
                permission,
                allowed: *allowed,
                reason: reason.clone(),
                operation: &operation,
                checks: *checks,
            };
            out.push(vocabulary::permission_decided(decision, now));
        }
        out.append(&mut locked(&self.entries).clone());
        for read in group_reads(locked(&self.reads).clone()) {
            let read = EvidenceRead {
                key_id: &caller.key_id,
                operation: &operation,
                topic: read.topic,
                entity_type: read.entity_type,
                entity_id: read.entity_id,
                views: read.views,
                filters: read.filters,
                rows: read.rows,
                ids: read.ids,
            };
            out.push(vocabulary::evidence_read(read, now));
        }
        out
    }
}

/// One access entry: an entity (or a list) and everything read of it.
struct GroupedRead {
    topic: &'static str,
    entity_type: EntityType,
    entity_id: String,
    views: Vec<&'static str>,
    filters: Option<Value>,
    rows: usize,
    ids: Vec<String>,
}

/// Groups reads by entity; the views read of a run that a list returned join the list's entry.
fn group_reads(reads: Vec<Read>) -> Vec<GroupedRead> {
    let mut groups: Vec<GroupedRead> = Vec::new();
    let mut index: BTreeMap<(EntityType, String), usize> = BTreeMap::new();
    // Lists first, so that the runs they returned are known.
    let (lists, singles): (Vec<Read>, Vec<Read>) =
        reads.into_iter().partition(|r| r.filters.is_some());
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for r in lists {
        let key = (
            r.entity_type,
            format!(
                "{}{}",
                r.entity_id,
                r.filters.as_ref().map(Value::to_string).unwrap_or_default()
            ),
        );
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(GroupedRead {
                topic: r.topic,
                entity_type: r.entity_type,
                entity_id: r.entity_id.clone(),
                views: Vec::new(),
                filters: r.filters.clone(),
                rows: 0,
                ids: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[at];
        g.rows += r.ids.len();
        for id in r.ids {
            if g.ids.len() < MAX_IDS && !g.ids.contains(&id) {
                // Views of this run join the list's entry only if the entry names it.
                listed.entry(id.clone()).or_insert(at);
                g.ids.push(id);
            }
        }
        if !g.views.contains(&r.view) {
            g.views.push(r.view);
        }
    }
    for r in singles {
        let at = match (r.entity_type, listed.get(&r.entity_id)) {
            (EntityType::LlmRun, Some(at)) => *at,
            _ => *index
                .entry((r.entity_type, r.entity_id.clone()))
                .or_insert_with(|| {
                    groups.push(GroupedRead {
                        topic: r.topic,
                        entity_type: r.entity_type,
                        entity_id: r.entity_id.clone(),
                        views: Vec::new(),
                        filters: None,
                        rows: 1,
                        ids: vec![r.entity_id.clone()],
                    });
                    groups.len() - 1
                }),
        };
        let g = &mut groups[at];
        if !g.views.contains(&r.view) {
            g.views.push(r.view);
        }
    }
    groups
}

impl Facade {
    /// Names the GraphQL operation the records of this request belong to.
    pub fn set_operation(&self, name: Option<String>) {
        *locked(&self.record.operation) = name;
    }

    /// Checks a permission for the caller and records the decision (the one place where
    /// authorization happens).
    pub(crate) fn authorize(&self, permission: Permission) -> AppResult<&Caller> {
        let result = auth::authorize(self.caller.as_ref(), permission);
        if let Some(caller) = self.caller.as_ref() {
            let reason = auth::decision_reason(caller.role, permission, result.is_ok());
            self.record.decision(permission, result.is_ok(), reason);
        }
        result
    }

    /// Records that a single piece of evidence (or one view of it) was returned.
    pub(crate) fn note_read(
        &self,
        topic: &'static str,
        entity_type: EntityType,
        entity_id: &str,
        view: &'static str,
    ) {
        let entity_id = entity_id.to_string();
        self.record
            .read(topic, entity_type, entity_id, view, None, Vec::new());
    }

    /// Records that a list was returned: its field, filters and the ids of its rows.
    pub(crate) fn note_list(
        &self,
        topic: &'static str,
        entity_type: EntityType,
        field: &'static str,
        filters: Value,
        ids: Vec<String>,
    ) {
        let entity_id = field.to_string();
        self.record
            .read(topic, entity_type, entity_id, field, Some(filters), ids);
    }

    /// The GraphQL operation name the records carry, `(anonymous)` when it has none.
    pub(crate) fn operation_name(&self) -> String {
        locked(&self.record.operation)
            .clone()
            .unwrap_or_else(|| "(anonymous)".into())
    }

    /// Records an entry as it is (a live subscription's start or end).
    pub(crate) fn note_entry(&self, entry: NewEntry) {
        locked(&self.record.entries).push(entry);
    }

    /// The records so far, taken out of the facade to be committed: a live subscription's
    /// facade outlives a request and commits what it owes once per interval.
    pub fn take_pending_records(&self) -> PendingRecords {
        let taken = RequestRecord {
            operation: Mutex::new(locked(&self.record.operation).clone()),
            decisions: Mutex::new(std::mem::take(&mut *locked(&self.record.decisions))),
            reads: Mutex::new(std::mem::take(&mut *locked(&self.record.reads))),
            entries: Mutex::new(std::mem::take(&mut *locked(&self.record.entries))),
        };
        self.pending_of(&taken)
    }

    /// The request's records so far, to be committed after this facade — its loaders and the
    /// rows they hold — is let go: a response waits for its commit with only its text. Call
    /// it once, when the request is done (the records stay in the facade).
    pub fn pending_records(&self) -> PendingRecords {
        self.pending_of(&self.record)
    }

    fn pending_of(&self, record: &RequestRecord) -> PendingRecords {
        let entries = match (&self.caller, self.recording) {
            (Some(caller), true) => Some((caller.tenant_id.clone(), record.entries(caller))),
            _ => None,
        };
        let entries = Ok(entries.filter(|(_, e)| !e.is_empty()));
        PendingRecords {
            appender: self.appender.clone(),
            entries,
        }
    }
}

/// A request's records ([`Facade::pending_records`]), not yet durable.
pub struct PendingRecords {
    appender: Appender,
    /// The tenant and its entries; none for an anonymous or unrecorded request; an error
    /// when they cannot be written as the ledger's vocabulary requires.
    entries: AppResult<Option<(String, Vec<NewEntry>)>>,
}

impl PendingRecords {
    /// Writes the records; returns once they are durable.
    pub async fn commit(self) -> AppResult<()> {
        let Some((tenant_id, entries)) = self.entries? else {
            return Ok(());
        };
        self.appender
            .append(&tenant_id, entries)
            .await
            .map(|_| ())
            .map_err(|e| {
                e.log();
                AppError::internal(
                    "record the request's authorization and access",
                    "the ledger did not accept the records",
                )
            })
    }
}
