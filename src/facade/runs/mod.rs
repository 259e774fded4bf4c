//! LLM runs: the filtered list, one run and the rows every view of a run reads (here), and
//! the five depth questions of one run by concern: `views` (envelope, trace, governance),
//! `replay`, `export`; `prefetch` loads what a page of runs will show. The inflection point a
//! replay is centred on is [`super::inflection`].

mod export;
mod prefetch;
mod replay;
mod sessions;
mod usage;
mod views;

pub use export::RunExport;
pub use prefetch::RunPrefetch;
pub use replay::{ReplayEvent, ReplaySource, RunReplay};
pub(crate) use replay::{sort_timeline, system_event};
pub use sessions::{OpenTrace, Session};
pub use usage::RunUsage;
pub use views::{RunEnvelope, RunGovernance, RunTrace};

use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use super::decode::{self, EventColumns, StepColumns};
use super::metadata::{EvidenceMetadata, distinct_sorted};
use super::page::{self, Cursor, ListKind, Page, PageArgs, SortKey};
use super::shared::Rows;
use super::{Facade, Scope, check_range, check_text};
use crate::auth::Permission;
use crate::domain::{Origin, RunStatus, Severity, SourceDomain, Timestamp, read_stored};
use crate::error::{AppError, AppResult, Context};
use crate::ledger::vocabulary::EntityType;
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
    /// Runs of this session (conversation).
    pub session_id: Option<String>,
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
        check_text("filter.sessionId", &self.session_id)?;
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

    pub(crate) fn condition(&self, tenant_id: &str) -> Condition {
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
        c = eq(c, C::SessionId, &self.session_id);
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

    /// Whether a run passes the filter: [`RunFilter::condition`] for a row in memory (a live
    /// subscription filters the runs its feed read once for every subscriber).
    pub(crate) fn matches(&self, r: &llm_runs::Model) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.run_id, Some(&r.run_id))
            && eq(&self.trace_id, r.trace_id.as_deref())
            && eq(&self.provider, Some(&r.provider))
            && eq(&self.model, Some(&r.model))
            && eq(&self.source, Some(&r.source))
            && eq(&self.agent_id, r.agent_id.as_deref())
            && eq(&self.human_actor_id, r.human_actor_id.as_deref())
            && eq(&self.session_id, r.session_id.as_deref())
            && self
                .execution_status
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s.as_str() == r.execution_status))
            && self.is_synthetic.is_none_or(|s| s == r.is_synthetic)
            && self.started_after.is_none_or(|t| r.started_at >= t.0)
            && self.started_before.is_none_or(|t| r.started_at <= t.0)
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
        put("sessionId", json!(self.session_id));
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

/// A page of runs and what produced it.
pub struct RunList {
    pub page: Page<llm_runs::Model>,
    pub filter: RunFilter,
    pub metadata: EvidenceMetadata,
}

/// Reference of a step: `<traceId>#<index>`.
pub fn step_ref(step: &trace_steps::Model) -> String {
    format!("{}#{}", step.trace_id, step.step_index)
}

/// How a stored run is named in errors about it.
pub(crate) fn run_row(run: &llm_runs::Model) -> String {
    format!("llm_runs {}/{}", run.tenant_id, run.run_id)
}

fn base_metadata(
    run: &llm_runs::Model,
    component: &str,
    domain: SourceDomain,
) -> AppResult<EvidenceMetadata> {
    let mut m = EvidenceMetadata::new(&run.tenant_id, domain, component).with_actors(
        run.human_actor_id.clone(),
        run.agent_id.clone(),
        run.system_id.clone(),
    );
    m.run_id = Some(run.run_id.clone());
    m.trace_id = run.trace_id.clone();
    // System records correlate to a run through its run id.
    m.correlation_id = Some(run.run_id.clone());
    m.origin = Some(read_stored(&run.origin, || run_row(run))?);
    Ok(m)
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
            .with_common_origin(
                page.items
                    .iter()
                    .map(|(_, r)| read_stored::<Origin>(&r.origin, || run_row(r)).map(Some))
                    .collect::<AppResult<Vec<_>>>()?,
            );
        self.note_list(
            "runs",
            EntityType::LlmRunList,
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

    /// How many runs match the filter (computed only when asked for).
    pub async fn count_llm_runs(&self, filter: &RunFilter) -> AppResult<u64> {
        let scope = self.scope(Permission::ReadEvidence)?;
        if let Some(n) = Facade::count_runs_from_rollups(&scope, filter).await? {
            return Ok(n);
        }
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
            .inspect(|_| self.note_read("runs", EntityType::LlmRun, run_id, "run"))
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
        let mut m = base_metadata(run, component, domain)?;
        m.policy_ids = distinct_sorted(governance.iter().filter_map(|g| g.policy_id.clone()));
        let mut incidents = Vec::new();
        for s in system.iter() {
            let severity: Severity = read_stored(&s.severity, || {
                format!(
                    "system_records {}/{}",
                    s.tenant_id.as_deref().unwrap_or("(global)"),
                    s.id
                )
            })?;
            if severity.is_incident() {
                incidents.push(s.id.clone());
            }
        }
        m.incident_ids = distinct_sorted(incidents);
        m.export_id = exports.first().map(|e| e.id.clone());
        Ok(m)
    }
}
