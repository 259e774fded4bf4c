//! O3 of a run: its policy events (`GovernanceEvent` rows), and the event columns a selection
//! of them shows.

use async_graphql::{Context, Result, SelectionField};

use crate::domain::{PolicyDecision, Timestamp};
use crate::facade::EvidenceMetadata;
use crate::facade::decode::{EventColumns, Projected};
use crate::facade::runs::RunGovernance;
use crate::facade::shared::Shared;
use crate::graphql::common::{NodeKind, facade, global_id};
use crate::graphql::plain::Plain;
use crate::graphql::rows::{row_type, stored, view_columns, view_type};
use entity::governance_events;

/// A policy event, read with the columns a view shows.
pub type EventRow = Projected<Shared<governance_events::Model>, EventColumns>;

/// A policy interaction: which policy and rule decided what about which entity.
#[derive(Clone)]
pub struct GovernanceEvent(pub EventRow);

row_type! {
    GovernanceEvent(EventRow) as e in governance_events,
        names: governance_event_field, key: [e.tenant_id, e.id], node: [Id]
        => global_id(NodeKind::GovernanceEvent, &[&e.id]);
    plain {
        /// The producer's event id.
        event_id "eventId": &str [Id] => &e.id;
        run_id "runId": &str [RunId] => &e.run_id;
        timestamp "timestamp": Timestamp [OccurredAt] => Timestamp(e.occurred_at);
        event_type "eventType": &str [EventType] => &e.event_type;
        policy_id "policyId": Option<&str> [PolicyId] => e.policy_id.as_deref();
        rule_id "ruleId": Option<&str> [RuleId] => e.rule_id.as_deref();
        /// The decision as stored.
        decision "decision": Result<PolicyDecision> [Decision]
            => stored(&e.decision, || GovernanceEvent::row_key(e));
        entity_type "entityType": &str [EntityType] => &e.entity_type;
        entity_id "entityId": &str [EntityId] => &e.entity_id;
        /// Why the policy decided so.
        reason "reason": Option<&str> [Reason] => e.reason.as_deref();
        recorded_at "recordedAt": Timestamp [RecordedAt] => Timestamp(e.recorded_at);
    }
}

/// O3: the policy events of one run.
pub struct LlmRunGovernance(pub(super) RunGovernance);

view_type! {
    LlmRunGovernance, names: llm_run_governance_field;
    async fn run_id["runId"](&self) -> &str {
        &self.0.run.run_id
    }
    /// Events in time order.
    async fn events["events"](&self) -> Vec<Plain<GovernanceEvent>> {
        self.0
            .events
            .each()
            .into_iter()
            .map(|event| Plain(GovernanceEvent(event)))
            .collect()
    }
    async fn total_events["totalEvents"](&self) -> i32 {
        self.0.events.len() as i32
    }
    async fn metadata["metadata"](&self, ctx: &Context<'_>) -> Result<EvidenceMetadata> {
        Ok(facade(ctx)?.governance_metadata(&self.0).await?)
    }
}

/// The policy-event columns a selection of a run's `governance` shows (as [`GovernanceEvent`]
/// declares them). Any other field (metadata, a field added later) reads every column.
pub(super) fn governance_event_columns(governance: &SelectionField<'_>) -> EventColumns {
    use llm_run_governance_field as view;
    view_columns(
        governance,
        (EventColumns::KEY, EventColumns::all(), EventColumns::with),
        view::events,
        GovernanceEvent::columns_of,
        &[(view::run_id, &[]), (view::total_events, &[])],
    )
}
