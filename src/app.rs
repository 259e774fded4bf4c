//! Builds the HTTP application from its state: GraphQL over HTTP, GraphiQL, health checks,
//! and the layers every request passes (body limit, timeout, panic guard). `serve` and the
//! tests call the same function.

use std::sync::Arc;
use std::time::Duration;

use crate::documents::DocumentCache;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::db::Db;
use crate::facade::TenantCache;
use crate::graphiql::{self, GraphiqlPage};
use crate::graphql::{AppSchema, Limits, build_schema};
use crate::ledger::appender::Appender;
use crate::ledger::checkpoint::LedgerKeys;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
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
    /// Record every request's authorization decisions and evidence reads in the ledger (off
    /// only to measure what recording costs).
    pub record_requests: bool,
    /// Most aliased fields in one operation.
    pub max_aliases: usize,
    /// Most bytes of GraphQL query text in one operation.
    pub max_document_bytes: usize,
    /// Most field selections in one document once its fragments are expanded.
    pub max_selections: usize,
    /// How long a connection may take to send a request's headers (slow clients are cut off).
    pub header_read_timeout: Duration,
    /// Requests per second and burst allowed to each API key, and to each client address for
    /// requests without a key; `None` for no limit.
    pub rate_limit: Option<(f64, u32)>,
    /// Browser origins allowed by CORS (`*` for any); empty for no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// Serve request and SQL statement counters at `/metrics`.
    pub metrics: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_batch: 10,
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            graphiql_bearer: None,
            record_requests: true,
            max_aliases: 50,
            max_document_bytes: 100_000,
            max_selections: 5_000,
            header_read_timeout: Duration::from_secs(30),
            rate_limit: None,
            cors_allowed_origins: Vec::new(),
            metrics: false,
        }
    }
}

impl HttpSettings {
    /// The bounds every GraphQL document is checked against before it runs.
    pub fn document_bounds(&self) -> crate::graphql::bounds::DocumentBounds {
        crate::graphql::bounds::DocumentBounds {
            max_bytes: self.max_document_bytes,
            max_selections: self.max_selections,
            max_aliases: self.max_aliases,
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
    /// Per-key token buckets, when rate limiting is on.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Counters for `/metrics`, when it is served.
    pub metrics: Option<Arc<Metrics>>,
    /// Parsed documents of the queries the server has seen.
    pub documents: Arc<DocumentCache>,
    /// Tenant records the server has read.
    pub tenants: Arc<TenantCache>,
}

impl AppState {
    pub fn new(mut db: Db, ledger: LedgerKeys, settings: HttpSettings) -> Self {
        // Counting starts before the appender takes its copy of the connection.
        let metrics = settings.metrics.then(|| Metrics::counting(&mut db));
        AppState {
            metrics,
            documents: Arc::default(),
            tenants: Arc::default(),
            schema: build_schema(&settings.limits),
            appender: Appender::start(db.clone()),
            rate_limiter: settings
                .rate_limit
                .and_then(|(rate, burst)| RateLimiter::new(rate, burst))
                .map(Arc::new),
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
    let metrics = state.metrics.clone();
    let router = Router::new()
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
        .route("/metrics", get(serve_metrics))
        .route("/", get(|| async { Redirect::temporary("/graphiql") }))
        .merge(graphiql::router(page))
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            settings.request_timeout,
            time_limit,
        ))
        .layer(CatchPanicLayer::custom(panic_response));
    let router = match cors_layer(&settings.cors_allowed_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.layer(middleware::from_fn_with_state(metrics, log_request))
}

/// CORS for browser dashboards on other origins: GET and POST with the headers the API reads.
/// `None` (no CORS headers at all) unless origins are configured.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o.trim() == "*") {
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    Some(layer.allow_origin(AllowOrigin::list(list)))
}

/// Cancels a request that runs past the time limit and answers 503 with the GraphQL error code
/// TIMEOUT (a dropped request rolls back whatever it had not committed).
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let body = serde_json::json!({"errors": [{
                "message": format!(
                    "the request took longer than {} ms and was cancelled",
                    limit.as_millis()
                ),
                "extensions": {"code": "TIMEOUT"},
            }]});
            let mut resp = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            resp
        }
    }
}

/// One structured log line per request: method, path, status, latency; and the request count.
async fn log_request(
    State(metrics): State<Option<Arc<Metrics>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(m) = &metrics {
        m.count_request();
    }
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

/// The counters in the Prometheus text format; 404 unless `--metrics` is on.
async fn serve_metrics(State(state): State<AppState>) -> Response {
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
