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
use async_graphql::{Context, Object, Result};

pub use export::{LlmRunExport, LogExport};
pub use governance::{GovernanceEvent, LlmRunGovernance};
pub use replay::LlmRunReplay;
pub use run::{LlmRun, LlmRunEnvelope};
pub use session::{LlmSession, OpenTrace};
pub use trace::{LlmRunTrace, TraceStep};
pub use usage::LlmRunUsage;

use super::common::{ListInfo, connection, facade, page_args, paged_object};
use super::plain::Plain;
use crate::facade::runs::{RunFilter, RunOrder};
use entity::llm_runs;
use prefetch::{connection_nodes, prefetch_for};

#[derive(Default)]
pub struct RunsQuery;

paged_object! {
    #[Object] RunsQuery;
    /// LLM runs of the caller's tenant, newest first by default (keyset-paginated).
    #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
    paged(first, after, last, before) async fn llm_runs(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
        order_by: Option<RunOrder>,
    ) -> Result<Connection<String, Plain<LlmRun>, ListInfo<RunFilter>>> {
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
            ListInfo {
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
