//! Row decoding by column position for the read paths that return many rows. SeaORM's derived
//! models look every column up by name (a hash of the name per value); a page of 20 runs with
//! their 400 steps decodes 5,000 values, and the lookups were a quarter of that time. The
//! selects here are `Entity::find()` (every column, in the entity's column order) or a
//! projection of some columns in that order, so a value's position follows from its column's
//! place in the model; tests check the lists below against the entities.

use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Iterable, QueryResult, QuerySelect,
    QueryTrait, Select, TryGetable,
};

use super::shared::{Rows, Shared};
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

/// Runs several selects of whole rows (each with its own filter, order and limit) as one
/// statement, `SELECT * FROM (first) UNION ALL SELECT * FROM (second) ...`, and decodes the rows
/// by position: one round trip instead of one per select. The rows' order is unspecified
/// (PostgreSQL may interleave the branches): callers sort them.
pub async fn union_all<E, C>(selects: Vec<Select<E>>, db: &C) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
    ByPosition<E::Model>: FromQueryResult + Send + Sync,
{
    use sea_orm::sea_query::{Alias, Asterisk, Query, SelectStatement, UnionType};
    // Each branch keeps its ORDER BY and LIMIT inside a derived table, which both backends
    // accept in a compound select (SQLite refuses them on a bare member).
    let branch = |i: usize, select: Select<E>| -> SelectStatement {
        Query::select()
            .column(Asterisk)
            .from_subquery(select.into_query(), Alias::new(format!("branch_{i}")))
            .to_owned()
    };
    let mut branches = selects.into_iter().enumerate().map(|(i, s)| branch(i, s));
    let Some(mut statement) = branches.next() else {
        return Ok(Vec::new());
    };
    for next in branches {
        statement.union(UnionType::All, next);
    }
    let rows = db.query_all(&statement).await?;
    rows.iter()
        .map(|row| ByPosition::<E::Model>::from_query_result(row, "").map(|m| m.0))
        .collect()
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
    agent_id, system_id, origin, recorded_at, record_hash, anchor_id, session_id, cache_read_tokens,
    cache_creation_tokens, attributes, content, content_sha256);
by_position!(system_records: id, tenant_id, component, event_type, severity, summary, details,
    caused_by, correlation_id, origin, occurred_at, recorded_at, record_hash, anchor_id);
// Steps, policy events and ledger entries decode by position through their projections
// below (every column selected).

/// A set of columns of one entity (see [`projection!`]).
pub trait ColumnSet: Copy + Eq {
    /// The entity's model.
    type Model;
    /// The entity's columns.
    type Column: Copy + sea_orm::IdenStatic;
    /// Every column.
    fn all() -> Self;
    /// Whether `column` is in the set.
    fn has(self, column: Self::Column) -> bool;
}

/// Rows (a list, or one row) read with only the columns in a set: a type of its own, so that a
/// field of a column that was not read is never taken for data. The model's unread fields
/// hold placeholders the database never wrote; they are reached only through
/// [`Projected::read`], which checks that the columns asked for were read.
#[derive(Clone, Debug)]
pub struct Projected<T, S> {
    rows: T,
    columns: S,
}

impl<T, S: ColumnSet> Projected<T, S> {
    /// `rows` read with (at least) `columns`. Only the facade, which made the read, says so.
    pub(in crate::facade) fn new(rows: T, columns: S) -> Self {
        Projected { rows, columns }
    }

    /// [`Projected::new`], for tests of the views that show projected rows.
    #[cfg(test)]
    pub fn read_with(rows: T, columns: S) -> Self {
        Projected { rows, columns }
    }

    /// Rows read with every column.
    pub fn whole(rows: T) -> Self {
        Projected {
            rows,
            columns: S::all(),
        }
    }

    /// The columns the rows were read with.
    pub fn columns(&self) -> S {
        self.columns
    }

    /// The rows, for code that reads the columns `needed` of them; `None` when one was not
    /// read.
    pub fn read(&self, needed: &[S::Column]) -> Option<&T> {
        needed
            .iter()
            .all(|c| self.columns.has(*c))
            .then_some(&self.rows)
    }

    /// [`Projected::read`] for code outside a resolver: an INTERNAL error naming the first
    /// column that was not read (a view asked for fewer columns than it shows: a bug).
    pub fn read_or_fail(&self, needed: &[S::Column], what: &str) -> crate::error::AppResult<&T> {
        self.read(needed).ok_or_else(|| {
            let missing = needed
                .iter()
                .find(|c| !self.columns.has(**c))
                .map(|c| sea_orm::IdenStatic::as_str(c))
                .unwrap_or_default();
            crate::error::AppError::internal(
                format!("{what} reads column `{missing}`, which was not read"),
                "column not read",
            )
        })
    }

    /// The rows when every column was read.
    pub fn complete(&self) -> Option<&T> {
        (self.columns == S::all()).then_some(&self.rows)
    }
}

impl<M, S: ColumnSet> Projected<Rows<M>, S> {
    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Each row, read with the same columns.
    pub fn each(&self) -> Vec<Projected<Shared<M>, S>> {
        Shared::each(&self.rows)
            .into_iter()
            .map(|row| Projected::new(row, self.columns))
            .collect()
    }
}

/// The next column's value: read from the row's next position when `selected`, a placeholder
/// (its type's default) otherwise, which only [`Projected`] hands out.
fn next_value<T: TryGetable + Default>(
    row: &QueryResult,
    selected: bool,
    position: &mut usize,
) -> Result<T, DbErr> {
    if !selected {
        return Ok(T::default());
    }
    *position += 1;
    row.try_get_by_index(*position - 1)
}

/// A set of columns of one entity, for views that show few of them, and the select and
/// decoder that read only those (with every column selected, the entity's [`ByPosition`]
/// decoder). The entity's fields are listed with their columns in entity order (a test checks
/// them). The fields of columns not read hold placeholders: the read function is the
/// facade's, which hands its rows out only as [`Projected`] rows.
macro_rules! projection {
    (
        $(#[$doc:meta])*
        $set:ident, $module:ident, $read:ident,
        key: [$($key:ident),+],
        fields: [$($field:ident: $column:ident),+ $(,)?]
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $set(u32);

        impl $set {
            /// The columns every view reads: the row's key and what it is grouped by.
            pub const KEY: $set = $set(0 $(| 1 << $module::Column::$key as u32)+);

            /// Every column.
            pub fn all() -> $set {
                $module::Column::iter().fold($set(0), $set::with)
            }

            /// This set and `column`.
            pub fn with(self, column: $module::Column) -> $set {
                $set(self.0 | 1 << column as u32)
            }

            /// This set and `columns`.
            pub fn with_all(self, columns: &[$module::Column]) -> $set {
                columns.iter().fold(self, |set, column| set.with(*column))
            }

            /// The columns of both sets.
            pub fn union(self, other: $set) -> $set {
                $set(self.0 | other.0)
            }

            fn has(self, column: $module::Column) -> bool {
                self.0 & 1 << column as u32 != 0
            }

            /// A row holding the selected columns in entity order.
            fn decode(self, row: &QueryResult) -> Result<$module::Model, DbErr> {
                let mut position = 0usize;
                Ok($module::Model {
                    $($field: next_value(row, self.has($module::Column::$column), &mut position)?,)+
                })
            }

            #[cfg(test)]
            const FIELDS: &[(&str, $module::Column)] =
                &[$((stringify!($field), $module::Column::$column)),+];

            /// `row` as a read with these columns would hold it: the other fields replaced by
            /// placeholders.
            #[cfg(test)]
            pub fn as_read(self, row: &$module::Model) -> $module::Model {
                $module::Model {
                    $($field: if self.has($module::Column::$column) {
                        row.$field.clone()
                    } else {
                        Default::default()
                    },)+
                }
            }
        }

        impl ColumnSet for $set {
            type Model = $module::Model;
            type Column = $module::Column;

            fn all() -> $set {
                $set::all()
            }

            fn has(self, column: $module::Column) -> bool {
                $set::has(self, column)
            }
        }

        impl FromQueryResult for ByPosition<$module::Model> {
            fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
                $set::all().decode(row).map(ByPosition)
            }
        }

        /// Runs `select` (`Entity::find()` with filters and order) reading only `columns`;
        /// the rows' other fields hold placeholders (the facade wraps them in [`Projected`]).
        pub(in crate::facade) async fn $read<C: ConnectionTrait>(
            select: Select<$module::Entity>,
            columns: $set,
            db: &C,
        ) -> Result<Vec<$module::Model>, DbErr> {
            if columns == $set::all() {
                return all(select, db).await;
            }
            let select = select
                .select_only()
                .columns($module::Column::iter().filter(|c| columns.has(*c)));
            let rows = db
                .query_all_raw(select.build(db.get_database_backend()))
                .await?;
            rows.iter().map(|row| columns.decode(row)).collect()
        }
    };
}

projection!(
    /// Columns of `trace_steps` a view of steps reads. A run's trace in a list usually shows
    /// two or three of a step's columns; reading only those spares the database
    /// encoding, and the server decoding, the rest (a 64-character hash, timestamps…).
    StepColumns, trace_steps, steps,
    key: [TenantId, TraceId, StepIndex],
    fields: [tenant_id: TenantId, trace_id: TraceId, step_index: StepIndex,
        occurred_at: OccurredAt, skill_name: SkillName, status: Status,
        outcome_category: OutcomeCategory, cost_cents: CostCents, duration_ms: DurationMs,
        span_id: SpanId, recorded_at: RecordedAt, record_hash: RecordHash, anchor_id: AnchorId,
        provider: Provider, request_model: RequestModel, response_model: ResponseModel,
        input_tokens: InputTokens, output_tokens: OutputTokens, cache_read_tokens: CacheReadTokens,
        cache_creation_tokens: CacheCreationTokens, session_id: SessionId,
        attributes: Attributes, content: Content, content_sha256: ContentSha256]
);

projection!(
    /// Columns of `governance_events` a view of policy events reads.
    EventColumns, governance_events, governance,
    key: [TenantId, Id, RunId],
    fields: [tenant_id: TenantId, id: Id, run_id: RunId, occurred_at: OccurredAt,
        event_type: EventType, policy_id: PolicyId, rule_id: RuleId, decision: Decision,
        entity_type: EntityType, entity_id: EntityId, reason: Reason, recorded_at: RecordedAt,
        record_hash: RecordHash, anchor_id: AnchorId]
);

projection!(
    /// Columns of `audit_ledger` a list of entries reads. A page of access entries shows a
    /// few short columns; each entry also holds the ids it recorded as JSON and two hashes.
    /// The key includes the times: a list's metadata spans them.
    AuditColumns, audit_ledger, audit,
    key: [TenantId, Seq, Id, OccurredAt, RecordedAt],
    fields: [tenant_id: TenantId, seq: Seq, id: Id, category: Category, event_type: EventType,
        entity_type: EntityType, entity_id: EntityId, actor_type: ActorType, actor_id: ActorId,
        action_reason: ActionReason, decision: Decision, before_state: BeforeState,
        after_state: AfterState, correlation_id: CorrelationId, occurred_at: OccurredAt,
        recorded_at: RecordedAt, prev_hash: PrevHash, entry_hash: EntryHash]
);

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

    /// Checks a projection's field list against its entity and its key.
    macro_rules! check_projection {
        ($set:ident, $module:ident, [$($key:ident),+]) => {
            assert_eq!(
                column_names::<$module::Entity>(),
                $set::FIELDS
                    .iter()
                    .map(|(field, _)| field.to_string())
                    .collect::<Vec<_>>(),
                "fields of {} in entity order",
                stringify!($set)
            );
            for (field, column) in $set::FIELDS {
                assert_eq!(column.as_str(), *field, "{} reads its own column", field);
            }
            let key = [$($module::Column::$key),+];
            for column in $module::Column::iter() {
                assert!($set::all().has(column));
                assert_eq!(
                    $set::KEY.has(column),
                    key.iter().any(|k| k.as_str() == column.as_str())
                );
            }
        };
    }

    #[test]
    fn projections_follow_the_entity_column_order() {
        check_projection!(StepColumns, trace_steps, [TenantId, TraceId, StepIndex]);
        check_projection!(EventColumns, governance_events, [TenantId, Id, RunId]);
        check_projection!(
            AuditColumns,
            audit_ledger,
            [TenantId, Seq, Id, OccurredAt, RecordedAt]
        );
    }

    #[test]
    fn positional_decoders_follow_the_entity_column_order() {
        check::<llm_runs::Entity>();
        check::<system_records::Entity>();
    }
}
