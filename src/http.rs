//! GraphQL over HTTP, owned rather than taken from async-graphql-axum, to follow the
//! GraphQL-over-HTTP specification:
//!
//! - `Accept` negotiation between `application/graphql-response+json` and `application/json`
//!   (the response `Content-Type` is the one negotiated; 406 when neither is acceptable);
//! - status codes: a request error (unparsable body, parse or validation failure) is 4xx under
//!   `application/graphql-response+json` and has no `data` key; 200 once execution started;
//! - GET carries queries only: a mutation over GET is refused with 405 and `Allow: POST`;
//! - batches (a JSON array of requests) are bounded.
//!
//! Authentication happens here too: `Authorization: Bearer <key>` decides the caller whose
//! facade the request runs with. A present but invalid key is refused with 401.

use async_graphql::parser::{parse_query, types::OperationType};
use async_graphql::{BatchRequest, Request};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::{self, Caller};
use crate::error::AppError;
use crate::facade::Facade;
use crate::graphql::bounds::{self, DocumentBounds};
use crate::ratelimit::retry_after_secs;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The negotiated response media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response type from `Accept`, by q-value, preferring graphql-response+json when it
/// is named explicitly and ties. No `Accept` header, or only wildcards, means
/// `application/json` (the specification's legacy default).
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let candidates: &[MediaType] = match media.as_str() {
            GRAPHQL_RESPONSE => &[MediaType::GraphqlResponse],
            JSON => &[MediaType::Json],
            // Wildcards are what legacy clients (curl, fetch) send: they get application/json.
            "application/*" | "*/*" => &[MediaType::Json],
            _ => &[],
        };
        for &c in candidates {
            let better = match best {
                None => true,
                Some((bq, bm)) => q > bq || (q == bq && c == MediaType::GraphqlResponse && bm != c),
            };
            if better {
                best = Some((q, c));
            }
        }
    }
    best.map(|(_, m)| m)
}

fn respond(status: StatusCode, media: MediaType, body: &Value) -> Response {
    respond_text(status, media, body.to_string())
}

/// A response whose body is already JSON text.
fn respond_text(status: StatusCode, media: MediaType, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    resp
}

/// An error raised before any execution (malformed HTTP, bad credentials): no `data` key.
fn request_error(media: MediaType, status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    respond(status, media, &body)
}

fn unauthenticated(media: MediaType, message: &str) -> Response {
    let mut resp = request_error(media, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"runledger\""),
    );
    resp
}

/// How long the caller must wait, when its key is over its rate.
pub(crate) fn rate_limited(state: &AppState, caller: Option<&Caller>) -> Option<Duration> {
    rate_limited_n(state, Some(caller?), None, 1)
}

/// Like [`rate_limited`] for `n` operations (a batch costs one token per operation); a request
/// without a key is counted against its client address instead, so anonymous requests
/// (introspection, GraphiQL loading the schema) are bounded too.
fn rate_limited_n(
    state: &AppState,
    caller: Option<&Caller>,
    peer: Option<SocketAddr>,
    n: usize,
) -> Option<Duration> {
    let limiter = state.rate_limiter.as_ref()?;
    let bucket = match (caller, peer) {
        (Some(caller), _) => caller.key_id.clone(),
        (None, Some(peer)) => address_bucket(peer.ip()),
        (None, None) => return None,
    };
    limiter.check_n(&bucket, n as u32).err()
}

/// The rate-limit bucket of an anonymous client: its IPv4 address, or the /64 network of an
/// IPv6 address (one host usually holds a whole /64). Key ids never contain `:`, so the two
/// kinds of bucket cannot collide.
fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The client address of a connection, when the server recorded it.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn peer_addr(peer: Peer) -> Option<SocketAddr> {
    peer.map(|Extension(ConnectInfo(addr))| addr)
}

/// 429 with `Retry-After` and the GraphQL error code RATE_LIMITED.
fn too_many_requests(media: MediaType, wait: Duration) -> Response {
    let secs = retry_after_secs(wait);
    let body = json!({"errors": [{
        "message": format!("rate limit exceeded for this API key; retry in {secs} s"),
        "extensions": {"code": "RATE_LIMITED", "retryAfterSeconds": secs},
    }]});
    let mut resp = respond(StatusCode::TOO_MANY_REQUESTS, media, &body);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Resolves the bearer key, if one was sent.
pub(crate) async fn caller_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Caller>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    // The scheme name is case-insensitive (RFC 7235).
    let key = match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key,
        _ => {
            return Err(AppError::Unauthenticated(
                "the Authorization header must be `Bearer <api key>`".into(),
            ));
        }
    };
    auth::authenticate_recorded(
        &state.db,
        &state.appender,
        state.rate_limiter.as_deref(),
        key.trim(),
    )
    .await
    .map(Some)
}

/// Query-string parameters of a GET request.
#[derive(Debug, Deserialize)]
pub struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// The operation a GET request would run is a mutation (or subscription).
fn is_non_query_operation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(doc) = parse_query(query) else {
        return false;
    };
    let ty = match (doc.operations, operation_name) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => Some(op.node.ty),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), None) => {
            // Ambiguous: execution will report it; refuse only if every candidate mutates.
            let mut types = ops.values().map(|op| op.node.ty);
            let first = types.next();
            first.filter(|t| types.all(|u| u == *t))
        }
    };
    matches!(
        ty,
        Some(OperationType::Mutation | OperationType::Subscription)
    )
}

/// `GET /graphql`.
pub async fn graphql_get(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => {
            return request_error(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("malformed query string: {}", e.body_text()),
            );
        }
    };
    let Some(query) = params.query.filter(|q| !q.trim().is_empty()) else {
        return request_error(
            media,
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "missing the `query` parameter",
        );
    };
    // Bounded before the query is parsed to tell a mutation from a query.
    if let Err(e) = bounds::check_text(&query, &state.settings.document_bounds()) {
        let (status, body) = request_failure(&e, media);
        return respond_text(status, media, body);
    }
    if is_non_query_operation(&query, params.operation_name.as_deref()) {
        let mut resp = request_error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "mutations are only accepted over POST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let mut request = Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    for (name, text) in [
        ("variables", &params.variables),
        ("extensions", &params.extensions),
    ] {
        if let Some(text) = text {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) if name == "variables" => {
                    request =
                        request.variables(async_graphql::Variables::from_json(Value::Object(map)));
                }
                Ok(Value::Object(_)) => {}
                _ => {
                    return request_error(
                        media,
                        StatusCode::BAD_REQUEST,
                        "BAD_USER_INPUT",
                        &format!("the `{name}` parameter must be a JSON object"),
                    );
                }
            }
        }
    }
    execute(
        state,
        peer_addr(peer),
        headers,
        media,
        BatchRequest::Single(request),
    )
    .await
}

/// `POST /graphql`.
pub async fn graphql_post(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type != JSON {
        return request_error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "POST bodies must be `application/json`",
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return request_error(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    execute(state, peer_addr(peer), headers, media, batch).await
}

fn not_acceptable() -> Response {
    let mut resp = (
        StatusCode::NOT_ACCEPTABLE,
        format!("acceptable response types: {GRAPHQL_RESPONSE}, {JSON}"),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn execute(
    state: AppState,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    media: MediaType,
    batch: BatchRequest,
) -> Response {
    let caller = match caller_of(&state, &headers).await {
        Ok(c) => c,
        Err(AppError::Unauthenticated(msg)) => return unauthenticated(media, &msg),
        Err(e) => {
            e.log();
            return request_error(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                e.code(),
                &e.client_message(),
            );
        }
    };
    let operations = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len().clamp(1, state.settings.max_batch),
    };
    if let Some(wait) = rate_limited_n(&state, caller.as_ref(), peer, operations) {
        return too_many_requests(media, wait);
    }
    match batch {
        BatchRequest::Single(request) => {
            let (status, body) = run_one(&state, caller, request, media).await;
            respond_text(status, media, body)
        }
        BatchRequest::Batch(requests) => {
            if requests.is_empty() || requests.len() > state.settings.max_batch {
                return request_error(
                    media,
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    &format!(
                        "a batch must hold 1 to {} operations, got {}",
                        state.settings.max_batch,
                        requests.len()
                    ),
                );
            }
            let mut bodies = Vec::with_capacity(requests.len());
            let mut all_request_errors = true;
            for request in requests {
                let (status, body) = run_one(&state, caller.clone(), request, media).await;
                all_request_errors &= status != StatusCode::OK;
                bodies.push(body);
            }
            let status = if all_request_errors && media == MediaType::GraphqlResponse {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            respond_text(status, media, format!("[{}]", bodies.join(",")))
        }
    }
}

/// Runs one operation; returns the status it calls for and its body as JSON text.
async fn run_one(
    state: &AppState,
    caller: Option<Caller>,
    mut request: Request,
    media: MediaType,
) -> (StatusCode, String) {
    // The work a document can cause is bounded before async-graphql parses, validates or
    // executes it (see `graphql::bounds`).
    let document_bounds = state.settings.document_bounds();
    if let Err(e) = bounds::check_text(&request.query, &document_bounds) {
        return request_failure(&e, media);
    }
    // Parsed once here (or found parsed); execution reuses the document (a parse error is
    // reported by it).
    let candidate = state.documents.prepare(&mut request);
    let authenticated = caller.is_some();
    if let Err(e) = check_parsed(&mut request, &document_bounds) {
        return request_failure(&e, media);
    }
    let facade = Arc::new(
        Facade::for_request(
            state.db.clone(),
            state.ledger.clone(),
            state.appender.clone(),
            caller,
        )
        .with_tenant_cache(state.tenants.clone())
        .with_recording(state.settings.record_requests),
    );
    facade.set_operation(request.operation_name.clone());
    let response = state.schema.execute(request.data(facade.clone())).await;
    // The answer is written out and the request's rows let go before its records are
    // committed: the commit is shared with concurrent requests and takes a while.
    let records = facade.pending_records();
    drop(facade);
    let keep = candidate.filter(|_| authenticated && response.errors.is_empty());
    let answer = answer_text(response, media);
    // No evidence leaves before the request's authorization and access records are durable.
    if let Err(e) = records.commit().await {
        let body = json!({"errors": [{
            "message": e.client_message(),
            "extensions": {"code": e.code()},
        }]});
        return (StatusCode::INTERNAL_SERVER_ERROR, body.to_string());
    }
    if let Some(candidate) = keep {
        state.documents.keep(candidate);
    }
    answer
}

/// Checks the parsed document of a request against the bounds; a document that does not
/// parse is left to execution, which reports the error.
fn check_parsed(request: &mut Request, document_bounds: &DocumentBounds) -> Result<(), AppError> {
    let operation_name = request.operation_name.clone();
    // The variables are taken out while the document is borrowed, and put back.
    let variables = std::mem::take(&mut request.variables);
    let checked = match request.parsed_query() {
        Ok(doc) => {
            bounds::check_document(doc, operation_name.as_deref(), &variables, document_bounds)
        }
        Err(_) => Ok(()),
    };
    request.variables = variables;
    checked
}

/// A request refused before execution: no `data` key; 400 under
/// `application/graphql-response+json`, 200 under `application/json`.
fn request_failure(e: &AppError, media: MediaType) -> (StatusCode, String) {
    let body = json!({"errors": [{
        "message": e.client_message(),
        "extensions": {"code": e.code()},
    }]});
    let status = if media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, body.to_string())
}

/// The status and body of an executed request.
fn answer_text(response: async_graphql::Response, media: MediaType) -> (StatusCode, String) {
    if response.errors.is_empty() {
        // The common case: straight to text, no intermediate JSON tree.
        let text = serde_json::to_string(&response).unwrap_or_else(|_| "{}".to_string());
        return (StatusCode::OK, text);
    }
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors {
            add_missing_code(error);
        }
    }
    if let (true, Some(map)) = (request_failed, body.as_object_mut()) {
        map.remove("data");
    }
    let status = if request_failed && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, body.to_string())
}

/// Errors raised by async-graphql itself (parse, validation, limits) carry no code; give them
/// one from the fixed set.
fn add_missing_code(error: &mut Value) {
    let has_code = error
        .pointer("/extensions/code")
        .is_some_and(|c| c.is_string());
    if has_code {
        return;
    }
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let code = if message.contains("too complex")
        || message.contains("nested too deep")
        || message.contains("recursion depth")
    {
        "QUERY_TOO_COMPLEX"
    } else {
        "BAD_USER_INPUT"
    };
    if let Some(map) = error.as_object_mut() {
        let ext = map.entry("extensions").or_insert_with(|| json!({}));
        if let Some(ext) = ext.as_object_mut() {
            ext.insert("code".into(), json!(code));
        }
    }
}

/// Answers any other method on `/graphql`.
pub async fn graphql_other(method: Method) -> Response {
    let mut resp = (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not supported on /graphql; use GET or POST"),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiates_by_q_value() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn detects_mutations_for_get() {
        assert!(is_non_query_operation("mutation { x }", None));
        assert!(!is_non_query_operation("{ x }", None));
        assert!(is_non_query_operation(
            "query A { x } mutation B { y }",
            Some("B")
        ));
        assert!(!is_non_query_operation(
            "query A { x } mutation B { y }",
            Some("A")
        ));
    }
}
