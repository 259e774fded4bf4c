//! runledger: an append-only, tamper-evident evidence-log server for LLM agent platforms,
//! serving LLM runs, system logs and a per-tenant audit ledger over GraphQL.
//!
//! A tour of the modules, from the top layer down (docs/architecture.md has the layer table,
//! one request's path through them, and where to add a field, an operation, an ingest mapping
//! or a ledger event):
//!
//! - [`startup`], [`config`]: the one start-up of the server (`Server::build`,
//!   `run_until_stopped`), used by `serve`, the tests and the benchmark; flags and
//!   `RUNLEDGER_*` variables, and their mapping to settings.
//! - [`http`]: the edge: the router, GraphQL over HTTP, the OTLP receiver, GraphiQL, the caller
//!   extractor, the error envelope, rate limits, the document cache, metrics, connections.
//! - [`graphql`]: the schema: thin resolvers per topic that call the facade.
//! - [`facade`]: the read operations of the three topics, their evidence metadata, keyset
//!   pagination and the per-request DataLoaders. Only the facade and the write paths touch
//!   entities.
//! - [`seed`]: deterministic, realistic demo and benchmark data, written as requests write it.
//! - [`ingest`]: the evidence write path (record hashes, atomic batches, anchoring).
//! - [`export`]: exports: the job queue and its workers, the signed bundle (docs/exports.md),
//!   CSV, and the offline bundle verifier.
//! - [`auth`]: API keys, callers, the key cache and the permission matrix.
//! - [`ledger`]: the hash-chained audit ledger: its vocabulary, encoding, the one appender,
//!   checkpoints, verification.
//! - [`canonical`], [`domain`], [`error`], [`ids`], [`db`]: shared foundations.

pub mod auth;
pub mod canonical;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod export;
pub mod facade;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod ingest;
#[cfg(test)]
mod layering;
pub mod ledger;
pub mod rollup;
pub mod seed;
pub mod startup;

/// Locks a mutex that guards a cache or a request's bookkeeping: a panic elsewhere while it
/// was held leaves data that is still usable, so the lock is taken anyway.
pub(crate) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
