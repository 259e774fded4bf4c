//! Pieces every topic's resolvers share: reaching the request's facade, Relay global ids,
//! and turning a facade page into a Relay connection.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ObjectType, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AppError;
use crate::facade::{Facade, Page, PageArgs, page::ListKind};

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

/// A column holding JSON text, as JSON (null when empty).
pub fn json_column(text: &Option<String>) -> Option<async_graphql::Json<serde_json::Value>> {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .map(async_graphql::Json)
}
