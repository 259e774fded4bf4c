//! GraphQL surface of the LLM-runs topic: the run list and one run (here), the run's row and
//! envelope (`run`), and its depth views, one file each (`trace`, `governance`, `replay`,
//! `export`); `prefetch` reads from a selection what a page of runs will load.

mod export;
mod governance;
mod prefetch;
mod replay;
mod run;
mod session;
mod trace;
mod usage;

use async_graphql::connection::Connection;
use async_graphql::{Context, Json, Object, Result};

pub use export::{LlmRunExport, LogExport};
pub use governance::{GovernanceEvent, LlmRunGovernance};
pub use replay::LlmRunReplay;
pub use run::{LlmRun, LlmRunEnvelope};
pub use session::{LlmSession, OpenTrace};
pub use trace::{LlmRunTrace, TraceStep};
pub use usage::LlmRunUsage;

use super::common::{connection, facade, page_args};
use super::plain::Plain;
use crate::facade::EvidenceMetadata;
use crate::facade::runs::{RunFilter, RunOrder};
use entity::llm_runs;
use prefetch::{connection_nodes, prefetch_for};

/// Fields of the run list besides its edges.
pub struct LlmRunListInfo {
    filter: RunFilter,
    metadata: EvidenceMetadata,
}

#[Object]
impl LlmRunListInfo {
    /// Number of runs matching the filter (counted only when selected).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(facade(ctx)?.count_llm_runs(&self.filter).await? as i64)
    }
    /// The filters applied, as JSON.
    async fn filters_applied(&self) -> Json<serde_json::Value> {
        Json(self.filter.applied())
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.metadata
    }
}

#[derive(Default)]
pub struct RunsQuery;

#[Object]
impl RunsQuery {
    /// LLM runs of the caller's tenant, newest first by default (keyset-paginated).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    async fn llm_runs(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
        order_by: Option<RunOrder>,
        #[graphql(
            desc = "Rows from the start, or after `after`: 1 to 100 (default 20 when neither `first` nor `last` is given)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Cursor of the row to start after (`pageInfo.endCursor` of the page before); goes with `first`."
        )]
        after: Option<String>,
        #[graphql(desc = "Rows from the end, or before `before`: 1 to 100.")] last: Option<i32>,
        #[graphql(
            desc = "Cursor of the row to end before (`pageInfo.startCursor` of the page after); goes with `last`."
        )]
        before: Option<String>,
    ) -> Result<Connection<String, Plain<LlmRun>, LlmRunListInfo>> {
        let order = order_by.unwrap_or_default();
        let args = page_args(order.list_kind(), first, after, last, before)?;
        let f = facade(ctx)?;
        let list = f
            .list_llm_runs(filter.unwrap_or_default(), order, args)
            .await?;
        let runs: Vec<llm_runs::Model> = list.page.items.iter().map(|(_, r)| r.clone()).collect();
        let nodes = connection_nodes(&ctx.look_ahead());
        f.prefetch_runs(&runs, prefetch_for(&nodes)).await?;
        Ok(connection(
            list.page,
            |run| Plain(LlmRun(run)),
            LlmRunListInfo {
                filter: list.filter,
                metadata: list.metadata,
            },
        ))
    }

    /// One session (conversation) by its id: its runs in start order and their totals;
    /// NOT_FOUND when no run or span of the tenant names it.
    async fn session(&self, ctx: &Context<'_>, id: String) -> Result<LlmSession> {
        Ok(LlmSession(facade(ctx)?.session(&id).await?))
    }

    /// Traces with steps but no run record (their root span has not arrived), latest first,
    /// at most 100: listed with what their steps say.
    async fn open_traces(&self, ctx: &Context<'_>) -> Result<Vec<OpenTrace>> {
        Ok(facade(ctx)?
            .open_traces()
            .await?
            .into_iter()
            .map(OpenTrace)
            .collect())
    }

    /// One run by its run id; NOT_FOUND when the tenant has no such run.
    async fn llm_run(&self, ctx: &Context<'_>, run_id: String) -> Result<LlmRun> {
        let f = facade(ctx)?;
        let run = f.llm_run(&run_id).await?;
        // Its views find their rows loaded, one statement per kind of data, as in a list.
        f.prefetch_runs(
            std::slice::from_ref(&run),
            prefetch_for(&[ctx.look_ahead()]),
        )
        .await?;
        Ok(LlmRun(run))
    }
}
