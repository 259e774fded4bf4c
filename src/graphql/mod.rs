//! The GraphQL schema: one query part per topic, merged; resolvers are thin and call the
//! facade. `schema.graphql` at the repo root is this schema's SDL, checked by a test. Where to
//! add a field or an operation: docs/architecture.md.

pub mod audit;
pub mod bounds;
pub mod common;
pub mod exports;
pub mod ingest;
pub mod keys;
pub mod live;
pub mod node;
pub mod plain;
pub mod rows;
pub mod runs;
pub mod settings;
pub mod stats;
pub mod system;

use async_graphql::{MergedObject, Schema};

/// The root query: the topics' parts side by side.
#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    runs::RunsQuery,
    system::SystemQuery,
    audit::AuditQuery,
    keys::KeysQuery,
    settings::SettingsQuery,
    stats::StatsQuery,
    live::LiveQuery,
);

/// The root mutation: writes, by topic.
#[derive(MergedObject, Default)]
pub struct Mutation(
    ingest::IngestMutation,
    keys::KeysMutation,
    settings::SettingsMutation,
    exports::ExportsMutation,
);

pub type AppSchema = Schema<Query, Mutation, live::Subscription>;

/// Limits applied to every query.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 15,
            max_complexity: 5000,
            introspection: true,
        }
    }
}

/// Complexity of a connection: its selection counted once per row of the page asked for, so
/// a page of 100 costs a hundred times a page of one.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let rows = first
        .or(last)
        .map_or(crate::domain::PageSize::DEFAULT, |n| n.clamp(1, 100) as u64);
    rows as usize * child_complexity.max(1) + 1
}

/// Complexity of a full integrity verification, which reads the whole ledger.
pub const INTEGRITY_COST: usize = 500;

/// Builds the schema with its limits. It has no extensions: list items answered in one pass
/// (`plain::Plain`) skip per-field extension hooks, so one added here must not rely on them.
pub fn build_schema(limits: &Limits) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), live::Subscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    // With `@specifiedBy`, as introspection gives `specifiedByURL` (GraphQL spec §3.13).
    build_schema(&Limits::default())
        .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}
