//! runledger: an append-only, tamper-evident evidence-log server for LLM agent platforms,
//! serving LLM runs, system logs and a per-tenant audit ledger over GraphQL.
//!
//! A tour of the modules, from the edge inwards:
//!
//! - [`config`]: command-line flags and `RUNLEDGER_*` environment variables.
//! - [`app`]: builds the axum router (GraphQL over HTTP, GraphiQL, health) from shared state;
//!   the tests start the same router.
//! - [`connections`]: the accept loop: HTTP/1.1 with a header-read timeout, client addresses,
//!   graceful shutdown.
//! - [`http`]: the GraphQL-over-HTTP handler (content negotiation, status codes, GET rules).
//! - [`otlp`]: the OpenTelemetry OTLP/HTTP trace receiver (`POST /v1/traces`).
//! - [`graphql`]: the schema: thin resolvers per topic that call the facade.
//! - [`facade`]: the 19 read operations of the three topics, their evidence metadata, keyset
//!   pagination and the per-request DataLoaders. Only the facade and the write paths touch
//!   entities.
//! - [`ingest`]: the evidence write path (record hashes, atomic batches, anchoring).
//! - [`ledger`]: the hash-chained audit ledger: encoding, the one appender, the chain walk.
//! - [`auth`]: API keys, callers and the permission matrix.
//! - [`metrics`]: request and SQL statement counters for `/metrics`.
//! - [`seed`]: deterministic, realistic demo and benchmark data.
//! - [`canonical`], [`domain`], [`error`], [`ids`], [`db`]: shared foundations.

pub mod app;
pub mod auth;
pub mod canonical;
pub mod config;
pub mod connections;
pub mod db;
pub mod documents;
pub mod domain;
pub mod error;
pub mod facade;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod ledger;
pub mod metrics;
pub mod otlp;
pub mod ratelimit;
pub mod seed;

/// Locks a mutex that guards a cache or a request's bookkeeping: a panic elsewhere while it
/// was held leaves data that is still usable, so the lock is taken anyway.
pub(crate) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
