//! Pieces every topic's resolvers share: reaching the request's facade, Relay global ids,
//! turning a facade page into a Relay connection, a list's own fields, and objects with
//! paged fields.

use async_graphql::connection::{Connection, Edge};
use async_graphql::types::Json;
use async_graphql::{Context, Object, ObjectType, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AppError;
use crate::facade::audit::AuditFilter;
use crate::facade::runs::RunFilter;
use crate::facade::system::SystemFilter;
use crate::facade::{EvidenceMetadata, Facade, Page, PageArgs, page::ListKind};

/// The facade of the current request.
pub fn facade<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Facade> {
    ctx.data::<std::sync::Arc<Facade>>()
        .map(|f| f.as_ref())
        .map_err(|_| AppError::internal("reach the request facade", "facade missing").into())
}

/// Kinds of object that have a global id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    LlmRun,
    TraceStep,
    GovernanceEvent,
    SystemRecord,
    AuditEntry,
    LogExport,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::LlmRun => "LlmRun",
            NodeKind::TraceStep => "TraceStep",
            NodeKind::GovernanceEvent => "GovernanceEvent",
            NodeKind::SystemRecord => "SystemRecord",
            NodeKind::AuditEntry => "AuditEntry",
            NodeKind::LogExport => "LogExport",
        }
    }

    fn parse(name: &str) -> Option<NodeKind> {
        [
            NodeKind::LlmRun,
            NodeKind::TraceStep,
            NodeKind::GovernanceEvent,
            NodeKind::SystemRecord,
            NodeKind::AuditEntry,
            NodeKind::LogExport,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// A global id: base64url of the JSON array `[kind, key parts…]`. Tenant is never part of it:
/// every lookup is scoped to the caller's tenant.
pub fn global_id(kind: NodeKind, parts: &[&str]) -> async_graphql::ID {
    let mut all = vec![kind.name()];
    all.extend_from_slice(parts);
    let json = serde_json::to_string(&all).unwrap_or_default();
    async_graphql::ID(URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a global id into its kind and key parts.
pub fn parse_global_id(id: &str) -> Result<(NodeKind, Vec<String>), AppError> {
    let bad = || AppError::bad_input(format!("`{id}` is not a global id returned by this API"));
    let raw = URL_SAFE_NO_PAD.decode(id).map_err(|_| bad())?;
    let parts: Vec<String> = serde_json::from_slice(&raw).map_err(|_| bad())?;
    // No id this API returns holds a NUL, which PostgreSQL cannot even compare with.
    if parts.iter().any(|p| p.contains('\0')) {
        return Err(bad());
    }
    let (kind, rest) = parts.split_first().ok_or_else(bad)?;
    let kind = NodeKind::parse(kind).ok_or_else(bad)?;
    Ok((kind, rest.to_vec()))
}

/// Validates paging arguments for a list.
pub fn page_args(
    list: ListKind,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> async_graphql::Result<PageArgs> {
    Ok(PageArgs::parse(list, first, after, last, before)?)
}

/// A Relay connection over a facade page.
pub fn connection<M, N, F>(
    page: Page<M>,
    wrap: impl Fn(M) -> N,
    fields: F,
) -> Connection<String, N, F>
where
    N: OutputType,
    F: ObjectType,
{
    let mut c = Connection::with_additional_fields(page.has_previous, page.has_next, fields);
    c.edges = page
        .items
        .into_iter()
        .map(|(cursor, m)| Edge::new(cursor, wrap(m)))
        .collect();
    c
}

/// A list's filter as the list's own fields show it: what was applied, and how many rows
/// match.
pub trait ListFilter: Send + Sync + 'static {
    /// The filters applied, as JSON.
    fn applied(&self) -> serde_json::Value;
    /// The rows matching the filter.
    fn count<'a>(
        &'a self,
        facade: &'a Facade,
    ) -> impl std::future::Future<Output = crate::error::AppResult<u64>> + Send + 'a;
}

/// [`ListFilter`] for a topic's filter, counted by the facade's `count` method.
macro_rules! list_filter {
    ($($filter:ident => $count:ident),+ $(,)?) => {$(
        impl ListFilter for $filter {
            fn applied(&self) -> serde_json::Value {
                $filter::applied(self)
            }
            fn count<'a>(
                &'a self,
                facade: &'a Facade,
            ) -> impl std::future::Future<Output = crate::error::AppResult<u64>> + Send + 'a {
                facade.$count(self)
            }
        }
    )+};
}

list_filter!(
    RunFilter => count_llm_runs,
    SystemFilter => count_system_records,
    AuditFilter => count_audit_entries,
);

/// Fields of a filtered list besides its edges: one type per topic's filter.
pub struct ListInfo<F> {
    pub filter: F,
    pub metadata: EvidenceMetadata,
}

#[Object(
    concrete(name = "LlmRunListInfo", params(RunFilter)),
    concrete(name = "SystemRecordListInfo", params(SystemFilter)),
    concrete(name = "AuditEntryListInfo", params(AuditFilter))
)]
impl<F: ListFilter> ListInfo<F> {
    /// Number of rows matching the filter (counted only when selected).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.filter.count(facade(ctx)?).await? as i64)
    }
    /// The filters applied, as JSON.
    async fn filters_applied(&self) -> Json<serde_json::Value> {
        Json(self.filter.applied())
    }
    async fn metadata(&self) -> &EvidenceMetadata {
        &self.metadata
    }
}

/// Declares a GraphQL object whose fields are ordinary resolvers, some of them Relay pages:
/// a method marked `paged(first, after, last, before)` gets the four paging arguments,
/// described once here, after its own. The marker names the arguments, and the `#[Object]`
/// attribute and each method's complexity (`page_cost(first, last, child_complexity)`) are
/// the caller's: macro hygiene keeps a macro's own names out of the code passed in, and
/// async-graphql reads a complexity's names where its attribute was written.
///
/// ```text
/// paged_object! {
///     #[Object] Type;
///     /// Description.
///     #[graphql(complexity = "crate::graphql::page_cost(first, last, child_complexity)")]
///     paged(first, after, last, before) async fn name(&self, ctx: &Context<'_>, filter: Option<Filter>) -> Result<Conn> {
///         ... first, after, last, before ...
///     }
///     async fn other(&self) -> i32 { ... }
/// }
/// ```
macro_rules! paged_object {
    ($hash:tt $object:tt $ty:ident; $($rest:tt)*) => {
        $crate::graphql::common::paged_object!(@munch ($hash $object) $ty [] $($rest)*);
    };
    (@munch ($hash:tt $object:tt) $ty:ident [$($done:tt)*]
        $(#[$m:meta])*
        paged($first:ident, $after:ident, $last:ident, $before:ident) async fn $name:ident(
            &self, $ctx:ident: &Context<'_> $(, $(#[$am:meta])* $arg:ident: $argty:ty)* $(,)?
        ) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::graphql::common::paged_object!(@munch ($hash $object) $ty [$($done)*
            $(#[$m])*
            #[allow(clippy::too_many_arguments)]
            async fn $name(
                &self,
                $ctx: &Context<'_>,
                $($(#[$am])* $arg: $argty,)*
                #[graphql(
                    desc = "Rows from the start, or after `after`: 1 to 100 (default 20 when neither `first` nor `last` is given)."
                )]
                $first: Option<i32>,
                #[graphql(
                    desc = "Cursor of the row to start after (`pageInfo.endCursor` of the page before); goes with `first`."
                )]
                $after: Option<String>,
                #[graphql(desc = "Rows from the end, or before `before`: 1 to 100.")]
                $last: Option<i32>,
                #[graphql(
                    desc = "Cursor of the row to end before (`pageInfo.startCursor` of the page after); goes with `last`."
                )]
                $before: Option<String>,
            ) -> $ret $body
        ] $($rest)*);
    };
    (@munch ($hash:tt $object:tt) $ty:ident [$($done:tt)*]
        $(#[$m:meta])*
        async fn $name:ident($($args:tt)*) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::graphql::common::paged_object!(@munch ($hash $object) $ty [$($done)*
            $(#[$m])*
            async fn $name($($args)*) -> $ret $body
        ] $($rest)*);
    };
    (@munch ($hash:tt $object:tt) $ty:ident [$($done:tt)*]) => {
        $hash $object
        impl $ty {
            $($done)*
        }
    };
}

pub(crate) use paged_object;

/// A column holding JSON text, as JSON (null when empty).
pub fn json_column(text: &Option<String>) -> Option<async_graphql::Json<serde_json::Value>> {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .map(async_graphql::Json)
}
