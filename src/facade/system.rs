//! System logs: the filtered list of infrastructure records, and per run the snapshot,
//! telemetry, correlated events, replay window and attribution.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use super::decode;
use super::inflection::{Inflection, window_around};
use super::metadata::{EvidenceMetadata, distinct_sorted};
use super::page::{self, Cursor, Page, PageArgs, SortKey};
use super::runs::{ReplayEvent, run_row, sort_timeline, system_event};
use super::shared::Rows;
use super::{Facade, check_range, check_text};
use crate::auth::Permission;
use crate::canonical::{hash_json, system_json};
use crate::domain::{Origin, Severity, SourceDomain, Timestamp, WindowSeconds, read_stored};
use crate::error::{AppError, AppResult, Context};
use crate::ledger::vocabulary::EntityType;
use entity::{llm_runs, system_records, telemetry_samples};

/// Which system records a list covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum SystemScope {
    /// The tenant's own records and the global ones.
    #[default]
    All,
    /// Only the tenant's own records.
    Tenant,
    /// Only global records (shared by every tenant).
    Global,
}

/// Filters of the system record list.
#[derive(Clone, Debug, Default, async_graphql::InputObject)]
#[graphql(name = "SystemRecordFilter")]
pub struct SystemFilter {
    /// Tenant, global, or both (default).
    pub scope: Option<SystemScope>,
    /// Component, e.g. `worker-pool`.
    pub component: Option<String>,
    /// Event type, e.g. `WORKER_RESTART`.
    pub event_type: Option<String>,
    /// Any of these severities.
    pub severity: Option<Vec<Severity>>,
    /// Records correlated to this id (a run id).
    pub correlation_id: Option<String>,
    /// Records caused by this actor or change.
    pub caused_by: Option<String>,
    /// Records that occurred at or after this instant.
    pub occurred_after: Option<Timestamp>,
    /// Records that occurred at or before this instant.
    pub occurred_before: Option<Timestamp>,
}

impl SystemFilter {
    pub fn validate(&self) -> AppResult<()> {
        check_text("filter.component", &self.component)?;
        check_text("filter.eventType", &self.event_type)?;
        check_text("filter.correlationId", &self.correlation_id)?;
        check_text("filter.causedBy", &self.caused_by)?;
        if matches!(&self.severity, Some(s) if s.is_empty()) {
            return Err(AppError::bad_input(
                "filter.severity must name at least one severity",
            ));
        }
        check_range(
            "filter.occurredAfter/occurredBefore",
            &self.occurred_after,
            &self.occurred_before,
        )
    }

    /// Every record the filter selects: any of its owner branches.
    pub(crate) fn condition(&self, tenant_id: &str) -> Condition {
        self.branches(tenant_id)
            .into_iter()
            .map(|(_, branch)| branch)
            .fold(Condition::any(), Condition::add)
    }

    /// The condition split by owner: the tenant's records and the global ones (each with
    /// whether it is the global branch), each one range of the (tenant, time) index that a page
    /// walks in order. As one `OR`, PostgreSQL reads both owners' rows in full and sorts them (a
    /// quarter of a second with 70,000 records).
    fn branches(&self, tenant_id: &str) -> Vec<(bool, Condition)> {
        use system_records::Column as C;
        let tenant = || (false, Condition::all().add(C::TenantId.eq(tenant_id)));
        let global = || (true, Condition::all().add(C::TenantId.is_null()));
        let owners = match self.scope.unwrap_or_default() {
            SystemScope::All => vec![tenant(), global()],
            SystemScope::Tenant => vec![tenant()],
            SystemScope::Global => vec![global()],
        };
        owners
            .into_iter()
            .map(|(is_global, owner)| (is_global, self.scoped(owner)))
            .collect()
    }

    /// Whether the scope takes the tenant's own records, and the global ones.
    pub(crate) fn owners(&self) -> (bool, bool) {
        match self.scope.unwrap_or_default() {
            SystemScope::All => (true, true),
            SystemScope::Tenant => (true, false),
            SystemScope::Global => (false, true),
        }
    }

    /// Whether a record of an owner the scope takes passes every other filter:
    /// [`SystemFilter::scoped`] for a row in memory (a live subscription's feed).
    pub(crate) fn matches(&self, s: &system_records::Model) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.component, Some(&s.component))
            && eq(&self.event_type, Some(&s.event_type))
            && eq(&self.correlation_id, s.correlation_id.as_deref())
            && eq(&self.caused_by, s.caused_by.as_deref())
            && self
                .severity
                .as_ref()
                .is_none_or(|v| v.iter().any(|v| v.as_str() == s.severity))
            && self.occurred_after.is_none_or(|t| s.occurred_at >= t.0)
            && self.occurred_before.is_none_or(|t| s.occurred_at <= t.0)
    }

    /// `owner` and every other filter.
    fn scoped(&self, owner: Condition) -> Condition {
        use system_records::Column as C;
        let mut c = Condition::all().add(owner);
        for (col, v) in [
            (C::Component, &self.component),
            (C::EventType, &self.event_type),
            (C::CorrelationId, &self.correlation_id),
            (C::CausedBy, &self.caused_by),
        ] {
            if let Some(v) = v {
                c = c.add(col.eq(v.clone()));
            }
        }
        if let Some(s) = &self.severity {
            c = c.add(C::Severity.is_in(s.iter().map(|s| s.as_str())));
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
        let mut m = serde_json::Map::new();
        let ts = |t: &Option<Timestamp>| json!(t.map(|t| crate::canonical::timestamp(&t.0)));
        for (k, v) in [
            (
                "scope",
                json!(self.scope.map(|s| format!("{s:?}").to_uppercase())),
            ),
            ("component", json!(self.component)),
            ("eventType", json!(self.event_type)),
            (
                "severity",
                json!(
                    self.severity
                        .as_ref()
                        .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                ),
            ),
            ("correlationId", json!(self.correlation_id)),
            ("causedBy", json!(self.caused_by)),
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

/// Where a cursor of the system record list points: the list is ordered by time, id and owner
/// (the global record first when a tenant's record shares its time and id), so a cursor names
/// the owner after its id, behind [`OWNER_MARK`]. Stored ids never hold control characters
/// (ingest refuses them), so the mark cannot be part of one. A cursor without it (issued before
/// ids were scoped per owner, when no two records shared an id) compares as it did then.
struct ListPosition {
    occurred_at: DateTime<Utc>,
    id: String,
    /// Whether the cursor's row is global; `None` for a cursor without an owner.
    global: Option<bool>,
}

/// Separates a system record's id from its owner (`g` or `t`) in a list cursor.
const OWNER_MARK: char = '\u{1f}';

impl ListPosition {
    fn of(cursor: &Cursor) -> ListPosition {
        let (id, global) = match cursor.id.rsplit_once(OWNER_MARK) {
            Some((id, "g")) => (id, Some(true)),
            Some((id, "t")) => (id, Some(false)),
            _ => (cursor.id.as_str(), None),
        };
        let occurred_at = match cursor.key {
            SortKey::Time(t) => t,
            // `Cursor::decode` gives this list only time keys.
            SortKey::Int(_) => DateTime::<Utc>::MIN_UTC,
        };
        ListPosition {
            occurred_at,
            id: id.to_string(),
            global,
        }
    }

    fn cursor_id(r: &system_records::Model) -> String {
        let owner = if r.tenant_id.is_none() { "g" } else { "t" };
        format!("{}{OWNER_MARK}{owner}", r.id)
    }

    /// The rows of one owner's branch that come after this position in the scan (newest
    /// first, or oldest first when walking backward). Ascending, the global record precedes a
    /// tenant's record with the same time and id: the branch that follows the cursor's owner
    /// includes that time and id, the other does not.
    fn after(&self, branch_global: bool, backward: bool) -> Condition {
        use sea_orm::sea_query::ExprTrait;
        use system_records::Column as C;
        let lhs = Expr::tuple([Expr::col(C::OccurredAt), Expr::col(C::Id)]);
        let rhs = Expr::tuple([Expr::val(self.occurred_at), Expr::val(self.id.clone())]);
        let inclusive = match self.global {
            Some(cursor_global) if backward => cursor_global && !branch_global,
            Some(cursor_global) => !cursor_global && branch_global,
            None => false,
        };
        Condition::all().add(match (backward, inclusive) {
            (false, false) => lhs.lt(rhs),
            (false, true) => lhs.lte(rhs),
            (true, false) => lhs.gt(rhs),
            (true, true) => lhs.gte(rhs),
        })
    }
}

/// A page of system records.
pub struct SystemList {
    pub page: Page<system_records::Model>,
    pub filter: SystemFilter,
    pub metadata: EvidenceMetadata,
}

/// O1: the environment baseline at run start.
pub struct SystemSnapshot {
    pub run_id: String,
    /// The earliest record correlated to the run; none when nothing was recorded.
    pub record: Option<system_records::Model>,
    pub metadata: EvidenceMetadata,
}

/// Whether telemetry exists for a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum TelemetryStatus {
    Collected,
    NotCollected,
}

/// Summary of one metric over a run.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct MetricSummary {
    pub metric: String,
    pub unit: Option<String>,
    pub count: i32,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// O2: samples during the run, or an honest "not collected".
pub struct SystemTelemetry {
    pub run_id: String,
    pub status: TelemetryStatus,
    pub reason: Option<String>,
    pub samples: Rows<telemetry_samples::Model>,
    pub metrics: Vec<MetricSummary>,
    pub metadata: EvidenceMetadata,
}

/// O3 (events) and O5 (attribution) share this shape.
pub struct SystemEvents {
    pub run_id: String,
    pub events: Rows<system_records::Model>,
    pub metadata: EvidenceMetadata,
}

/// O4: system events in the window around the run's inflection point.
pub struct SystemReplay {
    pub run_id: String,
    pub inflection: Inflection,
    pub window_seconds: i64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub events: Vec<ReplayEvent>,
    pub metadata: EvidenceMetadata,
}

/// Events of one cause.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct Cause {
    /// Who or what caused the events.
    pub caused_by: String,
    pub event_count: i32,
    /// Components affected, sorted.
    pub components: Vec<String>,
    /// The most severe severity among the events.
    pub max_severity: Severity,
}

/// O5: who or what caused the system events around a run.
pub struct SystemAttribution {
    pub run_id: String,
    pub window_seconds: i64,
    pub events: Vec<system_records::Model>,
    pub causes: Vec<Cause>,
    pub metadata: EvidenceMetadata,
}

/// How a stored system record is named in errors about it.
fn record_row(r: &system_records::Model) -> String {
    format!(
        "system_records {}/{}",
        r.tenant_id.as_deref().unwrap_or("(global)"),
        r.id
    )
}

/// A stored record's severity (INTERNAL when it is not one).
fn severity_of(r: &system_records::Model) -> AppResult<Severity> {
    read_stored(&r.severity, || record_row(r))
}

/// Metadata of a set of system records; a view's also carries the checksum of the records (a
/// list page's does not: the page is not a unit of evidence).
fn collection_metadata(
    tenant_id: &str,
    run: Option<&llm_runs::Model>,
    component: &str,
    records: &[system_records::Model],
) -> AppResult<EvidenceMetadata> {
    let mut m = list_metadata(tenant_id, run, component, records)?;
    if !records.is_empty() {
        m.checksum = Some(hash_json(&Value::Array(
            records.iter().map(system_json).collect(),
        )));
    }
    Ok(m)
}

fn list_metadata(
    tenant_id: &str,
    run: Option<&llm_runs::Model>,
    component: &str,
    records: &[system_records::Model],
) -> AppResult<EvidenceMetadata> {
    let severities = records
        .iter()
        .map(severity_of)
        .collect::<AppResult<Vec<_>>>()?;
    let origins = records
        .iter()
        .map(|r| read_stored::<Origin>(&r.origin, || record_row(r)).map(Some))
        .collect::<AppResult<Vec<_>>>()?;
    let incidents = severities.iter().copied().any(Severity::is_incident);
    let domain = if incidents {
        SourceDomain::Incidents
    } else {
        SourceDomain::System
    };
    let mut m = EvidenceMetadata::new(tenant_id, domain, component)
        .with_times(records.iter().map(|r| (r.occurred_at, r.recorded_at)))
        .with_common_origin(origins);
    let causes: Vec<String> = distinct_sorted(records.iter().filter_map(|r| r.caused_by.clone()));
    if causes.len() == 1 {
        m = m.with_actors(None, None, causes.into_iter().next());
    }
    m.incident_ids = distinct_sorted(
        records
            .iter()
            .zip(&severities)
            .filter(|(_, s)| s.is_incident())
            .map(|(r, _)| r.id.clone()),
    );
    if let Some(run) = run {
        m.run_id = Some(run.run_id.clone());
        m.trace_id = run.trace_id.clone();
        m.correlation_id = Some(run.run_id.clone());
    }
    Ok(m)
}

impl Facade {
    /// The system record list, newest first.
    pub async fn list_system_records(
        &self,
        filter: SystemFilter,
        args: PageArgs,
    ) -> AppResult<SystemList> {
        let scope = self.scope(Permission::ReadEvidence)?;
        filter.validate()?;
        // One page per owner (tenant, global), merged: each is an ordered index range.
        // Ordered by owner first: constant within a branch, and PostgreSQL only walks the index
        // in order under `tenant_id IS NULL` when the ORDER BY names tenant_id.
        let owner_order = if args.backward {
            sea_orm::Order::Asc
        } else {
            sea_orm::Order::Desc
        };
        // The cursor's position is applied per branch (below); `keyset` adds order and limit.
        let position = args.cursor.as_ref().map(ListPosition::of);
        let unbounded = PageArgs {
            cursor: None,
            ..args.clone()
        };
        // Both pages are read by one statement (one round trip, one connection).
        let pages = filter
            .branches(scope.tenant_id)
            .into_iter()
            .map(|(is_global, owner)| {
                let mut select = system_records::Entity::find()
                    .filter(owner)
                    .order_by(system_records::Column::TenantId, owner_order.clone());
                if let Some(position) = &position {
                    select = select.filter(position.after(is_global, args.backward));
                }
                page::keyset(
                    select,
                    system_records::Column::OccurredAt,
                    Some(system_records::Column::Id),
                    true,
                    &unbounded,
                )
            });
        let mut rows = decode::union_all(pages.collect(), &scope.db.conn)
            .await
            .context("list system records")?;
        // The scan order: newest first, unless walking backward (owner last: ids are scoped per
        // owner, so a tenant's record and a global one may share time and id).
        rows.sort_by(|a, b| {
            (a.occurred_at, &a.id, &a.tenant_id).cmp(&(b.occurred_at, &b.id, &b.tenant_id))
        });
        if !args.backward {
            rows.reverse();
        }
        rows.truncate(args.size as usize + 1);
        let page = page::finish(rows, &args, |r| Cursor {
            key: SortKey::Time(r.occurred_at),
            id: ListPosition::cursor_id(r),
        });
        let records: Vec<system_records::Model> =
            page.items.iter().map(|(_, r)| r.clone()).collect();
        let metadata = list_metadata(scope.tenant_id, None, "system_records", &records)?;
        self.note_list(
            "system",
            EntityType::SystemRecordList,
            "systemRecords",
            filter.applied(),
            records.iter().map(|r| r.id.clone()).collect(),
        );
        Ok(SystemList {
            page,
            filter,
            metadata,
        })
    }

    pub async fn count_system_records(&self, filter: &SystemFilter) -> AppResult<u64> {
        let scope = self.scope(Permission::ReadEvidence)?;
        system_records::Entity::find()
            .filter(filter.condition(scope.tenant_id))
            .count(&scope.db.conn)
            .await
            .context("count system records")
    }

    /// O1: the earliest record correlated to the run.
    pub async fn system_snapshot(&self, run: &llm_runs::Model) -> AppResult<SystemSnapshot> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("system", EntityType::LlmRun, &run.run_id, "system.snapshot");
        let records = self.correlated_system_of(&scope, run).await?;
        let record = records.first().cloned();
        let mut metadata = collection_metadata(
            scope.tenant_id,
            Some(run),
            "system_records",
            &records[..records.len().min(1)],
        )?;
        if let Some(r) = &record {
            metadata.checksum = Some(hash_json(&system_json(r)));
        }
        Ok(SystemSnapshot {
            run_id: run.run_id.clone(),
            record,
            metadata,
        })
    }

    /// O2: telemetry samples of the run, summarized per metric.
    pub async fn system_telemetry(&self, run: &llm_runs::Model) -> AppResult<SystemTelemetry> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read(
            "system",
            EntityType::LlmRun,
            &run.run_id,
            "system.telemetry",
        );
        let samples = scope
            .loaders
            .telemetry
            .load_one(run.run_id.clone())
            .await?
            .unwrap_or_default();
        let mut by_metric: BTreeMap<&str, (Option<String>, Vec<f64>)> = BTreeMap::new();
        for s in samples.iter() {
            let entry = by_metric
                .entry(s.metric.as_str())
                .or_insert_with(|| (s.unit.clone(), Vec::new()));
            entry.1.push(s.value);
        }
        let metrics = by_metric
            .into_iter()
            .map(|(metric, (unit, values))| MetricSummary {
                metric: metric.to_string(),
                unit,
                count: values.len() as i32,
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                mean: values.iter().sum::<f64>() / values.len() as f64,
            })
            .collect();
        let (status, reason) = if samples.is_empty() {
            (
                TelemetryStatus::NotCollected,
                Some(format!(
                    "no telemetry samples were recorded for run `{}`: its producer did not send any",
                    run.run_id
                )),
            )
        } else {
            (TelemetryStatus::Collected, None)
        };
        let mut metadata =
            EvidenceMetadata::new(scope.tenant_id, SourceDomain::System, "telemetry_samples")
                .with_times(samples.iter().map(|s| (s.sampled_at, s.recorded_at)))
                .with_actors(None, None, run.system_id.clone());
        metadata.run_id = Some(run.run_id.clone());
        metadata.trace_id = run.trace_id.clone();
        metadata.correlation_id = Some(run.run_id.clone());
        metadata.origin = Some(read_stored(&run.origin, || run_row(run))?);
        if !samples.is_empty() {
            metadata.checksum = Some(hash_json(&Value::Array(
                samples
                    .iter()
                    .map(crate::canonical::telemetry_json)
                    .collect(),
            )));
        }
        Ok(SystemTelemetry {
            run_id: run.run_id.clone(),
            status,
            reason,
            samples,
            metrics,
            metadata,
        })
    }

    /// O3: infrastructure events correlated to the run.
    pub async fn system_events(&self, run: &llm_runs::Model) -> AppResult<SystemEvents> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("system", EntityType::LlmRun, &run.run_id, "system.events");
        let events = self.correlated_system_of(&scope, run).await?;
        let metadata = collection_metadata(scope.tenant_id, Some(run), "system_records", &events)?;
        Ok(SystemEvents {
            run_id: run.run_id.clone(),
            events,
            metadata,
        })
    }

    /// O4: system events (tenant and global) in the window around the inflection point.
    pub async fn system_replay(
        &self,
        run: &llm_runs::Model,
        window: WindowSeconds,
    ) -> AppResult<SystemReplay> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("system", EntityType::LlmRun, &run.run_id, "system.replay");
        let (inflection, records) = futures_util::try_join!(
            self.inflection(run),
            self.system_around(&scope, run, window)
        )?;
        let (start, end) = window_around(inflection.timestamp.0, window);
        let mut metadata =
            collection_metadata(scope.tenant_id, Some(run), "system_records", &records)?;
        metadata.occurred_at = Some(inflection.timestamp);
        let mut events: Vec<ReplayEvent> = records.iter().map(system_event).collect();
        sort_timeline(&mut events);
        Ok(SystemReplay {
            run_id: run.run_id.clone(),
            inflection,
            window_seconds: window.get(),
            window_start: start,
            window_end: end,
            events,
            metadata,
        })
    }

    /// O5: the causes of the system events correlated to the run or inside its replay window.
    pub async fn system_attribution(
        &self,
        run: &llm_runs::Model,
        window: WindowSeconds,
    ) -> AppResult<SystemAttribution> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read(
            "system",
            EntityType::LlmRun,
            &run.run_id,
            "system.attribution",
        );
        let (correlated, windowed) = futures_util::try_join!(
            self.correlated_system_of(&scope, run),
            self.system_around(&scope, run, window)
        )?;
        let mut events: Vec<system_records::Model> = correlated.to_vec();
        for r in windowed.iter() {
            // Ids are scoped per owner: a tenant's record and a global one may share one.
            if !events
                .iter()
                .any(|e| e.id == r.id && e.tenant_id == r.tenant_id)
            {
                events.push(r.clone());
            }
        }
        events.retain(|e| e.caused_by.is_some());
        events.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        let mut by_cause: BTreeMap<String, Vec<&system_records::Model>> = BTreeMap::new();
        for e in &events {
            if let Some(c) = &e.caused_by {
                by_cause.entry(c.clone()).or_default().push(e);
            }
        }
        let mut causes = Vec::with_capacity(by_cause.len());
        for (caused_by, list) in by_cause {
            let severities = list
                .iter()
                .map(|e| severity_of(e))
                .collect::<AppResult<Vec<_>>>()?;
            causes.push(Cause {
                event_count: list.len() as i32,
                components: distinct_sorted(list.iter().map(|e| e.component.clone())),
                max_severity: severities.into_iter().max().unwrap_or(Severity::Info),
                caused_by,
            });
        }
        let metadata = collection_metadata(scope.tenant_id, Some(run), "system_records", &events)?;
        Ok(SystemAttribution {
            run_id: run.run_id.clone(),
            window_seconds: window.get(),
            events,
            causes,
            metadata,
        })
    }
}
