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
//! The caller comes from the [`RequestCaller`] extractor; a present but invalid key is refused
//! with 401. Responses follow the GraphQL specification's execution rules (§6.4.4, §7.1.2:
//! errored fields are null, errors propagate to the nearest nullable parent, keys in selection
//! order) through the patched async-graphql in `vendor/`.

use async_graphql::parser::parse_query;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{BatchRequest, Request, ServerError};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AppError;
use crate::graphql::bounds::{self, DocumentBounds};

use super::caller::{Refusal, RequestCaller};
use super::envelope;
use super::live;
use super::state::AppState;

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

/// A response whose body is already JSON text.
fn respond_text(status: StatusCode, media: MediaType, body: String) -> Response {
    envelope::json_response(status, media.content_type(), body)
}

/// An error raised before any execution (malformed HTTP, bad credentials, a rate limit): no
/// `data` key, the status given, and the headers the error calls for.
fn refuse(media: MediaType, status: StatusCode, e: &AppError) -> Response {
    envelope::error_response(status, media.content_type(), e)
}

fn bad_request(media: MediaType, message: String) -> Response {
    refuse(
        media,
        StatusCode::BAD_REQUEST,
        &AppError::BadUserInput(message),
    )
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

/// `GET /graphql`: a query, a websocket upgrade (graphql-transport-ws), or an operation as an
/// event stream (GraphQL over SSE).
pub async fn graphql_get(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    caller: Result<RequestCaller, Refusal>,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    if let Ok(ws) = ws {
        let peer = caller.as_ref().ok().and_then(RequestCaller::peer);
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        return live::upgrade(state, ws, caller, peer, authorization);
    }
    let event_stream = live::wants_event_stream(&headers);
    let Some(media) = negotiate(&headers).or(event_stream.then_some(MediaType::Json)) else {
        return not_acceptable();
    };
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return bad_request(media, format!("malformed query string: {}", e.body_text())),
    };
    let Some(query) = params.query.filter(|q| !q.trim().is_empty()) else {
        return bad_request(media, "missing the `query` parameter".into());
    };
    // Bounded before the query is parsed to tell a mutation from a query.
    if let Err(e) = bounds::check_text(&query, &state.settings.document_bounds()) {
        let (status, body) = request_failure(&e, media);
        return respond_text(status, media, body);
    }
    if !event_stream && is_non_query_operation(&query, params.operation_name.as_deref()) {
        let mut resp = bad_request(media, "mutations are only accepted over POST".into());
        *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
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
                    return bad_request(
                        media,
                        format!("the `{name}` parameter must be a JSON object"),
                    );
                }
            }
        }
    }
    if event_stream {
        return live::serve_sse(state, caller, request).await;
    }
    execute(state, caller, media, BatchRequest::Single(request)).await
}

/// `POST /graphql`.
pub async fn graphql_post(
    State(state): State<AppState>,
    caller: Result<RequestCaller, Refusal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event_stream = live::wants_event_stream(&headers);
    let Some(media) = negotiate(&headers).or(event_stream.then_some(MediaType::Json)) else {
        return not_acceptable();
    };
    if super::content_media_type(&headers) != JSON {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &AppError::bad_input("POST bodies must be `application/json`"),
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(media, format!("the body is not a GraphQL request: {e}")),
    };
    // async-graphql reads a body without `query` as an empty query; GraphQL-over-HTTP §5.1
    // makes `query` required.
    let missing_query = |r: &Request| r.query.trim().is_empty();
    let missing = match &batch {
        BatchRequest::Single(r) => missing_query(r),
        BatchRequest::Batch(requests) => requests.iter().any(missing_query),
    };
    if missing {
        return bad_request(media, "missing the `query` parameter".into());
    }
    if event_stream {
        return match batch {
            BatchRequest::Single(request) => live::serve_sse(state, caller, request).await,
            BatchRequest::Batch(_) => bad_request(
                media,
                "an event stream carries one operation, not a batch".into(),
            ),
        };
    }
    execute(state, caller, media, batch).await
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
    caller: Result<RequestCaller, Refusal>,
    media: MediaType,
    batch: BatchRequest,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(Refusal(e)) => {
            e.log();
            return refuse(media, envelope::status_of(&e), &e);
        }
    };
    let operations = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len().clamp(1, state.settings.max_batch),
    };
    if let Err(e) = caller.admit(&state, operations) {
        return refuse(media, StatusCode::TOO_MANY_REQUESTS, &e);
    }
    match batch {
        BatchRequest::Single(request) => {
            let (status, body) = run_one(&state, &caller, request, media).await;
            respond_text(status, media, body)
        }
        BatchRequest::Batch(requests) => {
            if requests.is_empty() || requests.len() > state.settings.max_batch {
                return bad_request(
                    media,
                    format!(
                        "a batch must hold 1 to {} operations, got {}",
                        state.settings.max_batch,
                        requests.len()
                    ),
                );
            }
            let mut bodies = Vec::with_capacity(requests.len());
            let mut all_request_errors = true;
            for request in requests {
                let (status, body) = run_one(&state, &caller, request, media).await;
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
    caller: &RequestCaller,
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
    let authenticated = caller.caller.is_some();
    if let Err(e) = check_parsed(&mut request, &document_bounds) {
        return request_failure(&e, media);
    }
    let facade = state.request_facade(caller.caller.clone(), request.operation_name.clone());
    let response = state.schema.execute(request.data(facade.clone())).await;
    // The answer is written out and the request's rows let go before its records are
    // committed: the commit is shared with concurrent requests and takes a while.
    let records = facade.pending_records();
    drop(facade);
    let keep = candidate.filter(|_| authenticated && response.errors.is_empty());
    let answer = answer_text(response, media);
    // No evidence leaves before the request's authorization and access records are durable.
    if let Err(e) = records.commit().await {
        e.log();
        return (StatusCode::INTERNAL_SERVER_ERROR, envelope::errors_body(&e));
    }
    if let Some(candidate) = keep {
        state.documents.keep(candidate);
    }
    answer
}

/// Checks the parsed document of a request against the bounds, and that the operation it runs
/// is one this endpoint serves; a document that does not parse is left to execution, which
/// reports the error.
fn check_parsed(request: &mut Request, document_bounds: &DocumentBounds) -> Result<(), AppError> {
    let operation_name = request.operation_name.clone();
    // The variables are taken out while the document is borrowed, and put back.
    let variables = std::mem::take(&mut request.variables);
    let checked = match request.parsed_query() {
        Ok(doc) => {
            bounds::check_document(doc, operation_name.as_deref(), &variables, document_bounds)
                .and_then(|()| check_operation_type(doc, operation_name.as_deref()))
        }
        Err(_) => Ok(()),
    };
    request.variables = variables;
    checked
}

/// A subscription is refused over a plain request with one error naming the transports that
/// serve it.
fn check_operation_type(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<(), AppError> {
    if operation_type(doc, operation_name) == Some(OperationType::Subscription) {
        return Err(AppError::bad_input(
            "subscriptions are served over a websocket (graphql-transport-ws) or with `Accept: \
             text/event-stream` on /graphql, not over a plain request",
        ));
    }
    Ok(())
}

/// The type of the operation a request would run, when the document says unambiguously.
fn operation_type(doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (DocumentOperations::Multiple(ops), None) => {
            // Ambiguous: execution will report it; decided only if every candidate agrees.
            let mut types = ops.values().map(|op| op.node.ty);
            let first = types.next();
            first.filter(|t| types.all(|u| u == *t))
        }
    }
}

/// The operation a GET request would run is a mutation (or subscription).
fn is_non_query_operation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(doc) = parse_query(query) else {
        return false;
    };
    matches!(
        operation_type(&doc, operation_name),
        Some(OperationType::Mutation | OperationType::Subscription)
    )
}

/// A request refused before execution: no `data` key; 400 under
/// `application/graphql-response+json`, 200 under `application/json`.
fn request_failure(e: &AppError, media: MediaType) -> (StatusCode, String) {
    let status = if media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, envelope::errors_body(e))
}

/// A response with errors and no `data` (execution never started).
#[derive(Serialize)]
struct ErrorsOnly<'a> {
    errors: &'a [ServerError],
}

/// The status and body of an executed request.
fn answer_text(mut response: async_graphql::Response, media: MediaType) -> (StatusCode, String) {
    if response.errors.is_empty() {
        // The common case: straight to text, no intermediate JSON tree.
        let text = serde_json::to_string(&response).unwrap_or_else(|_| "{}".to_string());
        return (StatusCode::OK, text);
    }
    for error in &mut response.errors {
        envelope::add_missing_code(error);
    }
    // Execution never started when every error is pathless and there is no data: a request
    // error (GraphQL-over-HTTP §6.4.1), answered without `data`.
    let request_failed = response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| e.path.is_empty());
    let text = if request_failed {
        serde_json::to_string(&ErrorsOnly {
            errors: &response.errors,
        })
    } else {
        serde_json::to_string(&response)
    };
    let status = if request_failed && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, text.unwrap_or_else(|_| "{}".to_string()))
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
