//! Objects answered in one pass. async-graphql resolves each field of each object as its own
//! boxed future and gathers the results through a future set; a page of 20 runs with their
//! steps and policy events is 480 objects and about 1,500 such futures, a third of the
//! request's CPU. Most list items are rows whose selected fields are plain values of the row
//! (a step's index, skill and status): [`Plain`] answers such a selection directly.
//!
//! Anything it does not know — a field with arguments, directives or a selection of its own,
//! a fragment on another type, a value it cannot render without failing — sends the whole
//! object back to its own resolvers, so answers and errors are the same either way (a
//! black-box test compares the two paths field by field).

use std::borrow::Cow;

use async_graphql::parser::types::{Field, SelectionSet};
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value, indexmap::IndexMap,
    parser::types::Selection, registry,
};

/// An object some of whose fields are plain values.
pub trait PlainFields: OutputType {
    /// The value of field `name` (its GraphQL name) exactly as the field's resolver renders
    /// it, or `None` when it is not a plain value: it takes arguments, reads more data, or
    /// would fail (the resolver then reports the error).
    fn plain_field(&self, name: &str) -> Option<Value>;
}

/// An object resolved in one pass when its selection allows, by its own resolvers otherwise.
/// It has the wrapped type's name and schema.
pub struct Plain<T>(pub T);

impl<T: PlainFields> OutputType for Plain<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let type_name = self.0.introspection_type_name();
        let mut values = IndexMap::new();
        if collect(ctx, &ctx.item.node, &self.0, &type_name, &mut values) {
            // An object whose selection yields nothing (every field skipped) is `{}`, as the
            // patched async-graphql answers it too.
            return Ok(Value::Object(values));
        }
        self.0.resolve(ctx, field).await
    }
}

/// Adds the values of `set` on `row` to `values`; false when some selection needs the
/// object's own resolvers. (`@skip` and `@include` are gone by now: async-graphql removes the
/// selections they exclude before execution.)
fn collect<T: PlainFields>(
    ctx: &ContextSelectionSet<'_>,
    set: &SelectionSet,
    row: &T,
    type_name: &str,
    values: &mut IndexMap<Name, Value>,
) -> bool {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if !field.arguments.is_empty()
                    || !field.directives.is_empty()
                    || !field.selection_set.node.items.is_empty()
                {
                    return false;
                }
                let name = field.name.node.as_str();
                let value = if name == "__typename" {
                    Value::String(type_name.to_string())
                } else {
                    match row.plain_field(name) {
                        Some(value) => value,
                        None => return false,
                    }
                };
                // The first occurrence of a response key wins, as in async-graphql (validation
                // has made sure repeated keys select the same field).
                values
                    .entry(field.response_key().node.clone())
                    .or_insert(value);
            }
            Selection::FragmentSpread(spread) => {
                let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node)
                else {
                    return false;
                };
                if !spread.node.directives.is_empty()
                    || fragment.node.type_condition.node.on.node != type_name
                    || !collect(
                        ctx,
                        &fragment.node.selection_set.node,
                        row,
                        type_name,
                        values,
                    )
                {
                    return false;
                }
            }
            Selection::InlineFragment(inline) => {
                let on_this_type = inline
                    .node
                    .type_condition
                    .as_ref()
                    .is_none_or(|condition| condition.node.on.node == type_name);
                if !inline.node.directives.is_empty()
                    || !on_this_type
                    || !collect(ctx, &inline.node.selection_set.node, row, type_name, values)
                {
                    return false;
                }
            }
        }
    }
    true
}
