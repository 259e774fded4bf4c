//! The audit topic: the tenant's ledger entries (filtered list and one entry in detail) and the
//! five audit views: identity, authorization, access, integrity, exports.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use super::metadata::{EvidenceMetadata, distinct_sorted};
use super::page::{self, Cursor, Page, PageArgs, SortKey};
use super::{Facade, check_range, check_text};
use crate::auth::Permission;
use crate::domain::{AccessDecision, ActorType, LedgerCategory, Origin, SourceDomain, Timestamp};
use crate::error::{AppError, AppResult, Context};
use crate::ledger::{self, AnomalyKind, ChainWalker, merkle};
use entity::{audit_ledger, ledger_checkpoints, log_exports};

/// Filters of the ledger list.
#[derive(Clone, Debug, Default, async_graphql::InputObject)]
#[graphql(name = "AuditEntryFilter")]
pub struct AuditFilter {
    /// Any of these categories.
    pub category: Option<Vec<LedgerCategory>>,
    /// Event type, e.g. `KEY_CREATED`.
    pub event_type: Option<String>,
    /// Kind of entity the entry is about, e.g. `api_key`, `llm_run`.
    pub entity_type: Option<String>,
    /// The entity the entry is about.
    pub entity_id: Option<String>,
    /// Kind of actor.
    pub actor_type: Option<ActorType>,
    /// The actor.
    pub actor_id: Option<String>,
    /// Authorization outcome (authorization entries only have one).
    pub decision: Option<AccessDecision>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Entries that occurred at or after this instant.
    pub occurred_after: Option<Timestamp>,
    /// Entries that occurred at or before this instant.
    pub occurred_before: Option<Timestamp>,
}

impl AuditFilter {
    pub fn validate(&self) -> AppResult<()> {
        check_text("filter.eventType", &self.event_type)?;
        check_text("filter.entityType", &self.entity_type)?;
        check_text("filter.entityId", &self.entity_id)?;
        check_text("filter.actorId", &self.actor_id)?;
        check_text("filter.correlationId", &self.correlation_id)?;
        if matches!(&self.category, Some(c) if c.is_empty()) {
            return Err(AppError::bad_input(
                "filter.category must name at least one category",
            ));
        }
        check_range(
            "filter.occurredAfter/occurredBefore",
            &self.occurred_after,
            &self.occurred_before,
        )
    }

    /// The same filter restricted to one category (for the identity/authorization/access views).
    pub fn only(category: LedgerCategory) -> Self {
        AuditFilter {
            category: Some(vec![category]),
            ..Default::default()
        }
    }

    fn condition(&self, tenant_id: &str) -> Condition {
        use audit_ledger::Column as C;
        let mut c = Condition::all().add(C::TenantId.eq(tenant_id));
        if let Some(cats) = &self.category {
            c = c.add(C::Category.is_in(cats.iter().map(|c| c.as_str())));
        }
        for (col, v) in [
            (C::EventType, &self.event_type),
            (C::EntityType, &self.entity_type),
            (C::EntityId, &self.entity_id),
            (C::ActorId, &self.actor_id),
            (C::CorrelationId, &self.correlation_id),
        ] {
            if let Some(v) = v {
                c = c.add(col.eq(v.clone()));
            }
        }
        if let Some(a) = self.actor_type {
            c = c.add(C::ActorType.eq(a.as_str()));
        }
        if let Some(d) = self.decision {
            c = c.add(C::Decision.eq(d.as_str()));
        }
        if let Some(t) = self.occurred_after {
            c = c.add(C::OccurredAt.gte(t.0));
        }
        if let Some(t) = self.occurred_before {
            c = c.add(C::OccurredAt.lte(t.0));
        }
        c
    }

    pub fn applied(&self) -> Value {
        let ts = |t: &Option<Timestamp>| json!(t.map(|t| crate::canonical::timestamp(&t.0)));
        let mut m = serde_json::Map::new();
        for (k, v) in [
            (
                "category",
                json!(
                    self.category
                        .as_ref()
                        .map(|v| v.iter().map(|c| c.as_str()).collect::<Vec<_>>())
                ),
            ),
            ("eventType", json!(self.event_type)),
            ("entityType", json!(self.entity_type)),
            ("entityId", json!(self.entity_id)),
            ("actorType", json!(self.actor_type.map(|a| a.as_str()))),
            ("actorId", json!(self.actor_id)),
            ("decision", json!(self.decision.map(|d| d.as_str()))),
            ("correlationId", json!(self.correlation_id)),
            ("occurredAfter", ts(&self.occurred_after)),
            ("occurredBefore", ts(&self.occurred_before)),
        ] {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        }
        Value::Object(m)
    }
}

/// A page of ledger entries.
pub struct AuditList {
    pub page: Page<audit_ledger::Model>,
    pub filter: AuditFilter,
    pub metadata: EvidenceMetadata,
}

/// One entry in detail, with its hash recomputed.
pub struct AuditEntryDetail {
    pub entry: audit_ledger::Model,
    pub computed_hash: String,
    pub metadata: EvidenceMetadata,
}

/// Overall verdict of an integrity verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum IntegrityStatus {
    /// The ledger has no entries yet.
    Empty,
    /// Every entry verified and every entry is covered by a signed checkpoint.
    Verified,
    /// The chain verified, but some entries are not yet covered by a signed checkpoint.
    VerifiedUnanchoredTail,
    /// At least one anomaly was found.
    Broken,
}

/// Kind of integrity anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum AnomalyType {
    /// The stored hash is not the hash of the stored fields.
    EntryHashMismatch,
    /// The entry does not link to the previous entry's hash.
    BrokenPrevLink,
    /// Seq numbers are missing, duplicated or out of order.
    SeqGap,
    /// An entry of another tenant is in this tenant's chain.
    ForeignTenant,
    /// The ledger has fewer entries than a checkpoint covered: its tail was removed.
    Truncated,
    /// The Merkle root of the entries a checkpoint covers is not the checkpoint's root: history
    /// was rewritten (even if every hash was recomputed).
    CheckpointRootMismatch,
}

/// One anomaly found.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct IntegrityAnomaly {
    pub kind: AnomalyType,
    pub seq: i64,
    pub detail: String,
}

/// The newest entry of the chain.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct LedgerHead {
    pub seq: i64,
    pub entry_hash: String,
}

/// A signed checkpoint of the ledger tree.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct CheckpointInfo {
    pub tree_size: i64,
    pub root_hash: String,
    pub recorded_at: Timestamp,
}

/// O4: the result of a real verification of the tenant's chain.
#[derive(Clone, Debug)]
pub struct AuditIntegrity {
    pub status: IntegrityStatus,
    pub hash_chain_valid: bool,
    pub entries_checked: i64,
    pub anomalies: Vec<IntegrityAnomaly>,
    pub first_broken_seq: Option<i64>,
    pub head: Option<LedgerHead>,
    pub merkle_root: String,
    pub latest_checkpoint: Option<CheckpointInfo>,
    pub unanchored_entries: i64,
    pub verified_at: DateTime<Utc>,
    pub metadata: EvidenceMetadata,
}

/// A page of exports.
pub struct ExportList {
    pub page: Page<log_exports::Model>,
    pub metadata: EvidenceMetadata,
}

/// How many entries a verification reads per statement.
const VERIFY_CHUNK: u64 = 5000;

fn ledger_metadata(tenant_id: &str, entries: &[&audit_ledger::Model]) -> EvidenceMetadata {
    let mut m = EvidenceMetadata::new(tenant_id, SourceDomain::Logs, "audit_ledger")
        .with_times(entries.iter().map(|e| (e.occurred_at, e.recorded_at)));
    m.origin = if entries.is_empty() {
        None
    } else {
        Some(Origin::System)
    };
    m
}

impl Facade {
    /// The ledger list, newest (highest seq) first.
    pub async fn list_audit_entries(
        &self,
        filter: AuditFilter,
        args: PageArgs,
    ) -> AppResult<AuditList> {
        let scope = self.scope(Permission::ReadAudit)?;
        filter.validate()?;
        let select = audit_ledger::Entity::find().filter(filter.condition(scope.tenant_id));
        let rows = page::keyset(select, audit_ledger::Column::Seq, None, true, &args)
            .all(&scope.db.conn)
            .await
            .context("list audit ledger entries")?;
        let page = page::finish(rows, &args, |e| Cursor {
            key: SortKey::Int(e.seq),
            id: e.id.clone(),
        });
        let entries: Vec<&audit_ledger::Model> = page.items.iter().map(|(_, e)| e).collect();
        let mut metadata = ledger_metadata(scope.tenant_id, &entries);
        metadata.correlation_id = None;
        Ok(AuditList {
            page,
            filter,
            metadata,
        })
    }

    pub async fn count_audit_entries(&self, filter: &AuditFilter) -> AppResult<u64> {
        let scope = self.scope(Permission::ReadAudit)?;
        audit_ledger::Entity::find()
            .filter(filter.condition(scope.tenant_id))
            .count(&scope.db.conn)
            .await
            .context("count audit ledger entries")
    }

    /// One entry with its before/after state and its hash recomputed.
    pub async fn audit_entry(&self, id: &str) -> AppResult<AuditEntryDetail> {
        let scope = self.scope(Permission::ReadAudit)?;
        let entry = audit_ledger::Entity::find()
            .filter(audit_ledger::Column::TenantId.eq(scope.tenant_id))
            .filter(audit_ledger::Column::Id.eq(id))
            .one(&scope.db.conn)
            .await
            .context("load an audit ledger entry")?
            .ok_or_else(|| AppError::not_found(format!("no audit entry with id `{id}`")))?;
        let computed_hash = ledger::entry_hash(&entry);
        let mut metadata = ledger_metadata(scope.tenant_id, &[&entry]);
        metadata.checksum = Some(computed_hash.clone());
        metadata.correlation_id = entry.correlation_id.clone();
        match ActorType::parse(&entry.actor_type) {
            Some(ActorType::Human) => {
                metadata = metadata.with_actors(entry.actor_id.clone(), None, None)
            }
            Some(ActorType::Agent) => {
                metadata = metadata.with_actors(None, entry.actor_id.clone(), None)
            }
            _ => metadata = metadata.with_actors(None, None, entry.actor_id.clone()),
        }
        if entry.entity_type == "llm_run" {
            metadata.run_id = Some(entry.entity_id.clone());
        }
        if entry.entity_type == "export" {
            metadata.export_id = Some(entry.entity_id.clone());
        }
        Ok(AuditEntryDetail {
            entry,
            computed_hash,
            metadata,
        })
    }

    /// O4: walks the whole chain in seq order, recomputing every hash and link, and compares
    /// its size and Merkle root with the latest checkpoint. (Checkpoint signatures are checked
    /// once checkpoints are signed.)
    pub async fn audit_integrity(&self) -> AppResult<AuditIntegrity> {
        self.scope(Permission::ReadAudit)?;
        self.integrity
            .get_or_try_init(|| self.verify_ledger())
            .await
            .cloned()
    }

    async fn verify_ledger(&self) -> AppResult<AuditIntegrity> {
        let scope = self.scope(Permission::ReadAudit)?;
        let mut walker = ChainWalker::new(scope.tenant_id);
        let mut leaves: Vec<[u8; 32]> = Vec::new();
        let mut last_seq: Option<i64> = None;
        let mut newest: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
        loop {
            let mut q = audit_ledger::Entity::find()
                .filter(audit_ledger::Column::TenantId.eq(scope.tenant_id))
                .order_by_asc(audit_ledger::Column::Seq)
                .limit(VERIFY_CHUNK);
            if let Some(s) = last_seq {
                q = q.filter(audit_ledger::Column::Seq.gt(s));
            }
            let chunk = q
                .all(&scope.db.conn)
                .await
                .context("read the ledger for verification")?;
            let done = (chunk.len() as u64) < VERIFY_CHUNK;
            for e in &chunk {
                walker.push(e);
                leaves.push(merkle::parse_hash(&e.entry_hash).unwrap_or([0u8; 32]));
                newest = Some(newest.map_or((e.occurred_at, e.recorded_at), |(o, r)| {
                    (o.max(e.occurred_at), r.max(e.recorded_at))
                }));
            }
            last_seq = chunk.last().map(|e| e.seq).or(last_seq);
            if done {
                break;
            }
        }
        let walk = walker.finish();
        let checkpoint = ledger_checkpoints::Entity::find()
            .filter(ledger_checkpoints::Column::TenantId.eq(scope.tenant_id))
            .order_by_desc(ledger_checkpoints::Column::TreeSize)
            .one(&scope.db.conn)
            .await
            .context("read the latest ledger checkpoint")?;
        let mut anomalies: Vec<IntegrityAnomaly> = walk
            .anomalies
            .iter()
            .map(|a| IntegrityAnomaly {
                kind: match a.kind {
                    AnomalyKind::EntryHashMismatch => AnomalyType::EntryHashMismatch,
                    AnomalyKind::BrokenPrevLink => AnomalyType::BrokenPrevLink,
                    AnomalyKind::SeqGap => AnomalyType::SeqGap,
                    AnomalyKind::ForeignTenant => AnomalyType::ForeignTenant,
                },
                seq: a.seq,
                detail: a.detail.clone(),
            })
            .collect();
        let entries_checked = walk.entries_checked as i64;
        if let Some(cp) = &checkpoint {
            match usize::try_from(cp.tree_size)
                .ok()
                .filter(|n| *n <= leaves.len())
            {
                None => anomalies.push(IntegrityAnomaly {
                    kind: AnomalyType::Truncated,
                    seq: entries_checked + 1,
                    detail: format!(
                        "checkpoint covers {} entries, the ledger has {entries_checked}",
                        cp.tree_size
                    ),
                }),
                Some(n) if hex::encode(merkle::root(&leaves[..n])) != cp.root_hash => anomalies
                    .push(IntegrityAnomaly {
                        kind: AnomalyType::CheckpointRootMismatch,
                        seq: cp.tree_size,
                        detail: format!(
                            "the root of the first {n} entries differs from the checkpoint's"
                        ),
                    }),
                Some(_) => {}
            }
        }
        anomalies.sort_by_key(|a| a.seq);
        let covered = checkpoint.as_ref().map_or(0, |c| c.tree_size);
        let unanchored_entries = (entries_checked - covered).max(0);
        let hash_chain_valid = anomalies.is_empty();
        let status = if !hash_chain_valid {
            IntegrityStatus::Broken
        } else if entries_checked == 0 {
            IntegrityStatus::Empty
        } else if unanchored_entries > 0 {
            IntegrityStatus::VerifiedUnanchoredTail
        } else {
            IntegrityStatus::Verified
        };
        let head = match (walk.head_seq, walk.head_hash.clone()) {
            (Some(seq), Some(entry_hash)) => Some(LedgerHead { seq, entry_hash }),
            _ => None,
        };
        let mut metadata =
            EvidenceMetadata::new(scope.tenant_id, SourceDomain::Logs, "audit_ledger")
                .with_times(newest);
        metadata.origin = head.as_ref().map(|_| Origin::System);
        let merkle_root = hex::encode(merkle::root(&leaves));
        metadata.checksum = Some(merkle_root.clone());
        Ok(AuditIntegrity {
            status,
            hash_chain_valid,
            entries_checked,
            first_broken_seq: anomalies.iter().map(|a| a.seq).min(),
            anomalies,
            head,
            merkle_root,
            latest_checkpoint: checkpoint.map(|c| CheckpointInfo {
                tree_size: c.tree_size,
                root_hash: c.root_hash,
                recorded_at: Timestamp(c.recorded_at),
            }),
            unanchored_entries,
            verified_at: Utc::now(),
            metadata,
        })
    }

    /// O5: the tenant's compliance exports, newest first.
    pub async fn audit_exports(&self, args: PageArgs) -> AppResult<ExportList> {
        let scope = self.scope(Permission::ReadAudit)?;
        let select =
            log_exports::Entity::find().filter(log_exports::Column::TenantId.eq(scope.tenant_id));
        let rows = page::keyset(
            select,
            log_exports::Column::RequestedAt,
            Some(log_exports::Column::Id),
            true,
            &args,
        )
        .all(&scope.db.conn)
        .await
        .context("list exports")?;
        let page = page::finish(rows, &args, |e| Cursor {
            key: SortKey::Time(e.requested_at),
            id: e.id.clone(),
        });
        let mut metadata =
            EvidenceMetadata::new(scope.tenant_id, SourceDomain::Logs, "log_exports").with_times(
                page.items
                    .iter()
                    .map(|(_, e)| (e.requested_at, e.delivered_at.unwrap_or(e.requested_at))),
            );
        // Export records move from PENDING to a final state, so they are not immutable.
        metadata.immutable = false;
        metadata.export_id = page.items.first().map(|(_, e)| e.id.clone());
        let runs = distinct_sorted(page.items.iter().filter_map(|(_, e)| e.run_id.clone()));
        if runs.len() == 1 {
            metadata.run_id = runs.into_iter().next();
        }
        Ok(ExportList { page, metadata })
    }

    pub async fn count_exports(&self) -> AppResult<u64> {
        let scope = self.scope(Permission::ReadAudit)?;
        log_exports::Entity::find()
            .filter(log_exports::Column::TenantId.eq(scope.tenant_id))
            .count(&scope.db.conn)
            .await
            .context("count exports")
    }
}
