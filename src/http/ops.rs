//! Operator endpoints: liveness, readiness, the published checkpoint verifier key and the
//! Prometheus counters.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::state::AppState;

/// Where the checkpoint verifier key is published (no authentication: it is public).
pub const CHECKPOINT_KEY_PATH: &str = "/.well-known/runledger/checkpoint-key";

/// The C2SP verifier key of the key that signs checkpoints, one line of text.
pub async fn checkpoint_key(State(state): State<AppState>) -> Response {
    let mut resp = format!("{}\n", state.ledger.signer.verifier_key()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The counters in the Prometheus text format; 404 unless `--metrics` is on.
pub async fn serve_metrics(State(state): State<AppState>) -> Response {
    let Some(metrics) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e.describe(), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
