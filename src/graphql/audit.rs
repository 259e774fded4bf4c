//! GraphQL surface of the audit topic: ledger entries, one entry in detail, and the audit
//! views (identity, authorization, access, integrity, exports).

use crate::domain::Timestamp;
use async_graphql::connection::Connection;
use async_graphql::{Context, Json, Object, Result, SelectionField};

use super::common::{ListInfo, NodeKind, connection, facade, global_id, page_args, paged_object};
use super::plain::Plain;
use super::rows::{row_type, stored, stored_opt};
use super::runs::LogExport;
use crate::domain::{AccessDecision, ActorType, LedgerCategory};
use crate::facade::EvidenceMetadata;
use crate::facade::audit::{
    AuditEntryDetail as Detail, AuditFilter, AuditIntegrity as Integrity, ConsistencyProof,
    FullVerification as FullRecord, InclusionProof, SigningKeyInfo,
};
use crate::facade::decode::{AuditColumns, Projected};
use crate::facade::page::ListKind;
use crate::ledger::verify::{Anomaly, CheckpointView, Head, Verdict, VerificationMode};
use entity::audit_ledger;
use entity::ledger_checkpoints;

/// An entry, read with the columns a view shows.
pub type EntryRow = Projected<audit_ledger::Model, AuditColumns>;

/// One entry of the tenant's hash-chained audit ledger.
#[derive(Clone)]
pub struct AuditEntry(pub EntryRow);

fn json_state(text: &Option<String>) -> Option<Json<serde_json::Value>> {
    crate::graphql::common::json_column(text)
}

row_type! {
    AuditEntry(EntryRow) as e in audit_ledger, names: audit_entry_field,
        key: [e.tenant_id, e.seq], node: [Id]
        => global_id(NodeKind::AuditEntry, &[&e.id]);
    plain {
        /// The entry's own id (use it with `auditEntry`).
        entry_id "entryId": &str [Id] => &e.id;
        /// Position in the tenant's chain, from 1, without gaps.
        seq "seq": i64 [Seq] => e.seq;
        category "category": Result<Option<LedgerCategory>> [Category]
            => stored(&e.category, || AuditEntry::row_key(e)).map(Some);
        event_type "eventType": &str [EventType] => &e.event_type;
        entity_type "entityType": &str [EntityType] => &e.entity_type;
        entity_id "entityId": &str [EntityId] => &e.entity_id;
        actor_type "actorType": Result<Option<ActorType>> [ActorType]
            => stored(&e.actor_type, || AuditEntry::row_key(e)).map(Some);
        actor_id "actorId": Option<&str> [ActorId] => e.actor_id.as_deref();
        /// Why the action was taken or decided.
        action_reason "actionReason": Option<&str> [ActionReason] => e.action_reason.as_deref();
        /// The stored decision of an authorization entry (ALLOW or DENY).
        decision "decision": Result<Option<AccessDecision>> [Decision]
            => stored_opt(e.decision.as_deref(), || AuditEntry::row_key(e));
        /// State before the change, as JSON.
        before_state "beforeState": Option<Json<serde_json::Value>> [BeforeState] opaque
            => json_state(&e.before_state);
        /// State after the change, as JSON.
        after_state "afterState": Option<Json<serde_json::Value>> [AfterState] opaque
            => json_state(&e.after_state);
        correlation_id "correlationId": Option<&str> [CorrelationId] => e.correlation_id.as_deref();
        occurred_at "occurredAt": Timestamp [OccurredAt] => Timestamp(e.occurred_at);
        recorded_at "recordedAt": Timestamp [RecordedAt] => Timestamp(e.recorded_at);
        /// Hash of the previous entry (64 zeros for seq 1).
        prev_hash "prevHash": &str [PrevHash] => &e.prev_hash;
        /// RFC 6962 leaf hash of this entry (docs/ledger.md).
        entry_hash "entryHash": &str [EntryHash] => &e.entry_hash;
    }
}

/// One ledger entry in detail, with its hash recomputed from the stored fields.
pub struct AuditEntryDetail(Detail);

#[Object]
impl AuditEntryDetail {
    async fn entry(&self) -> AuditEntry {
        AuditEntry(Projected::whole(self.0.entry.clone()))
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

/// O4: a real verification of the tenant's ledger.
pub struct AuditIntegrity(Integrity);

#[Object]
impl AuditIntegrity {
    async fn status(&self) -> Verdict {
        self.0.report.status
    }
    /// FULL (from seq 1) or INCREMENTAL (from the newest good checkpoint).
    async fn mode(&self) -> VerificationMode {
        self.0.report.mode
    }
    /// True when no anomaly of the chain or tree was found (hashes, links, seq, truncation,
    /// checkpoint roots).
    async fn hash_chain_valid(&self) -> bool {
        self.0.report.hash_chain_valid
    }
    /// The first seq this verification read (1 for a full run).
    async fn from_seq(&self) -> i64 {
        self.0.report.from_seq
    }
    async fn entries_checked(&self) -> i64 {
        self.0.report.entries_checked as i64
    }
    /// Signed checkpoints whose signature and root were checked.
    async fn checkpoints_checked(&self) -> i64 {
        self.0.report.checkpoints_checked as i64
    }
    /// Anchor entries whose Merkle root was recomputed from their evidence records.
    async fn anchors_checked(&self) -> i64 {
        self.0.report.anchors_checked as i64
    }
    /// Evidence records re-hashed for the anchors.
    async fn records_checked(&self) -> i64 {
        self.0.report.records_checked as i64
    }
    async fn anomalies_detected(&self) -> i32 {
        self.0.report.anomalies.len() as i32
    }
    /// Every anomaly found, in seq order.
    async fn anomalies(&self) -> &[Anomaly] {
        &self.0.report.anomalies
    }
    /// The lowest seq with an anomaly.
    async fn first_broken_seq(&self) -> Option<i64> {
        self.0.report.first_broken_seq
    }
    /// The newest entry.
    async fn head(&self) -> Option<&Head> {
        self.0.report.head.as_ref()
    }
    /// RFC 6962 Merkle root over every entry hash, in seq order.
    async fn merkle_root(&self) -> &str {
        &self.0.report.merkle_root
    }
    /// The newest signed checkpoint, if any, with whether its signature verified.
    async fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.0
            .report
            .latest_checkpoint
            .clone()
            .map(Checkpoint::Seen)
    }
    /// Entries after the newest good checkpoint: verified, but not yet covered by a signature.
    async fn unanchored_entries(&self) -> i64 {
        self.0.report.unanchored_entries
    }
    /// When this verification ran.
    async fn last_verified(&self) -> Timestamp {
        self.0.report.verified_at.into()
    }
    /// The INTEGRITY entry that records this verification in the ledger.
    async fn recorded_as(&self) -> Option<AuditEntry> {
        self.0
            .recorded_as
            .clone()
            .map(|e| AuditEntry(Projected::whole(e)))
    }
    /// The newest FULL verification recorded in the ledger — by the server's background
    /// verifier (every `--full-verify-interval-secs`), a FULL `integrity` request or
    /// `runledger verify --record` — next to this one, which may be incremental: what a full
    /// check found, not only what the newest checkpoint vouches for. Null before the first.
    async fn latest_full_verification(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<FullVerification>> {
        Ok(facade(ctx)?
            .latest_full_verification()
            .await?
            .map(FullVerification))
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// A full verification of the tenant's ledger as its LEDGER_VERIFIED entry records it.
pub struct FullVerification(FullRecord);

/// A full verification of the tenant's ledger as its LEDGER_VERIFIED entry records it.
#[Object]
impl FullVerification {
    /// When it ran (when it finished).
    async fn verified_at(&self) -> Timestamp {
        self.0.entry.occurred_at.into()
    }
    async fn status(&self) -> Verdict {
        self.0.recorded.status
    }
    async fn entries_checked(&self) -> i64 {
        self.0.recorded.entries_checked as i64
    }
    /// Every anomaly it found, counted.
    async fn anomalies_detected(&self) -> i64 {
        self.0.recorded.anomalies_detected as i64
    }
    /// The anomalies it recorded, in seq order: the first 20 (`anomaliesDetected` counts all).
    async fn anomalies(&self) -> &[Anomaly] {
        &self.0.recorded.anomalies
    }
    /// The seq of the LEDGER_VERIFIED entry that records it.
    async fn seq(&self) -> i64 {
        self.0.entry.seq
    }
    /// Who ran it: `runledger-full-verifier` (the server's background verifier),
    /// `key:<id>` (a FULL `integrity` request) or `runledger verify`.
    async fn recorded_by(&self) -> Option<&str> {
        self.0.entry.actor_id.as_deref()
    }
    /// The LEDGER_VERIFIED entry that records it.
    async fn recorded_as(&self) -> AuditEntry {
        AuditEntry(Projected::whole(self.0.entry.clone()))
    }
}

/// A signed checkpoint of the tenant's ledger tree (C2SP tlog-checkpoint, Ed25519).
pub enum Checkpoint {
    Stored(ledger_checkpoints::Model),
    Seen(CheckpointView),
}

#[Object]
impl Checkpoint {
    async fn tree_size(&self) -> i64 {
        match self {
            Checkpoint::Stored(c) => c.tree_size,
            Checkpoint::Seen(c) => c.tree_size,
        }
    }
    /// Lower-case hex RFC 6962 root of the first `treeSize` entries.
    async fn root_hash(&self) -> &str {
        match self {
            Checkpoint::Stored(c) => &c.root_hash,
            Checkpoint::Seen(c) => &c.root_hash,
        }
    }
    /// Hex id (C2SP key hash) of the signing key.
    async fn key_id(&self) -> &str {
        match self {
            Checkpoint::Stored(c) => &c.key_id,
            Checkpoint::Seen(c) => &c.key_id,
        }
    }
    /// The signed note, verbatim: verify it with the verifier key of `audit { signingKey }`.
    async fn signed_note(&self) -> &str {
        match self {
            Checkpoint::Stored(c) => &c.signed_note,
            Checkpoint::Seen(c) => &c.signed_note,
        }
    }
    /// Whether the signature verified (known only where a verification ran).
    async fn signature_valid(&self) -> Option<bool> {
        match self {
            Checkpoint::Stored(_) => None,
            Checkpoint::Seen(c) => Some(c.signature_valid),
        }
    }
    async fn recorded_at(&self) -> Timestamp {
        match self {
            Checkpoint::Stored(c) => c.recorded_at.into(),
            Checkpoint::Seen(c) => c.recorded_at.into(),
        }
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

type AuditEntryConnection = Connection<String, Plain<AuditEntry>, ListInfo<AuditFilter>>;

/// The entry columns a selection of a list of entries shows (cursors, the list's metadata and
/// its access record need only the key; each entry what [`AuditEntry`] declares its fields
/// show). Any other field reads every column.
fn audit_entry_columns(list: &SelectionField<'_>) -> AuditColumns {
    let entry = |columns: AuditColumns, node: &SelectionField<'_>| {
        let mut columns = columns;
        for field in node.selection_set() {
            match AuditEntry::columns_of(field.name()) {
                Some(shown) => columns = columns.with_all(shown),
                None => return AuditColumns::all(),
            }
        }
        columns
    };
    let mut columns = AuditColumns::KEY;
    for field in list.selection_set() {
        columns = match field.name() {
            "__typename" | "pageInfo" | "totalCount" | "filtersApplied" | "metadata" => columns,
            "nodes" => entry(columns, &field),
            "edges" => {
                for edge in field.selection_set() {
                    columns = match edge.name() {
                        "__typename" | "cursor" => columns,
                        "node" => entry(columns, &edge),
                        _ => return AuditColumns::all(),
                    }
                }
                columns
            }
            _ => return AuditColumns::all(),
        };
    }
    columns
}

async fn entries(
    ctx: &Context<'_>,
    filter: AuditFilter,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<AuditEntryConnection> {
    let args = page_args(ListKind::AuditEntries, first, after, last, before)?;
    let columns = audit_entry_columns(&ctx.field());
    let list = facade(ctx)?
        .list_audit_entries(filter, args, columns)
        .await?;
    Ok(connection(
        list.page,
        |e| Plain(AuditEntry(e)),
        ListInfo {
            filter: list.filter,
            metadata: list.metadata,
        },
    ))
}

/// The five audit views of the caller's tenant.
pub struct AuditViews;

paged_object! {
    #[Object] AuditViews;
    /// O1: identity lifecycle (tenant and key events, failed authentication), newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn identity(
        &self,
        ctx: &Context<'_>,
    ) -> Result<AuditEntryConnection> {
        let filter = AuditFilter::only(LedgerCategory::Identity);
        entries(ctx, filter, first, after, last, before).await
    }
    /// O2: authorization decisions, allowed and denied, as stored; optionally one decision.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn authorization(
        &self,
        ctx: &Context<'_>,
        decision: Option<AccessDecision>,
    ) -> Result<AuditEntryConnection> {
        let mut filter = AuditFilter::only(LedgerCategory::Authorization);
        filter.decision = decision;
        entries(ctx, filter, first, after, last, before).await
    }
    /// O3: who viewed or exported which evidence, newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn access(
        &self,
        ctx: &Context<'_>,
    ) -> Result<AuditEntryConnection> {
        let filter = AuditFilter::only(LedgerCategory::Access);
        entries(ctx, filter, first, after, last, before).await
    }
    /// O4: verifies the ledger now: INCREMENTAL (default) from the newest good signed
    /// checkpoint, or FULL from seq 1 with every anchored evidence record re-hashed. Each
    /// verification is recorded in the ledger (once per request and mode).
    #[graphql(complexity = "crate::graphql::INTEGRITY_COST + child_complexity")]
    async fn integrity(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "VerificationMode::Incremental")] mode: VerificationMode,
    ) -> Result<AuditIntegrity> {
        Ok(AuditIntegrity(facade(ctx)?.audit_integrity(mode).await?))
    }
    /// The Ed25519 key that signs this server's checkpoints, as a C2SP verifier key (also
    /// served at /.well-known/runledger/checkpoint-key and printed by `runledger keys public`).
    async fn signing_key(&self, ctx: &Context<'_>) -> Result<SigningKeyInfo> {
        Ok(facade(ctx)?.signing_key()?)
    }
    /// The tenant's signed checkpoints, newest first.
    async fn checkpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = 10,
            validator(minimum = 1, maximum = 100),
            desc = "How many of the newest checkpoints: 1 to 100."
        )]
        first: i32,
    ) -> Result<Vec<Checkpoint>> {
        let rows = facade(ctx)?.checkpoints(first as u64).await?;
        Ok(rows.into_iter().map(Checkpoint::Stored).collect())
    }
    /// RFC 6962 inclusion proof of the entry `seq` in the tree of `treeSize` entries (default:
    /// the newest checkpoint covering it, else the whole ledger).
    #[graphql(complexity = "crate::graphql::INTEGRITY_COST + child_complexity")]
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        seq: i64,
        tree_size: Option<i64>,
    ) -> Result<InclusionProof> {
        Ok(facade(ctx)?.inclusion_proof(seq, tree_size).await?)
    }
    /// RFC 6962 consistency proof that the tree of `fromSize` entries is a prefix of the tree
    /// of `toSize` (default: the whole ledger), e.g. between two checkpoints.
    #[graphql(complexity = "crate::graphql::INTEGRITY_COST + child_complexity")]
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        from_size: i64,
        to_size: Option<i64>,
    ) -> Result<ConsistencyProof> {
        Ok(facade(ctx)?.consistency_proof(from_size, to_size).await?)
    }
    /// O5: compliance exports and their state, newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn exports(
        &self,
        ctx: &Context<'_>,
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

paged_object! {
    #[Object] AuditQuery;
    /// The tenant's audit ledger, newest (highest seq) first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn audit_entries(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
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
