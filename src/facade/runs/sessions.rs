//! Sessions (conversations): the runs that named one session, in start order, with their
//! totals; and the traces whose root span has not arrived (no run record yet), listed with what
//! their steps say.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::usage::{RunUsage, usage_columns};
use crate::auth::Permission;
use crate::error::{AppError, AppResult, Context};
use crate::facade::{Facade, Scope, check_text};
use crate::ledger::vocabulary::EntityType;
use entity::{llm_runs, trace_steps};

/// Most runs a session view lists.
pub const MAX_SESSION_RUNS: u64 = 1000;
/// Most traces without a run record a list shows.
pub const MAX_OPEN_TRACES: u64 = 100;

/// A trace with steps but no run record (its root span has not arrived, or never will).
#[derive(Clone, Debug)]
pub struct OpenTrace {
    pub trace_id: String,
    /// The session its steps name, if any.
    pub session_id: Option<String>,
    pub first_step_at: DateTime<Utc>,
    pub last_step_at: DateTime<Utc>,
    pub usage: RunUsage,
}

/// One session: its runs in start order, the traces of it that have no run record yet, and the
/// totals over both.
#[derive(Clone, Debug)]
pub struct Session {
    pub session_id: String,
    pub runs: Vec<llm_runs::Model>,
    pub open_traces: Vec<OpenTrace>,
    pub totals: RunUsage,
}

impl RunUsage {
    /// The sum of several totals; provider and model only when all agree.
    fn sum<'a>(all: impl Iterator<Item = &'a RunUsage>) -> RunUsage {
        let mut out = RunUsage::default();
        let (mut providers, mut models) = (Vec::new(), Vec::new());
        for u in all {
            out.input_tokens += u.input_tokens;
            out.output_tokens += u.output_tokens;
            out.cache_read_tokens += u.cache_read_tokens;
            out.cache_creation_tokens += u.cache_creation_tokens;
            out.cost_cents += u.cost_cents;
            out.steps += u.steps;
            providers.push(u.provider.clone());
            models.push(u.model.clone());
        }
        let agreed = |mut v: Vec<Option<String>>| {
            v.dedup();
            if v.len() == 1 {
                v.pop().flatten()
            } else {
                None
            }
        };
        out.provider = agreed(providers);
        out.model = agreed(models);
        out
    }
}

impl Facade {
    /// The session `session_id` of the caller's tenant; NOT_FOUND when no run or step names it.
    pub async fn session(&self, session_id: &str) -> AppResult<Session> {
        let scope = self.scope(Permission::ReadEvidence)?;
        check_text("id", &Some(session_id.to_string()))?;
        let runs: Vec<llm_runs::Model> = crate::facade::decode::all(
            llm_runs::Entity::find()
                .filter(llm_runs::Column::TenantId.eq(scope.tenant_id))
                .filter(llm_runs::Column::SessionId.eq(session_id))
                .order_by_asc(llm_runs::Column::StartedAt)
                .order_by_asc(llm_runs::Column::RunId)
                .limit(MAX_SESSION_RUNS),
            &scope.db.conn,
        )
        .await
        .context("list the runs of a session")?;
        let open_traces = self.open_traces_of(&scope, Some(session_id)).await?;
        if runs.is_empty() && open_traces.is_empty() {
            return Err(AppError::not_found(format!(
                "no run or span names session `{session_id}`"
            )));
        }
        let traces: Vec<(String, _)> = runs
            .iter()
            .filter_map(|r| r.trace_id.clone().map(|t| (t, usage_columns())))
            .collect();
        let steps = scope.loaders.steps.load_many(traces).await?;
        let usages: Vec<RunUsage> = runs
            .iter()
            .map(|r| {
                let of = r
                    .trace_id
                    .as_ref()
                    .and_then(|t| steps.get(&(t.clone(), usage_columns())));
                RunUsage::derive(Some(r), of.map(|s| &s[..]).unwrap_or_default())
            })
            .collect();
        let totals = RunUsage::sum(usages.iter().chain(open_traces.iter().map(|t| &t.usage)));
        self.note_list(
            "runs",
            EntityType::LlmSession,
            "session",
            serde_json::json!({ "id": session_id }),
            runs.iter().map(|r| r.run_id.clone()).collect(),
        );
        Ok(Session {
            session_id: session_id.to_string(),
            runs,
            open_traces,
            totals,
        })
    }

    /// Traces of the caller's tenant that have steps but no run record, latest first.
    pub async fn open_traces(&self) -> AppResult<Vec<OpenTrace>> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let traces = self.open_traces_of(&scope, None).await?;
        self.note_list(
            "runs",
            EntityType::OpenTraceList,
            "openTraces",
            serde_json::json!({}),
            traces.iter().map(|t| t.trace_id.clone()).collect(),
        );
        Ok(traces)
    }

    /// Traces without a run record (of one session, when given), latest step first.
    async fn open_traces_of(
        &self,
        scope: &Scope<'_>,
        session_id: Option<&str>,
    ) -> AppResult<Vec<OpenTrace>> {
        let backend = scope.db.conn.get_database_backend();
        let p = |n: usize| match backend {
            sea_orm::DbBackend::Postgres => format!("${n}"),
            _ => "?".to_string(),
        };
        // Steps that came as spans (a span id), of traces no run record names: grouped per
        // trace, latest first. With a session, only the traces a step of that session is in.
        let mut sql = format!(
            "SELECT s.trace_id, MAX(s.occurred_at) AS last_at FROM trace_steps s \
             WHERE s.tenant_id = {} AND s.span_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM llm_runs r WHERE r.tenant_id = s.tenant_id \
             AND r.trace_id = s.trace_id)",
            p(1)
        );
        let mut values: Vec<sea_orm::Value> = vec![scope.tenant_id.into()];
        if let Some(session) = session_id {
            sql.push_str(&format!(
                " AND s.trace_id IN (SELECT trace_id FROM trace_steps WHERE tenant_id = {} \
                 AND session_id = {})",
                p(2),
                p(3)
            ));
            values.push(scope.tenant_id.into());
            values.push(session.into());
        }
        sql.push_str(&format!(
            " GROUP BY s.trace_id ORDER BY last_at DESC, s.trace_id LIMIT {MAX_OPEN_TRACES}"
        ));
        let rows = scope
            .db
            .conn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .context("list traces without a run record")?;
        let ids: Vec<String> = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()
            .context("read traces without a run record")?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let steps: HashMap<String, Vec<trace_steps::Model>> = {
            let mut by_trace: HashMap<String, Vec<trace_steps::Model>> = HashMap::new();
            let rows = crate::facade::decode::all(
                trace_steps::Entity::find()
                    .filter(trace_steps::Column::TenantId.eq(scope.tenant_id))
                    .filter(trace_steps::Column::TraceId.is_in(ids.iter().cloned()))
                    .order_by_asc(trace_steps::Column::TraceId)
                    .order_by_asc(trace_steps::Column::StepIndex),
                &scope.db.conn,
            )
            .await
            .context("load the steps of traces without a run record")?;
            for s in rows {
                by_trace.entry(s.trace_id.clone()).or_default().push(s);
            }
            by_trace
        };
        Ok(ids
            .into_iter()
            .filter_map(|trace_id| {
                let steps = steps.get(&trace_id)?;
                let first = steps.iter().map(|s| s.occurred_at).min()?;
                let last = steps
                    .iter()
                    .map(|s| s.occurred_at + chrono::Duration::milliseconds(s.duration_ms))
                    .max()?;
                Some(OpenTrace {
                    session_id: steps.iter().find_map(|s| s.session_id.clone()),
                    first_step_at: first,
                    last_step_at: last,
                    usage: RunUsage::derive(None, steps),
                    trace_id,
                })
            })
            .collect())
    }
}
