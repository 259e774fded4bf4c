//! GraphQL surface of the audit topic: ledger entries, one entry in detail, and the audit
//! views (identity, authorization, access, integrity, exports).

use crate::domain::Timestamp;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Json, Object, Result};

use super::common::{NodeKind, connection, facade, global_id, page_args};
use super::runs::LogExport;
use crate::domain::{AccessDecision, ActorType, LedgerCategory};
use crate::facade::EvidenceMetadata;
use crate::facade::audit::{
    AuditEntryDetail as Detail, AuditFilter, AuditIntegrity as Integrity, CheckpointInfo,
    IntegrityAnomaly, IntegrityStatus, LedgerHead,
};
use crate::facade::page::ListKind;
use entity::audit_ledger;

/// One entry of the tenant's hash-chained audit ledger.
#[derive(Clone)]
pub struct AuditEntry(pub audit_ledger::Model);

fn json_state(text: &Option<String>) -> Option<Json<serde_json::Value>> {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .map(Json)
}

#[Object]
impl AuditEntry {
    /// Global id (Relay).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::AuditEntry, &[&self.0.id])
    }
    /// The entry's own id (use it with `auditEntry`).
    async fn entry_id(&self) -> &str {
        &self.0.id
    }
    /// Position in the tenant's chain, from 1, without gaps.
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    async fn category(&self) -> Option<LedgerCategory> {
        LedgerCategory::parse(&self.0.category)
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> &str {
        &self.0.entity_id
    }
    async fn actor_type(&self) -> Option<ActorType> {
        ActorType::parse(&self.0.actor_type)
    }
    async fn actor_id(&self) -> Option<&str> {
        self.0.actor_id.as_deref()
    }
    /// Why the action was taken or decided.
    async fn action_reason(&self) -> Option<&str> {
        self.0.action_reason.as_deref()
    }
    /// The stored decision of an authorization entry (ALLOW or DENY).
    async fn decision(&self) -> Option<AccessDecision> {
        self.0.decision.as_deref().and_then(AccessDecision::parse)
    }
    /// State before the change, as JSON.
    async fn before_state(&self) -> Option<Json<serde_json::Value>> {
        json_state(&self.0.before_state)
    }
    /// State after the change, as JSON.
    async fn after_state(&self) -> Option<Json<serde_json::Value>> {
        json_state(&self.0.after_state)
    }
    async fn correlation_id(&self) -> Option<&str> {
        self.0.correlation_id.as_deref()
    }
    async fn occurred_at(&self) -> Timestamp {
        self.0.occurred_at.into()
    }
    async fn recorded_at(&self) -> Timestamp {
        self.0.recorded_at.into()
    }
    /// Hash of the previous entry (64 zeros for seq 1).
    async fn prev_hash(&self) -> &str {
        &self.0.prev_hash
    }
    /// RFC 6962 leaf hash of this entry (docs/ledger.md).
    async fn entry_hash(&self) -> &str {
        &self.0.entry_hash
    }
}

/// One ledger entry in detail, with its hash recomputed from the stored fields.
pub struct AuditEntryDetail(Detail);

#[Object]
impl AuditEntryDetail {
    async fn entry(&self) -> AuditEntry {
        AuditEntry(self.0.entry.clone())
    }
    /// The hash recomputed now from the stored fields.
    async fn computed_hash(&self) -> &str {
        &self.0.computed_hash
    }
    /// Whether the stored hash equals the recomputed one.
    async fn hash_matches(&self) -> bool {
        self.0.computed_hash == self.0.entry.entry_hash
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// O4: a real verification of the tenant's hash chain.
pub struct AuditIntegrity(Integrity);

#[Object]
impl AuditIntegrity {
    async fn status(&self) -> IntegrityStatus {
        self.0.status
    }
    /// True when every hash and link verified.
    async fn hash_chain_valid(&self) -> bool {
        self.0.hash_chain_valid
    }
    async fn entries_checked(&self) -> i64 {
        self.0.entries_checked
    }
    async fn anomalies_detected(&self) -> i32 {
        self.0.anomalies.len() as i32
    }
    /// Every anomaly found, in seq order.
    async fn anomalies(&self) -> &[IntegrityAnomaly] {
        &self.0.anomalies
    }
    /// The lowest seq with an anomaly.
    async fn first_broken_seq(&self) -> Option<i64> {
        self.0.first_broken_seq
    }
    /// The newest entry.
    async fn head(&self) -> Option<&LedgerHead> {
        self.0.head.as_ref()
    }
    /// RFC 6962 Merkle root over every entry hash, in seq order.
    async fn merkle_root(&self) -> &str {
        &self.0.merkle_root
    }
    /// The newest signed checkpoint, if any.
    async fn latest_checkpoint(&self) -> Option<&CheckpointInfo> {
        self.0.latest_checkpoint.as_ref()
    }
    /// Entries after the newest checkpoint: verified, but not yet anchored by a signature.
    async fn unanchored_entries(&self) -> i64 {
        self.0.unanchored_entries
    }
    /// When this verification ran.
    async fn last_verified(&self) -> Timestamp {
        self.0.verified_at.into()
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// Fields of a ledger list besides its edges.
pub struct AuditEntryListInfo {
    filter: AuditFilter,
    metadata: EvidenceMetadata,
}

#[Object]
impl AuditEntryListInfo {
    /// Number of entries matching the filter (counted only when selected).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(facade(ctx)?.count_audit_entries(&self.filter).await? as i64)
    }
    async fn filters_applied(&self) -> Json<serde_json::Value> {
        Json(self.filter.applied())
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.metadata
    }
}

/// Fields of the export list besides its edges.
pub struct LogExportListInfo {
    metadata: EvidenceMetadata,
}

#[Object]
impl LogExportListInfo {
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(facade(ctx)?.count_exports().await? as i64)
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.metadata
    }
}

type AuditEntryConnection = Connection<String, AuditEntry, AuditEntryListInfo>;

async fn entries(
    ctx: &Context<'_>,
    filter: AuditFilter,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<AuditEntryConnection> {
    let args = page_args(ListKind::AuditEntries, first, after, last, before)?;
    let list = facade(ctx)?.list_audit_entries(filter, args).await?;
    Ok(connection(
        list.page,
        AuditEntry,
        AuditEntryListInfo {
            filter: list.filter,
            metadata: list.metadata,
        },
    ))
}

/// The five audit views of the caller's tenant.
pub struct AuditViews;

#[Object]
impl AuditViews {
    /// O1: identity lifecycle (tenant and key events, failed authentication), newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn identity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AuditEntryConnection> {
        let filter = AuditFilter::only(LedgerCategory::Identity);
        entries(ctx, filter, first, after, last, before).await
    }
    /// O2: authorization decisions, allowed and denied, as stored; optionally one decision.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn authorization(
        &self,
        ctx: &Context<'_>,
        decision: Option<AccessDecision>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AuditEntryConnection> {
        let mut filter = AuditFilter::only(LedgerCategory::Authorization);
        filter.decision = decision;
        entries(ctx, filter, first, after, last, before).await
    }
    /// O3: who viewed or exported which evidence, newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn access(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AuditEntryConnection> {
        let filter = AuditFilter::only(LedgerCategory::Access);
        entries(ctx, filter, first, after, last, before).await
    }
    /// O4: verifies the whole hash chain now (once per request, however often it is asked).
    #[graphql(complexity = "crate::graphql::INTEGRITY_COST + child_complexity")]
    async fn integrity(&self, ctx: &Context<'_>) -> Result<AuditIntegrity> {
        Ok(AuditIntegrity(facade(ctx)?.audit_integrity().await?))
    }
    /// O5: compliance exports and their state, newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn exports(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, LogExport, LogExportListInfo>> {
        let args = page_args(ListKind::Exports, first, after, last, before)?;
        let list = facade(ctx)?.audit_exports(args).await?;
        Ok(connection(
            list.page,
            LogExport,
            LogExportListInfo {
                metadata: list.metadata,
            },
        ))
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The tenant's audit ledger, newest (highest seq) first.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn audit_entries(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AuditEntryConnection> {
        entries(ctx, filter.unwrap_or_default(), first, after, last, before).await
    }

    /// One ledger entry by its entry id, with before/after state and hash check.
    async fn audit_entry(&self, ctx: &Context<'_>, id: String) -> Result<AuditEntryDetail> {
        Ok(AuditEntryDetail(facade(ctx)?.audit_entry(&id).await?))
    }

    /// The audit views: identity, authorization, access, integrity, exports.
    async fn audit(&self) -> AuditViews {
        AuditViews
    }
}
