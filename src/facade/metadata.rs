//! Evidence metadata: the attribution, timing, correlation and provenance carried
//! by every facade response, always derived from the stored records it describes.

use chrono::{DateTime, Utc};

use crate::domain::{ActorType, Origin, SourceDomain, Timestamp};

/// Who, when, what it correlates with, and where it came from, for one response.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct EvidenceMetadata {
    /// Tenant whose evidence this is.
    pub tenant_id: String,
    /// The run the response is about, when it is about one run.
    pub run_id: Option<String>,
    /// The attributed actor by precedence human > agent > system; null when the response
    /// spans records of several actors.
    pub actor_type: Option<ActorType>,
    /// Human who caused the evidence, when one did.
    pub human_actor_id: Option<String>,
    /// Agent that caused the evidence, when one did.
    pub agent_id: Option<String>,
    /// System component that caused the evidence, when one did.
    pub system_id: Option<String>,
    /// When the described fact happened (the latest one for a collection); null for an empty
    /// result rather than an invented time.
    pub occurred_at: Option<Timestamp>,
    /// When it was persisted (the latest one for a collection); null for an empty result.
    pub recorded_at: Option<Timestamp>,
    /// Time zone of every timestamp: always `UTC`.
    pub timezone: String,
    /// Trace id of the run.
    pub trace_id: Option<String>,
    /// Policies involved, sorted and distinct.
    pub policy_ids: Vec<String>,
    /// Incidents (ERROR or CRITICAL system records) correlated, sorted.
    pub incident_ids: Vec<String>,
    /// The latest export of this evidence, when there is one.
    pub export_id: Option<String>,
    /// Correlation id that links runs and system records.
    pub correlation_id: Option<String>,
    /// The evidence domain.
    pub source_domain: SourceDomain,
    /// The component (table or producer) the evidence comes from.
    pub source_component: String,
    /// Where the evidence came from; null when a collection mixes origins or is empty.
    pub origin: Option<Origin>,
    /// SHA-256 of the canonical record or bundle, for single records and bundles.
    pub checksum: Option<String>,
    /// Whether the evidence can never change once written.
    pub immutable: bool,
}

impl EvidenceMetadata {
    /// Metadata of a response drawn from `source_component` of a tenant, to be refined.
    pub fn new(tenant_id: &str, domain: SourceDomain, source_component: &str) -> Self {
        EvidenceMetadata {
            tenant_id: tenant_id.to_string(),
            run_id: None,
            actor_type: None,
            human_actor_id: None,
            agent_id: None,
            system_id: None,
            occurred_at: None,
            recorded_at: None,
            timezone: "UTC".to_string(),
            trace_id: None,
            policy_ids: Vec::new(),
            incident_ids: Vec::new(),
            export_id: None,
            correlation_id: None,
            source_domain: domain,
            source_component: source_component.to_string(),
            origin: None,
            checksum: None,
            immutable: true,
        }
    }

    /// Sets the actor fields and the attributed actor type by precedence human > agent > system.
    pub fn with_actors(
        mut self,
        human: Option<String>,
        agent: Option<String>,
        system: Option<String>,
    ) -> Self {
        self.actor_type = if human.is_some() {
            Some(ActorType::Human)
        } else if agent.is_some() {
            Some(ActorType::Agent)
        } else if system.is_some() {
            Some(ActorType::System)
        } else {
            None
        };
        self.human_actor_id = human;
        self.agent_id = agent;
        self.system_id = system;
        self
    }

    /// Sets occurred/recorded to the latest of the items' times (null when there are none).
    pub fn with_times<I>(mut self, times: I) -> Self
    where
        I: IntoIterator<Item = (DateTime<Utc>, DateTime<Utc>)>,
    {
        for (occurred, recorded) in times {
            let (occurred, recorded) = (Timestamp(occurred), Timestamp(recorded));
            self.occurred_at = Some(self.occurred_at.map_or(occurred, |t| t.max(occurred)));
            self.recorded_at = Some(self.recorded_at.map_or(recorded, |t| t.max(recorded)));
        }
        self
    }

    /// Sets the origin when all items agree on one.
    pub fn with_common_origin<I: IntoIterator<Item = Option<Origin>>>(
        mut self,
        origins: I,
    ) -> Self {
        let mut common: Option<Origin> = None;
        for (i, o) in origins.into_iter().enumerate() {
            match (i, o, common) {
                (0, o, _) => common = o,
                (_, Some(o), Some(c)) if o == c => {}
                _ => {
                    common = None;
                    break;
                }
            }
        }
        self.origin = common;
        self
    }
}

/// Sorted, de-duplicated ids.
pub fn distinct_sorted<I: IntoIterator<Item = String>>(ids: I) -> Vec<String> {
    let mut v: Vec<String> = ids.into_iter().collect();
    v.sort();
    v.dedup();
    v
}
