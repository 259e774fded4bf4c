//! The subscription root (docs/live.md): new runs, the steps of a live trace, new system
//! records, the audit tail and an export's progress, each event with the cursor to resume
//! after it; and `liveCursor`, the position to start from. Resolvers are thin: the facade
//! authorizes, records and reads (`facade::live`).

use async_graphql::{Context, ID, Object, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use super::audit::AuditEntry;
use super::common::facade;
use super::runs::{LlmRun, LogExport, TraceStep};
use super::system::SystemRecord;
use crate::error::AppError;
use crate::facade::Facade;
use crate::facade::audit::AuditFilter;
use crate::facade::live::LiveEvent;
use crate::facade::runs::RunFilter;
use crate::facade::system::SystemFilter;

/// The facade of the subscription, shared with the stream it returns.
fn subscription_facade(ctx: &Context<'_>) -> Result<std::sync::Arc<Facade>> {
    ctx.data::<std::sync::Arc<Facade>>()
        .cloned()
        .map_err(|_| AppError::internal("reach the subscription facade", "facade missing").into())
}

/// Maps a facade stream of events into GraphQL results.
///
/// Resolvers box the facade's start (`Box::pin(facade.live_…)`): async-graphql keeps a
/// subscription's resolver future inside its stream for as long as the subscription lives, so
/// the database futures of the start must not be part of it.
fn events<T: Send + 'static, O>(
    stream: crate::facade::live::streams::Events<T>,
    wrap: impl Fn(LiveEvent<T>) -> O + Send + 'static,
) -> impl Stream<Item = Result<O>> {
    stream.map(move |r| r.map(&wrap).map_err(Into::into))
}

/// A new run.
#[derive(SimpleObject)]
pub struct LlmRunEvent {
    /// Pass as `after` to resume after this event.
    pub cursor: String,
    pub run: LlmRun,
}

/// A new step of a trace.
#[derive(SimpleObject)]
pub struct TraceStepEvent {
    /// Pass as `after` to resume after this event.
    pub cursor: String,
    pub step: TraceStep,
}

/// A new system record.
#[derive(SimpleObject)]
pub struct SystemRecordEvent {
    /// Pass as `after` to resume after this event.
    pub cursor: String,
    pub record: SystemRecord,
}

/// A new entry of the tenant's ledger.
#[derive(SimpleObject)]
pub struct AuditEntryEvent {
    /// Pass as `after` to resume after this event.
    pub cursor: String,
    pub entry: AuditEntry,
}

/// The position queries start live subscriptions from.
#[derive(Default)]
pub struct LiveQuery;

#[Object]
impl LiveQuery {
    /// The position now in the caller's ledgers: a subscription started with `after` set to
    /// it receives everything committed after this moment. Read it before a list to follow
    /// the list live without a gap (an item committed in between may arrive in both).
    async fn live_cursor(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(facade(ctx)?.live_cursor().await?)
    }
}

/// Live events over graphql-transport-ws (a websocket upgrade of `/graphql`) or GraphQL over
/// SSE (`Accept: text/event-stream`). Each subscription is authorized like its list, counted
/// against its key, recorded in the ledger (start, deliveries per interval, end) and delivered
/// in commit order; after a cursor it replays what came after it, then goes live.
#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Runs as they are committed, in commit order, that pass `filter`.
    async fn llm_run_added(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
        #[graphql(desc = "Resume after this cursor (an event's, or `liveCursor`).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<LlmRunEvent>>> {
        let facade = subscription_facade(ctx)?;
        let stream = Box::pin(facade.live_runs(filter.unwrap_or_default(), after)).await?;
        Ok(events(stream, |e| LlmRunEvent {
            cursor: e.cursor,
            run: LlmRun(e.item),
        }))
    }

    /// Steps of one trace as they are committed (a live trace); name the trace or its run.
    async fn trace_step_added(
        &self,
        ctx: &Context<'_>,
        run_id: Option<String>,
        trace_id: Option<String>,
        #[graphql(desc = "Resume after this cursor (an event's, or `liveCursor`).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<TraceStepEvent>>> {
        let facade = subscription_facade(ctx)?;
        let stream = Box::pin(facade.live_steps(run_id, trace_id, after)).await?;
        Ok(events(stream, |e| TraceStepEvent {
            cursor: e.cursor,
            step: TraceStep(e.item),
        }))
    }

    /// System records as they are committed that pass `filter`: the tenant's own and the
    /// global ones, as the filter's scope says.
    async fn system_record_added(
        &self,
        ctx: &Context<'_>,
        filter: Option<SystemFilter>,
        #[graphql(desc = "Resume after this cursor (an event's, or `liveCursor`).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<SystemRecordEvent>>> {
        let facade = subscription_facade(ctx)?;
        let stream =
            Box::pin(facade.live_system_records(filter.unwrap_or_default(), after)).await?;
        Ok(events(stream, |e| SystemRecordEvent {
            cursor: e.cursor,
            record: SystemRecord(e.item),
        }))
    }

    /// Entries of the tenant's ledger as they are appended that pass `filter` (the audit
    /// tail; `filter.category` picks categories). Needs `read:audit`.
    async fn audit_entry_appended(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        #[graphql(desc = "Resume after this cursor (an event's, or `liveCursor`).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<AuditEntryEvent>>> {
        let facade = subscription_facade(ctx)?;
        let stream = Box::pin(facade.live_audit_entries(filter.unwrap_or_default(), after)).await?;
        Ok(events(stream, |e| AuditEntryEvent {
            cursor: e.cursor,
            entry: AuditEntry(e.item),
        }))
    }

    /// An export each time its state or progress changes; completes once it is COMPLETED or
    /// FAILED. Needs `read:audit`.
    async fn export_progress(
        &self,
        ctx: &Context<'_>,
        export_id: ID,
    ) -> Result<impl Stream<Item = Result<LogExport>>> {
        let facade = subscription_facade(ctx)?;
        let stream = Box::pin(facade.live_export(export_id.to_string())).await?;
        Ok(events(stream, |e| LogExport(e.item.export)))
    }
}
