//! The audit topic: the tenant's ledger entries (filtered list and one entry in detail) and the
//! five audit views: identity, authorization, access, integrity, exports.

use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use super::decode::{self, AuditColumns, Projected};
use super::metadata::{EvidenceMetadata, distinct_sorted};
use super::page::{self, Cursor, Page, PageArgs, SortKey};
use super::{Facade, check_range, check_text};
use crate::auth::Permission;
use crate::domain::{
    AccessDecision, ActorType, LedgerCategory, Origin, SourceDomain, Timestamp, read_stored,
};
use crate::error::{AppError, AppResult, Context};
use crate::ledger::verify::{self, Report, VerificationMode, VerifyOptions};
use crate::ledger::vocabulary::EntityType;
use crate::ledger::vocabulary::EventType;
use crate::ledger::{self, merkle, proof};
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

    pub(crate) fn condition(&self, tenant_id: &str) -> Condition {
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

    /// Whether an entry of the caller's tenant passes the filter: [`AuditFilter::condition`]
    /// for a row in memory (a live subscription's feed).
    pub(crate) fn matches(&self, e: &audit_ledger::Model) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.category
            .as_ref()
            .is_none_or(|c| c.iter().any(|c| c.as_str() == e.category))
            && eq(&self.event_type, Some(&e.event_type))
            && eq(&self.entity_type, Some(&e.entity_type))
            && eq(&self.entity_id, Some(&e.entity_id))
            && eq(&self.actor_id, e.actor_id.as_deref())
            && eq(&self.correlation_id, e.correlation_id.as_deref())
            && self.actor_type.is_none_or(|a| a.as_str() == e.actor_type)
            && self
                .decision
                .is_none_or(|d| e.decision.as_deref() == Some(d.as_str()))
            && self.occurred_after.is_none_or(|t| e.occurred_at >= t.0)
            && self.occurred_before.is_none_or(|t| e.occurred_at <= t.0)
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
    /// The entries, read with the columns the caller shows.
    pub page: Page<Projected<audit_ledger::Model, AuditColumns>>,
    pub filter: AuditFilter,
    pub metadata: EvidenceMetadata,
}

/// One entry in detail, with its hash recomputed.
pub struct AuditEntryDetail {
    pub entry: audit_ledger::Model,
    pub computed_hash: String,
    pub metadata: EvidenceMetadata,
}

/// O4: a verification of the tenant's ledger, and the evidence metadata of what it read.
#[derive(Clone, Debug)]
pub struct AuditIntegrity {
    pub report: Report,
    /// The ledger entry that records this verification.
    pub recorded_as: Option<audit_ledger::Model>,
    pub metadata: EvidenceMetadata,
}

/// The newest full verification recorded in the tenant's ledger, and the entry that records it.
#[derive(Clone, Debug)]
pub struct FullVerification {
    pub recorded: verify::RecordedVerification,
    pub entry: audit_ledger::Model,
}

/// An RFC 6962 inclusion proof of one entry in the tenant's tree.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct InclusionProof {
    pub seq: i64,
    /// Zero-based position of the entry among the leaves (`seq - 1`).
    pub leaf_index: i64,
    pub tree_size: i64,
    /// The entry hash (the leaf).
    pub leaf_hash: String,
    pub root_hash: String,
    /// Sibling hashes from the leaf up, lower-case hex.
    pub hashes: Vec<String>,
    /// The signed checkpoint of this tree size, when there is one.
    pub signed_note: Option<String>,
}

/// An RFC 6962 consistency proof between two tree sizes.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct ConsistencyProof {
    pub from_size: i64,
    pub to_size: i64,
    pub from_root: String,
    pub to_root: String,
    pub hashes: Vec<String>,
}

/// The key that signs checkpoints.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct SigningKeyInfo {
    /// C2SP signed-note verifier key: `<name>+<key id>+<base64 Ed25519 public key>`.
    pub verifier_key: String,
    pub key_name: String,
    pub key_id: String,
    pub algorithm: String,
    /// The origin line of this tenant's checkpoints.
    pub origin: String,
}

/// A page of exports.
pub struct ExportList {
    pub page: Page<log_exports::Model>,
    pub metadata: EvidenceMetadata,
}

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
    /// The ledger list, newest (highest seq) first, read with `columns` (the ones the caller
    /// shows).
    pub async fn list_audit_entries(
        &self,
        filter: AuditFilter,
        args: PageArgs,
        columns: AuditColumns,
    ) -> AppResult<AuditList> {
        let scope = self.scope(Permission::ReadAudit)?;
        filter.validate()?;
        let select = audit_ledger::Entity::find().filter(filter.condition(scope.tenant_id));
        let page_select = page::keyset(select, audit_ledger::Column::Seq, None, true, &args);
        let rows = decode::audit(page_select, columns, &scope.db.conn)
            .await
            .context("list audit ledger entries")?;
        let page = page::finish(rows, &args, |e| Cursor {
            key: SortKey::Int(e.seq),
            id: e.id.clone(),
        });
        let entries: Vec<&audit_ledger::Model> = page.items.iter().map(|(_, e)| e).collect();
        let mut metadata = ledger_metadata(scope.tenant_id, &entries);
        metadata.correlation_id = None;
        self.note_list(
            "audit",
            EntityType::AuditEntryList,
            "auditEntries",
            filter.applied(),
            entries.iter().map(|e| e.id.clone()).collect(),
        );
        Ok(AuditList {
            page: page.map(|entry| Projected::new(entry, columns)),
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
        self.note_read("audit", EntityType::AuditEntry, id, "entry");
        let computed_hash = ledger::entry_hash(&entry);
        let mut metadata = ledger_metadata(scope.tenant_id, &[&entry]);
        metadata.checksum = Some(computed_hash.clone());
        metadata.correlation_id = entry.correlation_id.clone();
        let actor_type = read_stored(&entry.actor_type, || {
            format!("audit_ledger {}/{}", entry.tenant_id, entry.seq)
        })?;
        match actor_type {
            ActorType::Human => metadata = metadata.with_actors(entry.actor_id.clone(), None, None),
            ActorType::Agent => metadata = metadata.with_actors(None, entry.actor_id.clone(), None),
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

    /// O4: verifies the tenant's ledger (incrementally from the newest good checkpoint, or
    /// fully), once per request however often it is asked, and records the verification in
    /// the ledger.
    pub async fn audit_integrity(&self, mode: VerificationMode) -> AppResult<AuditIntegrity> {
        let scope = self.scope(Permission::ReadAudit)?;
        self.note_read(
            "audit",
            EntityType::AuditLedger,
            scope.tenant_id,
            "integrity",
        );
        let cell = match mode {
            VerificationMode::Full => &self.integrity_full,
            VerificationMode::Incremental => &self.integrity,
        };
        cell.get_or_try_init(|| async {
            let opts = VerifyOptions {
                mode,
                verifiers: self.ledger.verifiers(),
                retired: self.ledger.retired_for(scope.tenant_id),
                origin: self.ledger.origin(scope.tenant_id),
                trusted_checkpoint: None,
                check_records: true,
                parallel: verify::all_cores(),
            };
            let report = verify::verify(&scope.db.conn, scope.tenant_id, &opts).await?;
            let recorded_as = self.record_verification(scope.tenant_id, &report).await?;
            let mut metadata =
                EvidenceMetadata::new(scope.tenant_id, SourceDomain::Logs, "audit_ledger")
                    .with_times(report.newest);
            metadata.origin = report.head.as_ref().map(|_| Origin::System);
            metadata.checksum = Some(report.merkle_root.clone());
            Ok(AuditIntegrity {
                report,
                recorded_as,
                metadata,
            })
        })
        .await
        .cloned()
    }

    /// The newest full verification recorded in the tenant's ledger (by the background
    /// verifier, a FULL `integrity` request or `runledger verify --record`), if any.
    pub async fn latest_full_verification(&self) -> AppResult<Option<FullVerification>> {
        let scope = self.scope(Permission::ReadAudit)?;
        // Walks the (tenant, category, seq) index from the newest INTEGRITY entry back.
        let entry = audit_ledger::Entity::find()
            .filter(audit_ledger::Column::TenantId.eq(scope.tenant_id))
            .filter(audit_ledger::Column::Category.eq(LedgerCategory::Integrity.as_str()))
            .filter(audit_ledger::Column::EventType.eq(EventType::LedgerVerified.as_str()))
            .filter(
                audit_ledger::Column::ActionReason
                    .eq(verify::verification_reason(VerificationMode::Full)),
            )
            .order_by_desc(audit_ledger::Column::Seq)
            .one(&scope.db.conn)
            .await
            .context("read the newest full verification")?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let recorded = entry
            .after_state
            .as_deref()
            .and_then(verify::RecordedVerification::parse)
            .ok_or_else(|| {
                AppError::internal(
                    "read the newest full verification",
                    format!(
                        "the LEDGER_VERIFIED entry at seq {} cannot be read",
                        entry.seq
                    ),
                )
            })?;
        Ok(Some(FullVerification { recorded, entry }))
    }

    /// Appends the INTEGRITY entry that says a verification ran, who asked, and what it found.
    async fn record_verification(
        &self,
        tenant_id: &str,
        report: &Report,
    ) -> AppResult<Option<audit_ledger::Model>> {
        let caller = self.caller().map(|c| format!("key:{}", c.key_id));
        let entry = verify::verification_entry(report, caller);
        let mut stored = self.appender.append(tenant_id, vec![entry]).await?;
        Ok(stored.pop())
    }

    /// The key that signs this server's checkpoints.
    pub fn signing_key(&self) -> AppResult<SigningKeyInfo> {
        let scope = self.scope(Permission::ReadAudit)?;
        let signer = &self.ledger.signer;
        Ok(SigningKeyInfo {
            verifier_key: signer.verifier_key(),
            key_name: signer.name().to_string(),
            key_id: signer.key_id_hex(),
            algorithm: "Ed25519".into(),
            origin: self.ledger.origin(scope.tenant_id),
        })
    }

    /// The tenant's signed checkpoints, newest first (at most `limit`).
    pub async fn checkpoints(&self, limit: u64) -> AppResult<Vec<ledger_checkpoints::Model>> {
        let scope = self.scope(Permission::ReadAudit)?;
        ledger_checkpoints::Entity::find()
            .filter(ledger_checkpoints::Column::TenantId.eq(scope.tenant_id))
            .order_by_desc(ledger_checkpoints::Column::TreeSize)
            .limit(limit)
            .all(&scope.db.conn)
            .await
            .context("list checkpoints")
    }

    /// Entry hashes of the first `size` entries, in seq order, as stored.
    async fn leaves(&self, tenant_id: &str, size: i64) -> AppResult<Vec<[u8; 32]>> {
        let hashes: Vec<String> = audit_ledger::Entity::find()
            .select_only()
            .column(audit_ledger::Column::EntryHash)
            .filter(audit_ledger::Column::TenantId.eq(tenant_id))
            .filter(audit_ledger::Column::Seq.lte(size))
            .order_by_asc(audit_ledger::Column::Seq)
            .into_tuple()
            .all(&self.db.conn)
            .await
            .context("read entry hashes for a proof")?;
        hashes
            .iter()
            .map(|h| {
                merkle::parse_hash(h).ok_or_else(|| {
                    AppError::internal("read entry hashes for a proof", "a stored hash is not hex")
                })
            })
            .collect()
    }

    /// The newest tree size (the head's seq).
    async fn tree_size(&self, tenant_id: &str) -> AppResult<i64> {
        Ok(ledger::checkpoint::head_of(&self.db, tenant_id)
            .await?
            .unwrap_or(0))
    }

    /// Proves that the entry `seq` is in the tree of `tree_size` entries (default: the newest
    /// checkpoint's size, else the whole ledger).
    pub async fn inclusion_proof(
        &self,
        seq: i64,
        tree_size: Option<i64>,
    ) -> AppResult<InclusionProof> {
        let scope = self.scope(Permission::ReadAudit)?;
        let head = self.tree_size(scope.tenant_id).await?;
        let size = match tree_size {
            Some(n) => n,
            None => self
                .checkpoints(1)
                .await?
                .first()
                .map(|c| c.tree_size)
                .filter(|n| *n >= seq)
                .unwrap_or(head),
        };
        if size < 1 || size > head {
            return Err(AppError::bad_input(format!(
                "treeSize must be between 1 and the ledger's size {head}, not {size}"
            )));
        }
        if seq < 1 || seq > size {
            return Err(AppError::bad_input(format!(
                "seq must be between 1 and the tree size {size}, not {seq}"
            )));
        }
        self.note_read(
            "audit",
            EntityType::AuditLedger,
            scope.tenant_id,
            "inclusionProof",
        );
        let leaves = self.leaves(scope.tenant_id, size).await?;
        let index = (seq - 1) as usize;
        let hashes = proof::inclusion_proof(&leaves, index)
            .ok_or_else(|| AppError::internal("build an inclusion proof", "index out of range"))?;
        let signed_note =
            ledger_checkpoints::Entity::find_by_id((scope.tenant_id.to_string(), size))
                .one(&self.db.conn)
                .await
                .context("read a checkpoint")?
                .map(|c| c.signed_note);
        Ok(InclusionProof {
            seq,
            leaf_index: index as i64,
            tree_size: size,
            leaf_hash: hex::encode(leaves[index]),
            root_hash: hex::encode(merkle::root(&leaves)),
            hashes: hashes.iter().map(hex::encode).collect(),
            signed_note,
        })
    }

    /// Proves that the tree of `from_size` entries is a prefix of the tree of `to_size`
    /// (default: the ledger's size).
    pub async fn consistency_proof(
        &self,
        from_size: i64,
        to_size: Option<i64>,
    ) -> AppResult<ConsistencyProof> {
        let scope = self.scope(Permission::ReadAudit)?;
        let head = self.tree_size(scope.tenant_id).await?;
        let to = to_size.unwrap_or(head);
        if to < 1 || to > head {
            return Err(AppError::bad_input(format!(
                "toSize must be between 1 and the ledger's size {head}, not {to}"
            )));
        }
        if from_size < 1 || from_size > to {
            return Err(AppError::bad_input(format!(
                "fromSize must be between 1 and toSize {to}, not {from_size}"
            )));
        }
        self.note_read(
            "audit",
            EntityType::AuditLedger,
            scope.tenant_id,
            "consistencyProof",
        );
        let leaves = self.leaves(scope.tenant_id, to).await?;
        let hashes = proof::consistency_proof(&leaves, from_size as usize)
            .ok_or_else(|| AppError::internal("build a consistency proof", "sizes out of range"))?;
        Ok(ConsistencyProof {
            from_size,
            to_size: to,
            from_root: hex::encode(merkle::root(&leaves[..from_size as usize])),
            to_root: hex::encode(merkle::root(&leaves)),
            hashes: hashes.iter().map(hex::encode).collect(),
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
        self.note_list(
            "audit",
            EntityType::ExportList,
            "exports",
            serde_json::json!({}),
            page.items.iter().map(|(_, e)| e.id.clone()).collect(),
        );
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
