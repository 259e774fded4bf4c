//! Black-box tests of runledger over real HTTP, each against SQLite and PostgreSQL.

mod audit;
mod fixture;
mod helpers;
mod http;
mod isolation;
mod runs;
mod schema;
mod statements;
mod system;
