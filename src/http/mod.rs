//! The HTTP edge: everything between a TCP connection and the facade. Its layers, low to
//! high (a module imports only those before it; see docs/architecture.md):
//!
//! - [`ratelimit`], [`metrics`], [`documents`]: the token buckets, the `/metrics` counters and
//!   the parsed-document cache;
//! - [`state`]: the settings and the state every handler shares, and the one constructor of a
//!   request's facade;
//! - [`envelope`]: the GraphQL JSON error envelope and the status an error calls for;
//! - [`caller`]: the extractor that says who is asking (bearer key, client address, rate limit);
//! - the handlers: [`graphql`] (GraphQL over HTTP), [`otlp`] (`POST /v1/traces`), [`graphiql`]
//!   (the IDE page and its assets), [`dashboard`] (the dashboard page and its assets), [`ops`] (health, readiness, checkpoint key, metrics),
//!   [`exports`] (`GET /exports/{id}`, the download of an export), [`live`] (subscriptions over
//!   graphql-transport-ws and SSE);
//! - [`router`]: which path goes to which handler, and the layers every request passes;
//! - [`connections`]: the accept loop (HTTP/1.1, header-read timeout, graceful shutdown).

pub mod caller;
pub mod connections;
pub mod dashboard;
pub mod documents;
pub mod envelope;
pub mod exports;
pub mod graphiql;
pub mod graphql;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod otlp;
pub mod ratelimit;
pub mod router;
pub mod state;

pub use router::router;

use axum::http::{HeaderMap, header};

/// The media type a request's `Content-Type` names, lowercased, without its parameters
/// (RFC 9110 §8.3.1: the type and subtype are case-insensitive); empty when there is none.
pub fn content_media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}
pub use state::{AppState, HttpSettings};
