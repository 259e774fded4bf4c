//! The whole HTTP application: which path goes to which handler, and the layers every request
//! passes (body limit, time limit, panic guard, CORS, request log). `Server::build` serves it;
//! nothing else assembles routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::AppError;

use super::dashboard;
use super::envelope;
use super::graphiql::{self, GraphiqlPage};
use super::metrics::Metrics;
use super::state::AppState;
use super::{exports, graphql, ops, otlp};

const JSON: &str = "application/json; charset=utf-8";

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
            get(graphql::graphql_get)
                .post(graphql::graphql_post)
                .fallback(graphql::graphql_other),
        )
        .route("/v1/traces", post(otlp::traces))
        .route("/exports/{id}", get(exports::download))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route(ops::CHECKPOINT_KEY_PATH, get(ops::checkpoint_key))
        .route("/metrics", get(ops::serve_metrics))
        .route("/", get(|| async { Redirect::temporary("/graphiql") }))
        .merge(graphiql::router(page))
        .merge(dashboard::router())
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
            let e = AppError::Timeout(format!(
                "the request took longer than {} ms and was cancelled",
                limit.as_millis()
            ));
            envelope::error_response(envelope::status_of(&e), JSON, &e)
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
    let e = AppError::internal("answer a request", "the handler panicked");
    envelope::error_response(StatusCode::INTERNAL_SERVER_ERROR, JSON, &e)
}
