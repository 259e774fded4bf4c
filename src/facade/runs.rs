//! LLM runs: the filtered list and the five depth questions of one run (envelope, trace,
//! governance, replay, export).

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use super::decode::{self, EventColumns, StepColumns};
use super::metadata::{EvidenceMetadata, distinct_sorted};
use super::page::{self, Cursor, ListKind, Page, PageArgs, SortKey};
use super::shared::Rows;
use super::{Facade, Scope, check_range, check_text};
use crate::auth::Permission;
use crate::canonical::{
    canonical_json, hash_json, run_bundle_json, run_json, sha256_hex, step_json,
};
use crate::domain::{
    ExportFormat, ExportStatus, Origin, PolicyDecision, RunStatus, Severity, SourceDomain,
    StepStatus, Timestamp, WindowSeconds,
};
use crate::error::{AppError, AppResult, Context};
use entity::{governance_events, llm_runs, log_exports, system_records, trace_steps};

/// Filters of the run list. Every field narrows the list; absent fields do not filter.
#[derive(Clone, Debug, Default, async_graphql::InputObject)]
#[graphql(name = "LlmRunFilter")]
pub struct RunFilter {
    /// Exactly this run id.
    pub run_id: Option<String>,
    /// Exactly this trace id.
    pub trace_id: Option<String>,
    /// Provider, e.g. `openai`.
    pub provider: Option<String>,
    /// Model, e.g. `gpt-4o`.
    pub model: Option<String>,
    /// Any of these final statuses.
    pub execution_status: Option<Vec<RunStatus>>,
    /// Producer of the record, e.g. `sdk`, `otel`.
    pub source: Option<String>,
    /// Only synthetic (replayed, test) runs, or only real ones.
    pub is_synthetic: Option<bool>,
    /// Runs attributed to this agent.
    pub agent_id: Option<String>,
    /// Runs attributed to this human.
    pub human_actor_id: Option<String>,
    /// Runs started at or after this instant.
    pub started_after: Option<Timestamp>,
    /// Runs started at or before this instant.
    pub started_before: Option<Timestamp>,
}

impl RunFilter {
    pub fn validate(&self) -> AppResult<()> {
        check_text("filter.runId", &self.run_id)?;
        check_text("filter.traceId", &self.trace_id)?;
        check_text("filter.provider", &self.provider)?;
        check_text("filter.model", &self.model)?;
        check_text("filter.source", &self.source)?;
        check_text("filter.agentId", &self.agent_id)?;
        check_text("filter.humanActorId", &self.human_actor_id)?;
        if matches!(&self.execution_status, Some(s) if s.is_empty()) {
            return Err(AppError::bad_input(
                "filter.executionStatus must name at least one status",
            ));
        }
        check_range(
            "filter.startedAfter/startedBefore",
            &self.started_after,
            &self.started_before,
        )
    }

    fn condition(&self, tenant_id: &str) -> Condition {
        use llm_runs::Column as C;
        let mut c = Condition::all().add(C::TenantId.eq(tenant_id));
        let eq = |c: Condition, col: C, v: &Option<String>| match v {
            Some(v) => c.add(col.eq(v.clone())),
            None => c,
        };
        c = eq(c, C::RunId, &self.run_id);
        c = eq(c, C::TraceId, &self.trace_id);
        c = eq(c, C::Provider, &self.provider);
        c = eq(c, C::Model, &self.model);
        c = eq(c, C::Source, &self.source);
        c = eq(c, C::AgentId, &self.agent_id);
        c = eq(c, C::HumanActorId, &self.human_actor_id);
        if let Some(statuses) = &self.execution_status {
            c = c.add(C::ExecutionStatus.is_in(statuses.iter().map(|s| s.as_str())));
        }
        if let Some(s) = self.is_synthetic {
            c = c.add(C::IsSynthetic.eq(s));
        }
        if let Some(t) = self.started_after {
            c = c.add(C::StartedAt.gte(t.0));
        }
        if let Some(t) = self.started_before {
            c = c.add(C::StartedAt.lte(t.0));
        }
        c
    }

    /// The filters that were applied, as the client sees them.
    pub fn applied(&self) -> Value {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        };
        put("runId", json!(self.run_id));
        put("traceId", json!(self.trace_id));
        put("provider", json!(self.provider));
        put("model", json!(self.model));
        put(
            "executionStatus",
            json!(
                self.execution_status
                    .as_ref()
                    .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            ),
        );
        put("source", json!(self.source));
        put("isSynthetic", json!(self.is_synthetic));
        put("agentId", json!(self.agent_id));
        put("humanActorId", json!(self.human_actor_id));
        put(
            "startedAfter",
            json!(
                self.started_after
                    .map(|t| crate::canonical::timestamp(&t.0))
            ),
        );
        put(
            "startedBefore",
            json!(
                self.started_before
                    .map(|t| crate::canonical::timestamp(&t.0))
            ),
        );
        Value::Object(m)
    }
}

/// What the run list is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum RunOrderField {
    /// When the run started.
    #[default]
    StartedAt,
    /// When runledger stored it.
    RecordedAt,
}

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum OrderDirection {
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// Order of the run list; ties are broken by run id in the same direction.
#[derive(Clone, Copy, Debug, Default, async_graphql::InputObject)]
#[graphql(name = "LlmRunOrder")]
pub struct RunOrder {
    #[graphql(default)]
    pub field: RunOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl RunOrder {
    pub fn list_kind(&self) -> ListKind {
        match self.field {
            RunOrderField::StartedAt => ListKind::RunsByStart,
            RunOrderField::RecordedAt => ListKind::RunsByRecorded,
        }
    }
}

/// O1: the canonical record with its checksum.
#[derive(Clone, Debug)]
pub struct RunEnvelope {
    pub run: llm_runs::Model,
    pub canonical: String,
    pub checksum: String,
}

/// O2: the steps in order.
#[derive(Clone, Debug)]
pub struct RunTrace {
    pub run: llm_runs::Model,
    /// The steps, with the columns in `columns` (the other fields hold defaults).
    pub steps: Rows<trace_steps::Model>,
    /// The columns the steps were read with.
    pub columns: StepColumns,
}

/// O3: the policy events of this run.
#[derive(Clone, Debug)]
pub struct RunGovernance {
    pub run: llm_runs::Model,
    /// The events, with the columns in `columns` (the other fields hold defaults).
    pub events: Rows<governance_events::Model>,
    /// The columns the events were read with.
    pub columns: EventColumns,
}

/// Why the inflection point is where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum InflectionReason {
    /// The first step that failed.
    FirstFailedStep,
    /// The first step a policy blocked.
    FirstBlockedStep,
    /// No step failed or was blocked; the earliest BLOCK or WARN policy decision was a BLOCK.
    PolicyBlock,
    /// No step failed or was blocked; the earliest BLOCK or WARN policy decision was a WARN.
    PolicyWarn,
    /// Nothing went wrong; when the run completed.
    RunCompleted,
    /// Nothing went wrong and the run has no completion time; when it started.
    RunStarted,
}

/// The point a replay is centred on.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct Inflection {
    pub timestamp: Timestamp,
    pub reason: InflectionReason,
    /// The step at the inflection, for step reasons.
    pub step_index: Option<i32>,
}

/// Which record a replay event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, async_graphql::Enum)]
pub enum ReplaySource {
    Step,
    Policy,
    System,
}

/// One event of a replay timeline.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct ReplayEvent {
    pub source: ReplaySource,
    pub timestamp: Timestamp,
    /// Step index, for step events.
    pub step_index: Option<i32>,
    /// What happened: the skill, the policy evaluation, or the system event type.
    pub action: String,
    /// How it ended: step status, policy decision, or system severity.
    pub outcome: String,
    /// Id of the underlying record (`<traceId>#<index>` for steps).
    pub record_id: String,
}

/// O4: the merged timeline around the inflection point.
#[derive(Clone, Debug)]
pub struct RunReplay {
    pub run: llm_runs::Model,
    pub inflection: Inflection,
    pub window_seconds: i64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub events: Vec<ReplayEvent>,
}

/// O5: what can be exported and what was.
#[derive(Clone, Debug)]
pub struct RunExport {
    pub run_id: String,
    pub available_formats: Vec<ExportFormat>,
    pub bundle: Value,
    pub bundle_checksum: String,
    pub exports: Rows<log_exports::Model>,
    pub compliance_tags: Vec<String>,
    pub metadata: EvidenceMetadata,
}

impl RunExport {
    /// The newest completed export.
    pub fn latest_completed(&self) -> Option<&log_exports::Model> {
        self.exports
            .iter()
            .find(|e| e.status == ExportStatus::Completed.as_str())
    }
}

/// A page of runs and what produced it.
pub struct RunList {
    pub page: Page<llm_runs::Model>,
    pub filter: RunFilter,
    pub metadata: EvidenceMetadata,
}

/// Which nested data a page of runs will need (decided from the query's selection).
#[derive(Clone, Debug, Default)]
pub struct RunPrefetch {
    /// Policy events, once per set of columns (a governance view reads what it shows; replay,
    /// export and metadata read every column).
    pub governance: Vec<EventColumns>,
    /// Correlated system records and exports: the correlation spine of metadata (and export,
    /// system views).
    pub spine: bool,
    /// Trace steps, once per set of columns (a trace view reads what it shows; replay,
    /// export, inflection and the system views read every column).
    pub steps: Vec<StepColumns>,
    /// Telemetry samples.
    pub telemetry: bool,
    /// Replay windows of these half-widths (replay, system replay and attribution).
    pub windows: Vec<WindowSeconds>,
}

/// Loader keys for every key in `of` and every distinct set in `sets`.
fn keys_per_set<'a, S: Copy + Ord>(
    mut sets: Vec<S>,
    of: impl Iterator<Item = &'a String> + Clone,
) -> Vec<(String, S)> {
    sets.sort();
    sets.dedup();
    sets.iter()
        .flat_map(|set| of.clone().map(move |key| (key.clone(), *set)))
        .collect()
}

/// Reference of a step: `<traceId>#<index>`.
pub fn step_ref(step: &trace_steps::Model) -> String {
    format!("{}#{}", step.trace_id, step.step_index)
}

fn base_metadata(run: &llm_runs::Model, component: &str, domain: SourceDomain) -> EvidenceMetadata {
    let mut m = EvidenceMetadata::new(&run.tenant_id, domain, component).with_actors(
        run.human_actor_id.clone(),
        run.agent_id.clone(),
        run.system_id.clone(),
    );
    m.run_id = Some(run.run_id.clone());
    m.trace_id = run.trace_id.clone();
    // System records correlate to a run through its run id.
    m.correlation_id = Some(run.run_id.clone());
    m.origin = Origin::parse(&run.origin);
    m
}

impl Facade {
    /// The run list, one keyset page.
    pub async fn list_llm_runs(
        &self,
        filter: RunFilter,
        order: RunOrder,
        args: PageArgs,
    ) -> AppResult<RunList> {
        let scope = self.scope(Permission::ReadEvidence)?;
        filter.validate()?;
        let sort = match order.field {
            RunOrderField::StartedAt => llm_runs::Column::StartedAt,
            RunOrderField::RecordedAt => llm_runs::Column::RecordedAt,
        };
        let select = llm_runs::Entity::find().filter(filter.condition(scope.tenant_id));
        let page_select = page::keyset(
            select,
            sort,
            Some(llm_runs::Column::RunId),
            order.direction == OrderDirection::Desc,
            &args,
        );
        let rows = decode::all(page_select, &scope.db.conn)
            .await
            .context("list runs")?;
        // Nested views look runs up by id (replay windows do): the page primes that cache.
        scope
            .loaders
            .runs
            .feed_many(rows.iter().map(|r| (r.run_id.clone(), r.clone())))
            .await;
        let field = order.field;
        let page = page::finish(rows, &args, |r| Cursor {
            key: SortKey::Time(match field {
                RunOrderField::StartedAt => r.started_at,
                RunOrderField::RecordedAt => r.recorded_at,
            }),
            id: r.run_id.clone(),
        });
        let metadata = EvidenceMetadata::new(scope.tenant_id, SourceDomain::Activity, "llm_runs")
            .with_times(
                page.items
                    .iter()
                    .map(|(_, r)| (r.started_at, r.recorded_at)),
            )
            .with_common_origin(page.items.iter().map(|(_, r)| Origin::parse(&r.origin)));
        self.note_list(
            "runs",
            "llm_run_list",
            "llmRuns",
            filter.applied(),
            page.items.iter().map(|(_, r)| r.run_id.clone()).collect(),
        );
        Ok(RunList {
            page,
            filter,
            metadata,
        })
    }

    /// Loads what the nested views of a page of runs need, one statement per kind of data, into
    /// the request's loader caches. Without this, nested loads would be batched only as far as
    /// the resolvers of a page happen to reach their loads within the same batch delay.
    pub async fn prefetch_runs(
        &self,
        runs: &[llm_runs::Model],
        want: RunPrefetch,
    ) -> AppResult<()> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let windows = !want.windows.is_empty();
        if runs.is_empty()
            || !(!want.governance.is_empty()
                || want.spine
                || !want.steps.is_empty()
                || want.telemetry
                || windows)
        {
            return Ok(());
        }
        let run_ids = || runs.iter().map(|r| r.run_id.clone());
        let traces: Vec<String> = runs.iter().filter_map(|r| r.trace_id.clone()).collect();
        let l = scope.loaders;
        let spine = async {
            let governance = async {
                let mut sets = want.governance.clone();
                if windows {
                    sets.push(EventColumns::all());
                }
                let keys = keys_per_set(sets, runs.iter().map(|r| &r.run_id));
                if !keys.is_empty() {
                    l.governance.load_many(keys).await?;
                }
                Ok::<_, AppError>(())
            };
            let correlated = async {
                if want.spine {
                    futures_util::try_join!(
                        l.correlated_system.load_many(run_ids()),
                        l.exports.load_many(run_ids()),
                    )?;
                }
                Ok::<_, AppError>(())
            };
            futures_util::try_join!(governance, correlated)?;
            Ok::<_, AppError>(())
        };
        let steps = async {
            let mut sets = want.steps.clone();
            if windows {
                sets.push(StepColumns::all());
            }
            let keys = keys_per_set(sets, traces.iter());
            if !keys.is_empty() {
                l.steps.load_many(keys).await?;
            }
            Ok::<_, AppError>(())
        };
        let telemetry = async {
            if want.telemetry {
                l.telemetry.load_many(run_ids()).await?;
            }
            Ok::<_, AppError>(())
        };
        futures_util::try_join!(spine, steps, telemetry)?;
        if windows {
            let keys: Vec<(String, i64)> = runs
                .iter()
                .flat_map(|r| want.windows.iter().map(|w| (r.run_id.clone(), w.get())))
                .collect();
            l.system_window.load_many(keys).await?;
        }
        Ok(())
    }

    /// How many runs match the filter (computed only when asked for).
    pub async fn count_llm_runs(&self, filter: &RunFilter) -> AppResult<u64> {
        let scope = self.scope(Permission::ReadEvidence)?;
        llm_runs::Entity::find()
            .filter(filter.condition(scope.tenant_id))
            .count(&scope.db.conn)
            .await
            .context("count runs")
    }

    /// One run of the caller's tenant.
    pub async fn llm_run(&self, run_id: &str) -> AppResult<llm_runs::Model> {
        let scope = self.scope(Permission::ReadEvidence)?;
        scope
            .loaders
            .runs
            .load_one(run_id.to_string())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no run with runId `{run_id}`")))
            .inspect(|_| self.note_read("runs", "llm_run", run_id, "run"))
    }

    async fn steps_of(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
    ) -> AppResult<Rows<trace_steps::Model>> {
        self.steps_with(scope, run, StepColumns::all()).await
    }

    /// The run's steps with `columns` (all of them for every view but a trace's list).
    async fn steps_with(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
        columns: StepColumns,
    ) -> AppResult<Rows<trace_steps::Model>> {
        match &run.trace_id {
            Some(trace) => Ok(scope
                .loaders
                .steps
                .load_one((trace.clone(), columns))
                .await?
                .unwrap_or_default()),
            None => Ok(Rows::default()),
        }
    }

    async fn governance_of(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
    ) -> AppResult<Rows<governance_events::Model>> {
        self.governance_with(scope, run, EventColumns::all()).await
    }

    /// The run's policy events with `columns` (all of them for every view but a governance
    /// list).
    async fn governance_with(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
        columns: EventColumns,
    ) -> AppResult<Rows<governance_events::Model>> {
        Ok(scope
            .loaders
            .governance
            .load_one((run.run_id.clone(), columns))
            .await?
            .unwrap_or_default())
    }

    pub(crate) async fn correlated_system_of(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
    ) -> AppResult<Rows<system_records::Model>> {
        Ok(scope
            .loaders
            .correlated_system
            .load_one(run.run_id.clone())
            .await?
            .unwrap_or_default())
    }

    async fn exports_of(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
    ) -> AppResult<Rows<log_exports::Model>> {
        Ok(scope
            .loaders
            .exports
            .load_one(run.run_id.clone())
            .await?
            .unwrap_or_default())
    }

    /// Run-level metadata: the correlation spine (policies, incidents, latest export) included.
    pub async fn run_metadata(
        &self,
        run: &llm_runs::Model,
        component: &str,
        domain: SourceDomain,
    ) -> AppResult<EvidenceMetadata> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let (governance, system, exports) = futures_util::try_join!(
            self.governance_of(&scope, run),
            self.correlated_system_of(&scope, run),
            self.exports_of(&scope, run),
        )?;
        let mut m = base_metadata(run, component, domain);
        m.policy_ids = distinct_sorted(governance.iter().filter_map(|g| g.policy_id.clone()));
        m.incident_ids = distinct_sorted(
            system
                .iter()
                .filter(|s| Severity::parse(&s.severity).is_some_and(Severity::is_incident))
                .map(|s| s.id.clone()),
        );
        m.export_id = exports.first().map(|e| e.id.clone());
        Ok(m)
    }

    /// O1: the canonical record and its checksum (metadata: [`Facade::envelope_metadata`]).
    pub async fn run_envelope(&self, run: &llm_runs::Model) -> AppResult<RunEnvelope> {
        self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "envelope");
        let canonical = canonical_json(&run_json(run));
        let checksum = sha256_hex(canonical.as_bytes());
        Ok(RunEnvelope {
            run: run.clone(),
            canonical,
            checksum,
        })
    }

    /// The envelope's metadata: the run's, with the record's checksum. Like every view's
    /// metadata it is computed only when asked for (the correlation spine costs three lookups).
    pub async fn envelope_metadata(&self, envelope: &RunEnvelope) -> AppResult<EvidenceMetadata> {
        let run = &envelope.run;
        let mut metadata = self
            .run_metadata(run, "llm_runs", SourceDomain::Activity)
            .await?;
        metadata.occurred_at = Some(Timestamp(run.started_at));
        metadata.recorded_at = Some(Timestamp(run.recorded_at));
        metadata.checksum = Some(envelope.checksum.clone());
        Ok(metadata)
    }

    /// O2: the run's steps in index order, read with `columns`, the ones the caller will show
    /// (metadata: [`Facade::trace_metadata`]).
    pub async fn run_trace(
        &self,
        run: &llm_runs::Model,
        columns: StepColumns,
    ) -> AppResult<RunTrace> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "trace");
        let steps = self.steps_with(&scope, run, columns).await?;
        Ok(RunTrace {
            run: run.clone(),
            steps,
            columns,
        })
    }

    /// The trace's metadata: the run's, the steps' time span and the checksum of the steps
    /// (every column of them, read again if the trace holds fewer).
    pub async fn trace_metadata(&self, trace: &RunTrace) -> AppResult<EvidenceMetadata> {
        // A trace whose metadata is selected reads every column (see the GraphQL side); the
        // second read guards any other caller.
        let steps = if trace.columns == StepColumns::all() {
            trace.steps.clone()
        } else {
            let scope = self.scope(Permission::ReadEvidence)?;
            self.steps_of(&scope, &trace.run).await?
        };
        let mut metadata = self
            .run_metadata(&trace.run, "trace_steps", SourceDomain::Activity)
            .await?
            .with_times(steps.iter().map(|s| (s.occurred_at, s.recorded_at)));
        metadata.checksum = Some(hash_json(&Value::Array(
            steps.iter().map(step_json).collect(),
        )));
        Ok(metadata)
    }

    /// O3: the policy events of this run (and only this run), in time order (metadata:
    /// [`Facade::governance_metadata`]).
    pub async fn run_governance(
        &self,
        run: &llm_runs::Model,
        columns: EventColumns,
    ) -> AppResult<RunGovernance> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "governance");
        let events = self.governance_with(&scope, run, columns).await?;
        Ok(RunGovernance {
            run: run.clone(),
            events,
            columns,
        })
    }

    /// The governance view's metadata: the run's, the events' time span and their checksum
    /// (every column of them, read again if the view holds fewer).
    pub async fn governance_metadata(
        &self,
        governance: &RunGovernance,
    ) -> AppResult<EvidenceMetadata> {
        // As for a trace's metadata: normally read whole already.
        let events = if governance.columns == EventColumns::all() {
            governance.events.clone()
        } else {
            let scope = self.scope(Permission::ReadEvidence)?;
            self.governance_of(&scope, &governance.run).await?
        };
        let mut metadata = self
            .run_metadata(&governance.run, "governance_events", SourceDomain::Policy)
            .await?
            .with_times(events.iter().map(|e| (e.occurred_at, e.recorded_at)));
        metadata.checksum = Some(hash_json(&Value::Array(
            events
                .iter()
                .map(crate::canonical::governance_json)
                .collect(),
        )));
        Ok(metadata)
    }

    /// The inflection point of a run (DESIGN §1).
    pub(crate) async fn inflection(&self, run: &llm_runs::Model) -> AppResult<Inflection> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let (steps, governance) =
            futures_util::try_join!(self.steps_of(&scope, run), self.governance_of(&scope, run))?;
        Ok(inflection_of(run, &steps, &governance))
    }

    /// O4: steps, policy events and system events within ±window of the inflection point.
    pub async fn run_replay(
        &self,
        run: &llm_runs::Model,
        window: WindowSeconds,
    ) -> AppResult<RunReplay> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "replay");
        let (steps, governance) =
            futures_util::try_join!(self.steps_of(&scope, run), self.governance_of(&scope, run))?;
        // After them, so the window's loader finds this run's steps and events in the cache
        // instead of loading them again while the first load is still in flight.
        let system = self.system_around(&scope, run, window).await?;
        let inflection = inflection_of(run, &steps, &governance);
        let (start, end) = window_around(inflection.timestamp.0, window);
        let inside = |t: &DateTime<Utc>| *t >= start && *t <= end;
        let mut events: Vec<ReplayEvent> = Vec::new();
        events.extend(
            steps
                .iter()
                .filter(|s| inside(&s.occurred_at))
                .map(step_event),
        );
        events.extend(
            governance
                .iter()
                .filter(|g| inside(&g.occurred_at))
                .map(policy_event),
        );
        events.extend(system.iter().map(system_event));
        sort_timeline(&mut events);
        Ok(RunReplay {
            run: run.clone(),
            inflection,
            window_seconds: window.get(),
            window_start: start,
            window_end: end,
            events,
        })
    }

    /// The replay's metadata: the run's, at the inflection point.
    pub async fn replay_metadata(&self, replay: &RunReplay) -> AppResult<EvidenceMetadata> {
        let mut metadata = self
            .run_metadata(&replay.run, "replay", SourceDomain::Activity)
            .await?;
        metadata.occurred_at = Some(replay.inflection.timestamp);
        metadata.recorded_at = None;
        Ok(metadata)
    }

    /// System records in the replay window of a run (see `loaders::SystemAroundRun`).
    pub(crate) async fn system_around(
        &self,
        scope: &Scope<'_>,
        run: &llm_runs::Model,
        window: WindowSeconds,
    ) -> AppResult<Rows<system_records::Model>> {
        Ok(scope
            .loaders
            .system_window
            .load_one((run.run_id.clone(), window.get()))
            .await?
            .unwrap_or_default())
    }

    /// O5: formats, the bundle and its checksum, the run's exports, compliance tags.
    pub async fn run_export(&self, run: &llm_runs::Model) -> AppResult<RunExport> {
        let scope = self.scope(Permission::ReadEvidence)?;
        self.note_read("runs", "llm_run", &run.run_id, "export");
        let (steps, governance, exports, mut metadata) = futures_util::try_join!(
            self.steps_of(&scope, run),
            self.governance_of(&scope, run),
            self.exports_of(&scope, run),
            self.run_metadata(run, "log_exports", SourceDomain::Logs)
        )?;
        let frameworks = self.compliance_frameworks().await?;
        let bundle = run_bundle_json(run, &steps, &governance);
        let bundle_checksum = hash_json(&bundle);
        let mut tags = frameworks;
        if !governance.is_empty() {
            tags.push("POLICY_GOVERNED".into());
        }
        if governance
            .iter()
            .any(|g| g.decision == PolicyDecision::Block.as_str())
        {
            tags.push("POLICY_BLOCKED".into());
        }
        if run.human_actor_id.is_some() {
            tags.push("HUMAN_ATTRIBUTED".into());
        }
        if run.is_synthetic {
            tags.push("SYNTHETIC".into());
        }
        if !metadata.incident_ids.is_empty() {
            tags.push("INCIDENT_CORRELATED".into());
        }
        metadata.checksum = Some(bundle_checksum.clone());
        metadata.occurred_at = Some(Timestamp(run.started_at));
        metadata.recorded_at = Some(Timestamp(run.recorded_at));
        Ok(RunExport {
            run_id: run.run_id.clone(),
            available_formats: ExportFormat::ALL.to_vec(),
            bundle,
            bundle_checksum,
            exports,
            compliance_tags: distinct_sorted(tags),
            metadata,
        })
    }
}

/// Inflection point: the first failed or blocked step (by index), else the earliest BLOCK or
/// WARN policy event, else completion, else start.
pub fn inflection_of(
    run: &llm_runs::Model,
    steps: &[trace_steps::Model],
    governance: &[governance_events::Model],
) -> Inflection {
    let first_bad_step = steps
        .iter()
        .filter(|s| {
            s.status == StepStatus::Failed.as_str() || s.status == StepStatus::Blocked.as_str()
        })
        .min_by_key(|s| s.step_index);
    if let Some(s) = first_bad_step {
        let reason = if s.status == StepStatus::Failed.as_str() {
            InflectionReason::FirstFailedStep
        } else {
            InflectionReason::FirstBlockedStep
        };
        return Inflection {
            timestamp: Timestamp(s.occurred_at),
            reason,
            step_index: Some(s.step_index),
        };
    }
    let first_flagged = governance
        .iter()
        .filter(|g| {
            g.decision == PolicyDecision::Block.as_str()
                || g.decision == PolicyDecision::Warn.as_str()
        })
        .min_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
    if let Some(g) = first_flagged {
        let reason = if g.decision == PolicyDecision::Block.as_str() {
            InflectionReason::PolicyBlock
        } else {
            InflectionReason::PolicyWarn
        };
        return Inflection {
            timestamp: Timestamp(g.occurred_at),
            reason,
            step_index: None,
        };
    }
    match run.completed_at {
        Some(t) => Inflection {
            timestamp: Timestamp(t),
            reason: InflectionReason::RunCompleted,
            step_index: None,
        },
        None => Inflection {
            timestamp: Timestamp(run.started_at),
            reason: InflectionReason::RunStarted,
            step_index: None,
        },
    }
}

pub fn window_around(t: DateTime<Utc>, window: WindowSeconds) -> (DateTime<Utc>, DateTime<Utc>) {
    let w = Duration::seconds(window.get());
    (t - w, t + w)
}

fn step_event(s: &trace_steps::Model) -> ReplayEvent {
    ReplayEvent {
        source: ReplaySource::Step,
        timestamp: Timestamp(s.occurred_at),
        step_index: Some(s.step_index),
        action: s.skill_name.clone(),
        outcome: s.status.clone(),
        record_id: step_ref(s),
    }
}

fn policy_event(g: &governance_events::Model) -> ReplayEvent {
    let action = match &g.policy_id {
        Some(p) => format!("{}:{p}", g.event_type),
        None => g.event_type.clone(),
    };
    ReplayEvent {
        source: ReplaySource::Policy,
        timestamp: Timestamp(g.occurred_at),
        step_index: None,
        action,
        outcome: g.decision.clone(),
        record_id: g.id.clone(),
    }
}

pub(crate) fn system_event(s: &system_records::Model) -> ReplayEvent {
    ReplayEvent {
        source: ReplaySource::System,
        timestamp: Timestamp(s.occurred_at),
        step_index: None,
        action: format!("{}:{}", s.component, s.event_type),
        outcome: s.severity.clone(),
        record_id: s.id.clone(),
    }
}

/// Time order; at equal times steps, then policy events, then system events, then by id.
pub(crate) fn sort_timeline(events: &mut [ReplayEvent]) {
    events.sort_by(|a, b| {
        (a.timestamp, a.source, a.step_index, &a.record_id).cmp(&(
            b.timestamp,
            b.source,
            b.step_index,
            &b.record_id,
        ))
    });
}
