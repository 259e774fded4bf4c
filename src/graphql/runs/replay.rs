//! O4 of a run: the merged timeline around its inflection point.

use async_graphql::{Context, Result};

use crate::domain::Timestamp;
use crate::facade::EvidenceMetadata;
use crate::facade::inflection::Inflection;
use crate::facade::runs::{ReplayEvent, RunReplay};
use crate::graphql::common::facade;
use crate::graphql::rows::view_type;

/// O4: the merged timeline around the run's inflection point.
pub struct LlmRunReplay(pub(super) RunReplay);

view_type! {
    LlmRunReplay, names: llm_run_replay_field;
    async fn run_id["runId"](&self) -> &str {
        &self.0.run.run_id
    }
    /// The point the window is centred on, and why.
    async fn inflection["inflection"](&self) -> &Inflection {
        &self.0.inflection
    }
    /// Half-width of the window.
    async fn window_seconds["windowSeconds"](&self) -> i64 {
        self.0.window_seconds
    }
    async fn window_start["windowStart"](&self) -> Timestamp {
        self.0.window_start.into()
    }
    async fn window_end["windowEnd"](&self) -> Timestamp {
        self.0.window_end.into()
    }
    /// Steps, policy events and system events in the window, in time order.
    async fn events["events"](&self) -> &[ReplayEvent] {
        &self.0.events
    }
    async fn metadata["metadata"](&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.replay_metadata(&self.0).await?)
    }
}
