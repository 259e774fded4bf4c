//! A run's inflection point and replay window: pure functions of the run, its steps and its
//! policy events, below both the views that show them (`runs`, `system`) and the loader that
//! batches the replay windows' reads (`loaders::SystemAroundRun`).

use chrono::{DateTime, Duration, Utc};

use crate::domain::{PolicyDecision, StepStatus, Timestamp, WindowSeconds};
use entity::{governance_events, llm_runs, trace_steps};

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

/// The replay window of half-width `window` around `t`, both ends included.
pub fn window_around(t: DateTime<Utc>, window: WindowSeconds) -> (DateTime<Utc>, DateTime<Utc>) {
    window_of_seconds(t, window.get())
}

/// [`window_around`] with the half-width in seconds.
pub fn window_of_seconds(t: DateTime<Utc>, half_width: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let w = Duration::seconds(half_width);
    (t - w, t + w)
}

/// The replay window of a run: `half_width` seconds either side of its inflection point.
pub fn replay_window(
    run: &llm_runs::Model,
    steps: &[trace_steps::Model],
    governance: &[governance_events::Model],
    half_width: i64,
) -> (DateTime<Utc>, DateTime<Utc>) {
    window_of_seconds(
        inflection_of(run, steps, governance).timestamp.0,
        half_width,
    )
}
