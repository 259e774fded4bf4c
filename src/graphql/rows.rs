//! Each GraphQL row type declared once. A row type (a run, a step, a policy event, a ledger
//! entry, a system record…) is one [`row_type!`] declaration listing its fields in schema order,
//! each with its GraphQL name, type, description, the columns it shows and the expression that
//! renders it; its header names the entity, the row's key (for errors about the row) and, for a
//! Relay node, how its global `id` (the first field) is made. From that one declaration follow:
//!
//! - the type's `#[Object]` resolvers (the field's name is the declared one, so the schema is
//!   exactly what the declaration says);
//! - its one-pass [`PlainFields::plain_field`] (see [`super::plain`]): the same expressions,
//!   rendered through [`PlainValue`], so the two paths cannot answer differently;
//! - its column projection, `columns_of`: the columns a field shows, read by the views that
//!   read few of a row's columns ([`crate::facade::decode`]);
//! - a module of its field names as constants (`<type>_field::<rust name>`), which the
//!   look-ahead that drives prefetching uses instead of string literals, so renaming a field
//!   renames what the look-ahead looks for.
//!
//! Fields that are not plain values (JSON, a field reading more data, a field with arguments)
//! are declared as `opaque` plain fields (resolver and projection, no one-pass value) or as
//! `resolvers`: ordinary resolver methods, each named with its GraphQL name.
//! [`view_type!`] does the same for objects that are not rows (a run's trace or replay view):
//! resolvers and field-name constants.

use std::borrow::Borrow;

use async_graphql::{ID, InputType, SelectionField, Value};

pub use super::plain::PlainFields;
use crate::domain::{Timestamp, Vocabulary};
use crate::facade::decode::{ColumnSet, Projected};

/// A value a one-pass row renders exactly as its field's resolver does; `None` when it cannot
/// (an error the resolver reports).
pub trait PlainValue {
    fn plain(self) -> Option<Value>;
}

impl PlainValue for &str {
    fn plain(self) -> Option<Value> {
        Some(Value::String(self.to_string()))
    }
}

impl PlainValue for &String {
    fn plain(self) -> Option<Value> {
        Some(Value::String(self.clone()))
    }
}

impl PlainValue for f64 {
    fn plain(self) -> Option<Value> {
        Some(self.to_value())
    }
}

impl PlainValue for String {
    fn plain(self) -> Option<Value> {
        Some(Value::String(self))
    }
}

impl PlainValue for ID {
    fn plain(self) -> Option<Value> {
        Some(Value::String(self.0))
    }
}

impl PlainValue for i32 {
    fn plain(self) -> Option<Value> {
        Some(self.into())
    }
}

impl PlainValue for i64 {
    fn plain(self) -> Option<Value> {
        Some(self.into())
    }
}

impl PlainValue for bool {
    fn plain(self) -> Option<Value> {
        Some(self.into())
    }
}

impl PlainValue for Timestamp {
    fn plain(self) -> Option<Value> {
        Some(self.to_value())
    }
}

impl<T: Vocabulary> PlainValue for T {
    fn plain(self) -> Option<Value> {
        Some(self.to_value())
    }
}

impl<T: PlainValue> PlainValue for Option<T> {
    fn plain(self) -> Option<Value> {
        match self {
            Some(value) => value.plain(),
            None => Some(Value::Null),
        }
    }
}

impl<T: PlainValue, E> PlainValue for Result<T, E> {
    fn plain(self) -> Option<Value> {
        self.ok()?.plain()
    }
}

/// What a row type wraps: a whole row, or a [`Projected`] one whose fields are reached only
/// for the columns it was read with.
pub trait RowWith {
    type Model;
    type Column;
    /// The row, for a field that shows `columns`; `None` when one of them was not read.
    fn row_with(&self, columns: &[Self::Column]) -> Option<&Self::Model>;
}

impl<R: Borrow<S::Model>, S: ColumnSet> RowWith for Projected<R, S> {
    type Model = S::Model;
    type Column = S::Column;

    fn row_with(&self, columns: &[S::Column]) -> Option<&S::Model> {
        self.read(columns).map(|row| row.borrow())
    }
}

/// Whole rows: every column read.
macro_rules! whole_rows {
    ($($entity:ident),+) => {$(
        impl RowWith for entity::$entity::Model {
            type Model = Self;
            type Column = entity::$entity::Column;

            fn row_with(&self, _: &[Self::Column]) -> Option<&Self> {
                Some(self)
            }
        }
    )+};
}

whole_rows!(llm_runs, system_records, telemetry_samples, log_exports);

/// The error of a field whose columns the row was not read with (a view asked for fewer
/// columns than it shows: a bug, reported rather than answered with a placeholder).
pub fn not_read(type_name: &str, field: &str) -> async_graphql::Error {
    crate::error::AppError::internal(
        format!("{type_name}.{field} asked of a row read without its columns"),
        "column not read",
    )
    .into()
}

/// A stored vocabulary value of a row, for a resolver: [`crate::domain::read_stored`] (an
/// INTERNAL error naming the row when the value is corrupt).
pub fn stored<T: Vocabulary>(text: &str, row: impl FnOnce() -> String) -> async_graphql::Result<T> {
    Ok(crate::domain::read_stored(text, row)?)
}

/// [`stored`] for an optional column: null when the row holds none.
pub fn stored_opt<T: Vocabulary>(
    text: Option<&str>,
    row: impl FnOnce() -> String,
) -> async_graphql::Result<Option<T>> {
    text.map(|t| stored(t, row)).transpose()
}

/// The columns a selection of a view of rows shows (a run's trace, its policy events): `set`
/// (the row key), with the columns of each field selected on the rows (field `rows` of the
/// view, as the row type's `columns_of` declares them) and of the view's own fields listed in
/// `own`. Any other field (the view's metadata, a field added later) reads `all`.
pub fn view_columns<C: Copy + 'static, S: Copy>(
    view: &SelectionField<'_>,
    (mut set, all, with): (S, S, fn(S, C) -> S),
    rows: &str,
    columns_of: fn(&str) -> Option<&'static [C]>,
    own: &[(&str, &[C])],
) -> S {
    let add = |set: S, shown: &[C]| shown.iter().fold(set, |set, c| with(set, *c));
    for field in view.selection_set() {
        let name = field.name();
        let shown = if name == rows {
            for row in field.selection_set() {
                match columns_of(row.name()) {
                    Some(shown) => set = add(set, shown),
                    None => return all,
                }
            }
            continue;
        } else if name == "__typename" {
            continue;
        } else {
            own.iter()
                .find(|(own, _)| *own == name)
                .map(|(_, shown)| *shown)
        };
        match shown {
            Some(shown) => set = add(set, shown),
            None => return all,
        }
    }
    set
}

/// Declares a GraphQL row type: see the module documentation.
///
/// ```text
/// row_type! {
///     Wrapper(Inner) as row in entity_module, names: wrapper_field,
///         key: [row.key_column, ...], node: [Column, ...] => global id of `row`;
///     plain {
///         /// Description.
///         rust_name "graphqlName": Type [Column, ...] => expression of `row`;
///         rust_name "graphqlName": Type [Column, ...] opaque => expression of `row`;
///     }
///     resolvers {
///         /// Description.
///         async fn rust_name["graphqlName"](&self, ...) -> Type { ... }
///     }
/// }
/// ```
macro_rules! row_type {
    (@plain $fty:ty, $expr:expr, opaque) => {
        None
    };
    (@plain $fty:ty, $expr:expr,) => {{
        let value: $fty = $expr;
        $crate::graphql::rows::PlainValue::plain(value)
    }};
    (
        $ty:ident($inner:ty) as $row:ident in $entity:ident, names: $names:ident,
            key: [$($key:expr),+] $(, node: [$($ncol:ident),*] => $node:expr)?;
        plain {
            $(
                $(#[$fdoc:meta])*
                $field:ident $gql:literal: $fty:ty [$($col:ident),*] $($opaque:ident)? => $expr:expr;
            )*
        }
        $(resolvers {
            $(
                $(#[$rdoc:meta])*
                async fn $rfield:ident[$rgql:literal]($($args:tt)*) -> $rty:ty $body:block
            )*
        })?
    ) => {
        #[async_graphql::Object]
        impl $ty {
            $(
                /// Global id (Relay).
                pub async fn id(&self) -> async_graphql::Result<async_graphql::ID> {
                    let $row: &$entity::Model = $crate::graphql::rows::RowWith::row_with(
                        &self.0,
                        &[$($entity::Column::$ncol),*],
                    )
                    .ok_or_else(|| $crate::graphql::rows::not_read(stringify!($ty), "id"))?;
                    Ok($node)
                }
            )?
            $(
                $(#[$fdoc])*
                #[graphql(name = $gql)]
                pub async fn $field(&self) -> async_graphql::Result<$fty> {
                    #[allow(unused_variables)]
                    let $row: &$entity::Model = $crate::graphql::rows::RowWith::row_with(
                        &self.0,
                        &[$($entity::Column::$col),*],
                    )
                    .ok_or_else(|| $crate::graphql::rows::not_read(stringify!($ty), $gql))?;
                    Ok($expr)
                }
            )*
            $($(
                $(#[$rdoc])*
                #[graphql(name = $rgql)]
                pub async fn $rfield($($args)*) -> $rty $body
            )*)?
        }

        impl $crate::graphql::rows::PlainFields for $ty {
            fn plain_field(&self, name: &str) -> Option<async_graphql::Value> {
                // A field whose columns were not read is left to its resolver, which reports it.
                $(
                    if name == "id" {
                        let $row: &$entity::Model = $crate::graphql::rows::RowWith::row_with(
                            &self.0,
                            &[$($entity::Column::$ncol),*],
                        )?;
                        let value: async_graphql::ID = $node;
                        return $crate::graphql::rows::PlainValue::plain(value);
                    }
                )?
                $(
                    if name == $gql {
                        #[allow(unused_variables)]
                        let $row: &$entity::Model = $crate::graphql::rows::RowWith::row_with(
                            &self.0,
                            &[$($entity::Column::$col),*],
                        )?;
                        return $crate::graphql::rows::row_type!(@plain $fty, $expr, $($opaque)?);
                    }
                )*
                None
            }
        }

        impl $ty {
            /// The row's table and key (`table k1/k2`), naming the row in errors about it.
            #[allow(dead_code)]
            pub(crate) fn row_key($row: &$entity::Model) -> String {
                let key: Vec<String> = vec![$($key.to_string()),+];
                format!("{} {}", stringify!($entity), key.join("/"))
            }

            /// The GraphQL names of the plain fields.
            #[cfg(test)]
            pub const PLAIN_FIELD_NAMES: &'static [&'static str] = &[$($gql),*];

            /// The columns the field `name` (its GraphQL name) shows beyond the row's key;
            /// `None` for a field that is not a plain field of the row (it may read anything).
            #[allow(dead_code)]
            pub fn columns_of(name: &str) -> Option<&'static [$entity::Column]> {
                $(
                    if name == "id" {
                        return Some(&[$($entity::Column::$ncol),*]);
                    }
                )?
                $(
                    if name == $gql {
                        return Some(&[$($entity::Column::$col),*]);
                    }
                )*
                if name == "__typename" {
                    return Some(&[]);
                }
                None
            }
        }

        #[doc = concat!("GraphQL names of the fields of `", stringify!($ty), "`.")]
        #[allow(non_upper_case_globals, dead_code)]
        pub mod $names {
            $(pub const $field: &str = $gql;)*
            $($(pub const $rfield: &str = $rgql;)*)?
        }
    };
}

/// Declares a GraphQL object that is not a row: its resolvers, each named with its GraphQL
/// name, and a module of those names (see the module documentation).
macro_rules! view_type {
    (
        $ty:ident, names: $names:ident;
        $(
            $(#[$rdoc:meta])*
            async fn $rfield:ident[$rgql:literal]($($args:tt)*) -> $rty:ty $body:block
        )*
    ) => {
        #[async_graphql::Object]
        impl $ty {
            $(
                $(#[$rdoc])*
                #[graphql(name = $rgql)]
                pub async fn $rfield($($args)*) -> $rty $body
            )*
        }

        #[doc = concat!("GraphQL names of the fields of `", stringify!($ty), "`.")]
        #[allow(non_upper_case_globals, dead_code)]
        pub mod $names {
            $(pub const $rfield: &str = $rgql;)*
        }
    };
}

pub(crate) use {row_type, view_type};

#[cfg(test)]
mod tests {
    //! Every plain field of a row type read with only its declared columns (and the key)
    //! answers as it does on the whole row: a field that reads a column it does not declare
    //! would show a placeholder there. And a field whose columns were not read is refused, not
    //! answered with a placeholder.

    use chrono::{TimeZone, Utc};

    use super::PlainFields;
    use crate::facade::decode::{AuditColumns, EventColumns, Projected, StepColumns};
    use crate::facade::shared::Shared;
    use crate::graphql::audit::AuditEntry;
    use crate::graphql::runs::{GovernanceEvent, TraceStep};
    use entity::{audit_ledger, governance_events, trace_steps};

    fn at(second: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, second)
            .single()
            .unwrap_or_default()
    }

    fn step() -> trace_steps::Model {
        trace_steps::Model {
            tenant_id: "acme".into(),
            trace_id: "trace-1".into(),
            step_index: 3,
            occurred_at: at(1),
            skill_name: "search".into(),
            status: "FAILED".into(),
            outcome_category: "TOOL_ERROR".into(),
            cost_cents: 17,
            duration_ms: 420,
            span_id: Some("00f067aa0ba902b7".into()),
            recorded_at: at(2),
            record_hash: "ab".repeat(32),
            anchor_id: Some("anchor-1".into()),
            provider: Some("openai".into()),
            request_model: Some("gpt-4o".into()),
            response_model: Some("gpt-4o-2024-08-06".into()),
            input_tokens: Some(120),
            output_tokens: Some(30),
            cache_read_tokens: Some(64),
            cache_creation_tokens: Some(8),
            session_id: Some("session-1".into()),
            attributes: Some("{\"attributes\":{\"a\":1}}".into()),
            content: Some("{\"attributes\":{\"input.value\":\"hi\"}}".into()),
            content_sha256: Some("12".repeat(32)),
        }
    }

    fn event() -> governance_events::Model {
        governance_events::Model {
            tenant_id: "acme".into(),
            id: "event-1".into(),
            run_id: "run-1".into(),
            occurred_at: at(3),
            event_type: "POLICY_CHECK".into(),
            policy_id: Some("policy-1".into()),
            rule_id: Some("rule-1".into()),
            decision: "BLOCK".into(),
            entity_type: "tool_call".into(),
            entity_id: "call-1".into(),
            reason: Some("not allowed".into()),
            recorded_at: at(4),
            record_hash: "cd".repeat(32),
            anchor_id: Some("anchor-1".into()),
        }
    }

    fn entry() -> audit_ledger::Model {
        audit_ledger::Model {
            tenant_id: "acme".into(),
            seq: 9,
            id: "entry-9".into(),
            category: "ACCESS".into(),
            event_type: "EVIDENCE_READ".into(),
            entity_type: "llm_run".into(),
            entity_id: "run-1".into(),
            actor_type: "SYSTEM".into(),
            actor_id: Some("key:k1".into()),
            action_reason: Some("Q3".into()),
            decision: Some("ALLOW".into()),
            before_state: Some("{\"a\":1}".into()),
            after_state: Some("{\"b\":2}".into()),
            correlation_id: Some("corr-1".into()),
            occurred_at: at(5),
            recorded_at: at(6),
            prev_hash: "00".repeat(32),
            entry_hash: "ef".repeat(32),
        }
    }

    /// For each plain field of a row type: read with its declared columns (and the key)
    /// alone, it answers as the whole row does; read with the key alone, a field that shows
    /// other columns is refused; and its placeholders would change its answer (so the first
    /// check can fail).
    macro_rules! check_row_type {
        ($ty:ident, $set:ident, $row:expr, $wrap:expr) => {{
            let whole = $row;
            let wrap = $wrap;
            let full = $ty(Projected::whole(wrap(whole.clone())));
            let with =
                |columns: $set| $ty(Projected::read_with(wrap(columns.as_read(&whole)), columns));
            for name in std::iter::once("id").chain($ty::PLAIN_FIELD_NAMES.iter().copied()) {
                let shown = $ty::columns_of(name).unwrap_or(&[]);
                let columns = $set::KEY.with_all(shown);
                let what = format!("{}.{name}", stringify!($ty));
                assert_eq!(
                    with(columns).plain_field(name),
                    full.plain_field(name),
                    "{what}"
                );
                if columns != $set::KEY {
                    assert_eq!(with($set::KEY).plain_field(name), None, "{what} refused");
                    let placeholders = $ty(Projected::whole(wrap($set::KEY.as_read(&whole))));
                    if full.plain_field(name).is_some() {
                        assert_ne!(
                            placeholders.plain_field(name),
                            full.plain_field(name),
                            "{what}: the fixture must differ from placeholders"
                        );
                    }
                }
            }
        }};
    }

    #[test]
    fn plain_fields_read_only_their_declared_columns() {
        check_row_type!(TraceStep, StepColumns, step(), Shared::one);
        check_row_type!(GovernanceEvent, EventColumns, event(), Shared::one);
        check_row_type!(AuditEntry, AuditColumns, entry(), |e| e);
    }
}
