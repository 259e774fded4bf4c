//! O4 of a run: steps, policy and system events in the window around its inflection point.

use chrono::{DateTime, Utc};

use super::step_ref;
use crate::auth::Permission;
use crate::domain::{SourceDomain, Timestamp, WindowSeconds};
use crate::error::AppResult;
use crate::facade::inflection::{Inflection, inflection_of, window_around};
use crate::facade::metadata::EvidenceMetadata;
use crate::facade::shared::Rows;
use crate::facade::{Facade, Scope};
use crate::ledger::vocabulary::EntityType;
use entity::{governance_events, llm_runs, system_records, trace_steps};

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

impl Facade {
    /// The inflection point of a run (see [`inflection_of`]).
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
        self.note_read("runs", EntityType::LlmRun, &run.run_id, "replay");
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
