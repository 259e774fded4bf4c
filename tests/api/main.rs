//! Black-box tests of runledger over real HTTP, each against SQLite and PostgreSQL.

// Tests fail loudly: unwrapping is how they say what they expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod access;
mod audit;
mod cli;
mod dashboard;
mod exports;
mod fixture;
mod helpers;
mod http;
mod ingest;
mod isolation;
mod live;
mod otlp;
mod otlp_assembly;
mod otlp_conventions;
mod resolution;
mod runs;
mod schema;
mod seeded;
mod spec;
mod startup;
mod statements;
mod stats;
mod system;
mod system_scope;
mod tamper;
mod verification;
mod vocabulary;
