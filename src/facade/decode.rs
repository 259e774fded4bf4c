//! Row decoding by column position for the read paths that return many rows. SeaORM's derived
//! models look every column up by name (a hash of the name per value); a page of 20 runs with
//! their 400 steps decodes 5,000 values, and the lookups were a quarter of that time. The
//! selects here are `Entity::find()` (every column, in the entity's column order), so a value's
//! position is its column's place in the model; a test checks the lists below against the
//! entities.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryResult, Select};

use entity::{audit_ledger, governance_events, llm_runs, system_records, trace_steps};

/// A model decoded by column position.
pub struct ByPosition<M>(pub M);

/// Runs a `select` of whole rows (`Entity::find()` with filters and order) and decodes them by
/// position.
pub async fn all<E, C>(select: Select<E>, db: &C) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
    ByPosition<E::Model>: FromQueryResult + Send + Sync,
{
    let rows = select.into_model::<ByPosition<E::Model>>().all(db).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Implements [`ByPosition`] decoding for a model whose columns are listed in entity order.
macro_rules! by_position {
    ($module:ident: $($field:ident),+ $(,)?) => {
        impl FromQueryResult for ByPosition<$module::Model> {
            fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
                let mut position = 0usize;
                let mut next = || {
                    position += 1;
                    position - 1
                };
                Ok(ByPosition($module::Model {
                    $($field: row.try_get_by_index(next())?,)+
                }))
            }
        }

        #[cfg(test)]
        impl Columns for $module::Entity {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),+];
        }
    };
}

/// The fields a [`ByPosition`] decoder reads, in order (checked against the entity in tests).
#[cfg(test)]
trait Columns {
    const FIELDS: &'static [&'static str];
}

by_position!(llm_runs: tenant_id, run_id, trace_id, provider, model, input_tokens, output_tokens,
    cost_cents, execution_status, started_at, completed_at, source, is_synthetic, human_actor_id,
    agent_id, system_id, origin, recorded_at, record_hash, anchor_id);
by_position!(trace_steps: tenant_id, trace_id, step_index, occurred_at, skill_name, status,
    outcome_category, cost_cents, duration_ms, span_id, recorded_at, record_hash, anchor_id);
by_position!(governance_events: tenant_id, id, run_id, occurred_at, event_type, policy_id,
    rule_id, decision, entity_type, entity_id, reason, recorded_at, record_hash, anchor_id);
by_position!(system_records: id, tenant_id, component, event_type, severity, summary, details,
    caused_by, correlation_id, origin, occurred_at, recorded_at, record_hash, anchor_id);
by_position!(audit_ledger: tenant_id, seq, id, category, event_type, entity_type, entity_id,
    actor_type, actor_id, action_reason, decision, before_state, after_state, correlation_id,
    occurred_at, recorded_at, prev_hash, entry_hash);

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{IdenStatic, Iterable};

    fn column_names<E: EntityTrait>() -> Vec<String> {
        E::Column::iter().map(|c| c.as_str().to_string()).collect()
    }

    fn check<E: EntityTrait + Columns>() {
        assert_eq!(
            column_names::<E>(),
            E::FIELDS.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "the positional decoder of {} must list the entity's columns in order",
            E::default().table_name()
        );
    }

    #[test]
    fn positional_decoders_follow_the_entity_column_order() {
        check::<llm_runs::Entity>();
        check::<trace_steps::Entity>();
        check::<governance_events::Entity>();
        check::<system_records::Entity>();
        check::<audit_ledger::Entity>();
    }
}
