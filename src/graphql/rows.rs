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

use async_graphql::{ID, InputType, SelectionField, Value};

pub use super::plain::PlainFields;
use crate::domain::{Timestamp, Vocabulary};

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
                pub async fn id(&self) -> async_graphql::ID {
                    let $row: &$entity::Model = &self.0;
                    $node
                }
            )?
            $(
                $(#[$fdoc])*
                #[graphql(name = $gql)]
                pub async fn $field(&self) -> $fty {
                    #[allow(unused_variables)]
                    let $row: &$entity::Model = &self.0;
                    $expr
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
                #[allow(unused_variables)]
                let $row: &$entity::Model = &self.0;
                $(
                    if name == "id" {
                        let value: async_graphql::ID = $node;
                        return $crate::graphql::rows::PlainValue::plain(value);
                    }
                )?
                $(
                    if name == $gql {
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
