//! The GraphQL error envelope, written in one place: how an [`AppError`] refused at the edge
//! (before or instead of execution) looks on the wire, and which HTTP status it calls for.
//! Errors raised during execution travel through async-graphql ([`AppError::into_graphql`]);
//! both carry the same `extensions` (`code`, and `retryAfterSeconds` for RATE_LIMITED).
//! The OTLP receiver has its own envelope (`google.rpc.Status`, in `otlp`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use async_graphql::{QueryLimitExceeded, ServerError};

use crate::error::AppError;

/// One GraphQL error object (`{"message", "extensions": {"code", …}}`) for `e`.
pub fn error_object(e: &AppError) -> Value {
    let mut extensions = json!({ "code": e.code() });
    if let (Some(secs), Some(map)) = (e.retry_after_secs(), extensions.as_object_mut()) {
        map.insert("retryAfterSeconds".into(), json!(secs));
    }
    json!({ "message": e.client_message(), "extensions": extensions })
}

/// A response body with `e` as its only error and no `data` key (a request error).
pub fn errors_body(e: &AppError) -> String {
    json!({ "errors": [error_object(e)] }).to_string()
}

/// The HTTP status an error refused at the edge calls for (under
/// `application/graphql-response+json`; `application/json` answers request errors with 200
/// except where the status itself is the answer: authentication, rate limits, time limits).
pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::BadUserInput(_) | AppError::NotFound(_) | AppError::QueryTooComplex(_) => {
            StatusCode::BAD_REQUEST
        }
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::RateLimited { .. } | AppError::TooManySubscriptions(_) => {
            StatusCode::TOO_MANY_REQUESTS
        }
        AppError::Interrupted { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Headers an error response must carry: `WWW-Authenticate` for 401 (RFC 6750 §3) and
/// `Retry-After` for a rate limit (RFC 6585 §4).
pub fn add_error_headers(e: &AppError, response: &mut Response) {
    if matches!(e, AppError::Unauthenticated(_)) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"runledger\""),
        );
    }
    if let Some(secs) = e.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// A JSON body with the given content type.
pub fn json_response(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The whole response for an error refused at the edge, under `content_type`.
pub fn error_response(status: StatusCode, content_type: &'static str, e: &AppError) -> Response {
    let mut response = json_response(status, content_type, errors_body(e));
    add_error_headers(e, &mut response);
    response
}

/// Errors raised by async-graphql itself carry no code: a limit it enforces (known by the
/// error's source type) is QUERY_TOO_COMPLEX; anything else it raises (parsing, validation,
/// coercing variables and arguments) is the request's fault, BAD_USER_INPUT. Errors of
/// runledger's own carry their code already ([`AppError::into_graphql`]).
pub fn add_missing_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if has_code {
        return;
    }
    let code = match error.source::<QueryLimitExceeded>() {
        Some(_) => AppError::QueryTooComplex(String::new()).code(),
        None => AppError::BadUserInput(String::new()).code(),
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}
