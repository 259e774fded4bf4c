//! GraphQL surface of the system-logs topic: the record list and, per run, snapshot,
//! telemetry, events, replay and attribution.

use crate::domain::Timestamp;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Json, Object, Result};

use super::common::{ListInfo, NodeKind, connection, facade, global_id, page_args, paged_object};
use super::plain::Plain;
use super::rows::{row_type, stored, view_type};
use crate::domain::{Severity, WindowSeconds};
use crate::facade::EvidenceMetadata;
use crate::facade::inflection::Inflection;
use crate::facade::page::ListKind;
use crate::facade::runs::ReplayEvent;
use crate::facade::system::{
    Cause, MetricSummary, SystemAttribution as Attribution, SystemEvents as Events, SystemFilter,
    SystemReplay as Replay, SystemSnapshot as Snapshot, SystemTelemetry as Telemetry,
    TelemetryStatus,
};
use entity::{llm_runs, system_records, telemetry_samples};

/// An infrastructure event: global (shared by every tenant) or the tenant's own.
#[derive(Clone)]
pub struct SystemRecord(pub system_records::Model);

/// The record's global id. Ids are scoped per owner, so a global record's carries the marker
/// [`GLOBAL_OWNER`] after its id; a tenant's record's is its id alone.
fn record_node_id(r: &system_records::Model) -> ID {
    match r.tenant_id {
        Some(_) => global_id(NodeKind::SystemRecord, &[&r.id]),
        None => global_id(NodeKind::SystemRecord, &[&r.id, GLOBAL_OWNER]),
    }
}

row_type! {
    SystemRecord(system_records::Model) as r in system_records, names: system_record_field,
        key: [r.tenant_id.as_deref().unwrap_or(GLOBAL_OWNER), r.id],
        node: [Id, TenantId] => record_node_id(r);
    plain {
        /// The record's own id: unique per owner (its tenant, or the global records), so a
        /// tenant's record and a global one may share it.
        record_id "recordId": &str [Id] => &r.id;
        /// Owning tenant; null for a global record.
        tenant_id "tenantId": Option<&str> [TenantId] => r.tenant_id.as_deref();
        /// Whether the record is global.
        is_global "isGlobal": bool [TenantId] => r.tenant_id.is_none();
        /// The ledger that anchors the record: the owning tenant's, or `_platform` (the platform
        /// ledger) for a global record.
        ledger "ledger": &str [TenantId] => anchor_ledger(r);
        /// Entity id of the `EVIDENCE_BATCH_ANCHORED` entry of that ledger whose Merkle root
        /// covers the record.
        anchor_id "anchorId": Option<&str> [AnchorId] => r.anchor_id.as_deref();
        component "component": &str [Component] => &r.component;
        event_type "eventType": &str [EventType] => &r.event_type;
        severity "severity": Result<Severity> [Severity] => stored(&r.severity, || SystemRecord::row_key(r));
        summary "summary": &str [Summary] => &r.summary;
        /// Structured details, as JSON.
        details "details": Option<Json<serde_json::Value>> [Details] opaque
            => r.details.as_deref().and_then(|d| serde_json::from_str(d).ok()).map(Json);
        /// Who or what caused the event (a deploy, an operator, an autoscaler…).
        caused_by "causedBy": Option<&str> [CausedBy] => r.caused_by.as_deref();
        /// Correlation id (a run id) linking the event to a run.
        correlation_id "correlationId": Option<&str> [CorrelationId] => r.correlation_id.as_deref();
        occurred_at "occurredAt": Timestamp [OccurredAt] => Timestamp(r.occurred_at);
        recorded_at "recordedAt": Timestamp [RecordedAt] => Timestamp(r.recorded_at);
    }
}

/// The owner part of a global system record's node id.
pub const GLOBAL_OWNER: &str = "global";

/// The ledger that anchors a system record.
fn anchor_ledger(r: &system_records::Model) -> &str {
    r.tenant_id
        .as_deref()
        .unwrap_or(crate::ledger::PLATFORM_LEDGER)
}

fn records(list: &[system_records::Model]) -> Vec<Plain<SystemRecord>> {
    list.iter()
        .cloned()
        .map(|r| Plain(SystemRecord(r)))
        .collect()
}

/// The system-logs view of one run.
pub struct SystemRun(pub llm_runs::Model);

view_type! {
    SystemRun, names: system_run_field;
    async fn run_id["runId"](&self) -> &str {
        &self.0.run_id
    }
    /// O1: the environment baseline at run start (earliest correlated record).
    async fn snapshot["snapshot"](&self, ctx: &Context<'_>) -> Result<SystemSnapshot> {
        Ok(SystemSnapshot(facade(ctx)?.system_snapshot(&self.0).await?))
    }
    /// O2: telemetry samples during the run, or an honest NOT_COLLECTED.
    async fn telemetry["telemetry"](&self, ctx: &Context<'_>) -> Result<SystemTelemetry> {
        Ok(SystemTelemetry(
            facade(ctx)?.system_telemetry(&self.0).await?,
        ))
    }
    /// O3: infrastructure events correlated to the run.
    async fn events["events"](&self, ctx: &Context<'_>) -> Result<SystemEvents> {
        Ok(SystemEvents(facade(ctx)?.system_events(&self.0).await?))
    }
    /// O4: system events within ±`windowSeconds` (default 30) of the run's inflection point.
    async fn replay["replay"](&self, ctx: &Context<'_>, window_seconds: Option<i32>) -> Result<SystemReplay> {
        let window = WindowSeconds::parse(window_seconds)?;
        Ok(SystemReplay(
            facade(ctx)?.system_replay(&self.0, window).await?,
        ))
    }
    /// O5: who or what caused the system events around the run.
    async fn attribution["attribution"](
        &self,
        ctx: &Context<'_>,
        window_seconds: Option<i32>,
    ) -> Result<SystemAttribution> {
        let window = WindowSeconds::parse(window_seconds)?;
        Ok(SystemAttribution(
            facade(ctx)?.system_attribution(&self.0, window).await?,
        ))
    }
}

/// O1: environment snapshot at run start.
pub struct SystemSnapshot(Snapshot);

#[Object]
impl SystemSnapshot {
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    /// Whether any record is correlated to the run.
    async fn found(&self) -> bool {
        self.0.record.is_some()
    }
    /// The earliest correlated record; null when none was recorded.
    async fn record(&self) -> Option<SystemRecord> {
        self.0.record.clone().map(SystemRecord)
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// One telemetry sample.
pub struct TelemetrySample(telemetry_samples::Model);

row_type! {
    TelemetrySample(telemetry_samples::Model) as t in telemetry_samples,
        names: telemetry_sample_field, key: [t.tenant_id, t.id];
    plain {
        sample_id "sampleId": &str [Id] => &t.id;
        sampled_at "sampledAt": Timestamp [SampledAt] => Timestamp(t.sampled_at);
        metric "metric": &str [Metric] => &t.metric;
        value "value": f64 [Value] => t.value;
        unit "unit": Option<&str> [Unit] => t.unit.as_deref();
    }
}

/// O2: telemetry of a run.
pub struct SystemTelemetry(Telemetry);

#[Object]
impl SystemTelemetry {
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    async fn status(&self) -> TelemetryStatus {
        self.0.status
    }
    /// Why there is no telemetry, when there is none.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Metrics that have samples, sorted.
    async fn available_metrics(&self) -> Vec<&str> {
        self.0.metrics.iter().map(|m| m.metric.as_str()).collect()
    }
    /// Per-metric summary.
    async fn metrics(&self) -> &[MetricSummary] {
        &self.0.metrics
    }
    /// Samples in time order.
    async fn samples(&self) -> Vec<TelemetrySample> {
        self.0
            .samples
            .iter()
            .cloned()
            .map(TelemetrySample)
            .collect()
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// O3: infrastructure events correlated to a run.
pub struct SystemEvents(Events);

#[Object]
impl SystemEvents {
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    /// Events in time order.
    async fn events(&self) -> Vec<Plain<SystemRecord>> {
        records(&self.0.events)
    }
    async fn total_events(&self) -> i32 {
        self.0.events.len() as i32
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// O4: system events in the replay window of a run.
pub struct SystemReplay(Replay);

#[Object]
impl SystemReplay {
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    async fn inflection(&self) -> &Inflection {
        &self.0.inflection
    }
    async fn window_seconds(&self) -> i64 {
        self.0.window_seconds
    }
    async fn window_start(&self) -> Timestamp {
        self.0.window_start.into()
    }
    async fn window_end(&self) -> Timestamp {
        self.0.window_end.into()
    }
    /// System events in the window, in time order.
    async fn events(&self) -> &[ReplayEvent] {
        &self.0.events
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

/// O5: attribution of the system events around a run.
pub struct SystemAttribution(Attribution);

#[Object]
impl SystemAttribution {
    async fn run_id(&self) -> &str {
        &self.0.run_id
    }
    async fn window_seconds(&self) -> i64 {
        self.0.window_seconds
    }
    /// Events with a known cause, correlated to the run or inside its window, in time order.
    async fn items(&self) -> Vec<Plain<SystemRecord>> {
        records(&self.0.events)
    }
    async fn total(&self) -> i32 {
        self.0.events.len() as i32
    }
    /// Events grouped by cause.
    async fn causes(&self) -> &[Cause] {
        &self.0.causes
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.0.metadata
    }
}

#[derive(Default)]
pub struct SystemQuery;

paged_object! {
    #[Object] SystemQuery;
    /// System records visible to the caller's tenant (its own and global), newest first.
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn system_records(
        &self,
        ctx: &Context<'_>,
        filter: Option<SystemFilter>,
    ) -> Result<Connection<String, Plain<SystemRecord>, ListInfo<SystemFilter>>> {
        let args = page_args(ListKind::SystemRecords, first, after, last, before)?;
        let list = facade(ctx)?
            .list_system_records(filter.unwrap_or_default(), args)
            .await?;
        Ok(connection(
            list.page,
            |r| Plain(SystemRecord(r)),
            ListInfo {
                filter: list.filter,
                metadata: list.metadata,
            },
        ))
    }

    /// The system-logs view of one run; NOT_FOUND when the tenant has no such run.
    async fn system_run(&self, ctx: &Context<'_>, run_id: String) -> Result<SystemRun> {
        Ok(SystemRun(facade(ctx)?.llm_run(&run_id).await?))
    }

    /// Infrastructure attribution around one run (same as `systemRun { attribution }`).
    async fn system_audit(
        &self,
        ctx: &Context<'_>,
        run_id: String,
        window_seconds: Option<i32>,
    ) -> Result<SystemAttribution> {
        let window = WindowSeconds::parse(window_seconds)?;
        let f = facade(ctx)?;
        let run = f.llm_run(&run_id).await?;
        Ok(SystemAttribution(f.system_attribution(&run, window).await?))
    }
}
