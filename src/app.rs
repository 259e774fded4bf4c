//! Builds the HTTP application from its state: GraphQL over HTTP, GraphiQL, health checks,
//! and the layers every request passes (body limit, timeout, panic guard). `serve` and the
//! tests call the same function.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::db::Db;
use crate::graphiql::{self, GraphiqlPage};
use crate::graphql::{AppSchema, Limits, build_schema};
use crate::ledger::appender::Appender;
use crate::ledger::checkpoint::LedgerKeys;
use crate::{http, otlp};

/// HTTP-level settings.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub limits: Limits,
    /// Key GraphiQL opens with (demo mode only).
    pub graphiql_bearer: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_batch: 10,
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            graphiql_bearer: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub schema: AppSchema,
    pub settings: Arc<HttpSettings>,
    /// The key that signs checkpoints, and the keys verification trusts.
    pub ledger: LedgerKeys,
    /// Group commit for ledger entries written outside evidence batches.
    pub appender: Appender,
}

impl AppState {
    pub fn new(db: Db, ledger: LedgerKeys, settings: HttpSettings) -> Self {
        AppState {
            schema: build_schema(&settings.limits),
            appender: Appender::start(db.clone()),
            db,
            settings: Arc::new(settings),
            ledger,
        }
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let page = GraphiqlPage {
        endpoint: "/graphql".into(),
        default_bearer: state.settings.graphiql_bearer.clone(),
    };
    let settings = state.settings.clone();
    Router::new()
        .route(
            "/graphql",
            get(http::graphql_get)
                .post(http::graphql_post)
                .fallback(http::graphql_other),
        )
        .route("/v1/traces", post(otlp::traces))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(CHECKPOINT_KEY_PATH, get(checkpoint_key))
        .route("/", get(|| async { Redirect::temporary("/graphiql") }))
        .merge(graphiql::router(page))
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(log_request))
}

/// One structured log line per request: method, path, status, latency.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        http.method = %method,
        http.path = %path,
        http.status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// A panic never reaches the client as anything but a generic internal error.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let body = r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#;
    let mut resp = (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Where the checkpoint verifier key is published (no authentication: it is public).
pub const CHECKPOINT_KEY_PATH: &str = "/.well-known/runledger/checkpoint-key";

/// The C2SP verifier key of the key that signs checkpoints, one line of text.
async fn checkpoint_key(State(state): State<AppState>) -> Response {
    let mut resp = format!("{}\n", state.ledger.signer.verifier_key()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e.describe(), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
