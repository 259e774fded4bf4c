//! Live subscriptions at the edge (docs/live.md): graphql-transport-ws over a websocket upgrade
//! of `GET /graphql`, and GraphQL over SSE ("distinct connections" mode) for a request that
//! accepts `text/event-stream`. Both run a subscription the same way ([`drive`]): the key is
//! required, the operation is charged to its rate-limit bucket, bounded like any document and
//! counted against the key's and the server's subscription limits; its facade lives as long as
//! it does, and what it owes the ledger is committed before its first event and then once per
//! interval (`LiveSettings::record_interval`), its end included. A revoked key's subscriptions
//! end with UNAUTHENTICATED; a stopping server ends them with SHUTTING_DOWN (and, on a
//! websocket, close code 1001), each with the cursor to resume from.
//!
//! graphql-transport-ws: <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>.
//! GraphQL over SSE: <https://github.com/enisdenjo/graphql-sse/blob/master/PROTOCOL.md>.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Request, Response as GqlResponse, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Caller;
use crate::error::{AppError, Interruption};
use crate::facade::Facade;
use crate::facade::live::{Hub, OpenSubscription};
use crate::graphql::bounds;

use super::caller::{Refusal, RequestCaller};
use super::envelope;
use super::state::AppState;

/// The websocket subprotocol served.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a client has to send `connection_init` after the upgrade.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to a client may take before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an event stream may stay quiet before a comment line is sent.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Messages of a connection's subscriptions waiting for its socket.
const FRAME_QUEUE: usize = 16;
/// Frames a subscription's queue keeps free for its last words whatever its client does: an
/// event that found no room, the error that ends it, `complete`. An event waits for room for
/// itself besides.
const RESERVED: usize = 3;

/// What a subscription sends its transport.
enum Frame {
    /// An execution result (JSON text).
    Next(String),
    /// Errors raised before execution (JSON array text): the operation never ran.
    Error(String),
    Complete,
}

/// Resolves once the server is stopping.
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Whether a request asks for an event stream (GraphQL over SSE).
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|r| {
                r.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
            })
        })
}

/// A subscription ready to run: its stream of results, its facade and its place in the limits.
struct Prepared {
    results: BoxStream<'static, GqlResponse>,
    facade: Arc<Facade>,
    open: OpenSubscription,
    hub: Arc<Hub>,
    interval: Duration,
    /// Events the subscription may have waiting for its client.
    queue: usize,
    /// How long it waits for room in that queue before the client counts as stopped.
    stall: Duration,
}

impl Prepared {
    /// The queue of frames from [`drive`] to the transport.
    fn frames(&self) -> (mpsc::Sender<Frame>, mpsc::Receiver<Frame>) {
        mpsc::channel(self.queue + RESERVED + 1)
    }
}

/// Checks and starts one operation for `caller` (any operation type: a query or mutation
/// yields one result).
fn prepare(
    state: &AppState,
    caller: &RequestCaller,
    mut request: Request,
) -> Result<Prepared, AppError> {
    let key = caller.caller.clone().ok_or_else(|| {
        AppError::Unauthenticated(
            "subscriptions need an API key: `Authorization: Bearer <api key>`".into(),
        )
    })?;
    caller.admit(state, 1)?;
    let document_bounds = state.settings.document_bounds();
    bounds::check_text(&request.query, &document_bounds)?;
    let operation_name = request.operation_name.clone();
    let variables = std::mem::take(&mut request.variables);
    let checked = match request.parsed_query() {
        Ok(doc) => {
            bounds::check_document(doc, operation_name.as_deref(), &variables, &document_bounds)
        }
        Err(_) => Ok(()),
    };
    request.variables = variables;
    checked?;
    let open = state.live.open(&key.key_id)?;
    let facade = state.subscription_facade(key, operation_name);
    let results = state.schema.execute_stream(request.data(facade.clone()));
    Ok(Prepared {
        results,
        facade,
        open,
        hub: state.live.clone(),
        interval: state.live.settings().record_interval,
        queue: state.live.settings().queue,
        stall: state.live.settings().stall,
    })
}

/// An error result of a subscription, with the cursor to resume from when known.
fn error_result(e: AppError, resume_after: Option<&str>) -> String {
    let mut error = e.into_graphql().into_server_error(Default::default());
    // Raised by the transport, not at a place in the document.
    error.locations.clear();
    if let Some(cursor) = resume_after {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("resumeAfter", cursor);
    }
    json!({ "errors": [error] }).to_string()
}

/// The cursor of the event a result carries (`{field: {cursor}}`), if any.
fn cursor_of(response: &GqlResponse) -> Option<String> {
    let async_graphql::Value::Object(fields) = &response.data else {
        return None;
    };
    let (_, event) = fields.iter().next()?;
    match event {
        async_graphql::Value::Object(e) => match e.get("cursor") {
            Some(async_graphql::Value::String(c)) if !c.is_empty() => Some(c.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Commits what the facade owes the ledger; false (logged) when it could not.
async fn commit(facade: &Facade) -> bool {
    // Boxed: the ledger append is a large future, and an idle subscription should not carry
    // its size between commits.
    match Box::pin(facade.take_pending_records().commit()).await {
        Ok(()) => true,
        Err(e) => {
            e.log();
            false
        }
    }
}

/// Runs a prepared subscription until it completes, its client leaves (`cancel` fires or the
/// frame queue closes), its key is revoked or the server stops.
async fn drive(p: Prepared, frames: mpsc::Sender<Frame>, mut cancel: oneshot::Receiver<()>) {
    let Prepared {
        mut results,
        facade,
        mut open,
        hub,
        interval,
        queue: _,
        stall,
    } = p;
    let mut shutdown = hub.watch_shutdown();
    let mut delivered = 0u64;
    let mut unrecorded = 0u64;
    let mut last_cursor: Option<String> = None;
    let mut recorded_at = Instant::now();
    let mut first = true;
    let reason = loop {
        let due = tokio::time::Instant::from_std(recorded_at + interval);
        tokio::select! {
            result = results.next() => {
                let Some(mut result) = result else { break "complete" };
                for error in &mut result.errors {
                    envelope::add_missing_code(error);
                }
                let refused = first
                    && result.data == async_graphql::Value::Null
                    && !result.errors.is_empty()
                    && result.errors.iter().all(|e| e.path.is_empty());
                // No evidence leaves before the subscription's start (and, per interval, its
                // deliveries) is durable.
                if (first || recorded_at.elapsed() >= interval) && !commit(&facade).await {
                    let e = AppError::internal("record a subscription", "the ledger refused");
                    let _ = frames.send(Frame::Next(error_result(e, last_cursor.as_deref()))).await;
                    break "error";
                }
                if first || recorded_at.elapsed() >= interval {
                    recorded_at = Instant::now();
                    unrecorded = 0;
                }
                first = false;
                facade.forget_rows();
                if refused {
                    let errors = serde_json::to_string(&result.errors).unwrap_or_else(|_| "[]".into());
                    let _ = frames.send(Frame::Error(errors)).await;
                    break "refused";
                }
                if result.errors.is_empty() {
                    delivered += 1;
                    unrecorded += 1;
                }
                if let Some(c) = cursor_of(&result) {
                    last_cursor = Some(c);
                }
                let text = serde_json::to_string(&result).unwrap_or_else(|_| "{}".into());
                // Room for this event and for a slow client's last words.
                match tokio::time::timeout(stall, frames.reserve_many(RESERVED + 1)).await {
                    Ok(Ok(mut room)) => {
                        if let Some(permit) = room.next() {
                            permit.send(Frame::Next(text));
                        }
                    }
                    Ok(Err(_)) => break "client",
                    Err(_) => {
                        // The client stopped reading: cut it off. What is queued (this event
                        // too, as recorded) still reaches it, then this error with the cursor
                        // of the last event queued.
                        let _ = frames.try_send(Frame::Next(text));
                        let e = AppError::Interrupted {
                            reason: Interruption::SlowConsumer,
                            message: "this subscription's client stopped reading with its queue \
                                      full; subscribe again with `after` set to \
                                      extensions.resumeAfter to go on without a gap"
                                .into(),
                            resume_after: None,
                        };
                        let _ = frames.try_send(Frame::Next(error_result(e, last_cursor.as_deref())));
                        break "slow";
                    }
                }
            }
            _ = &mut cancel => break "client",
            _ = open.revoked() => {
                let e = AppError::Unauthenticated(
                    "the API key of this subscription was revoked".into(),
                );
                let _ = frames.send(Frame::Next(error_result(e, last_cursor.as_deref()))).await;
                break "revoked";
            }
            _ = stopping(&mut shutdown) => {
                let e = AppError::Interrupted {
                    reason: Interruption::ShuttingDown,
                    message: "the server is shutting down; subscribe again (with `after` set to \
                              the last cursor received) to go on without a gap".into(),
                    resume_after: None,
                };
                let _ = frames.send(Frame::Next(error_result(e, last_cursor.as_deref()))).await;
                break "shutdown";
            }
            _ = tokio::time::sleep_until(due), if unrecorded > 0 => {
                if !commit(&facade).await {
                    break "error";
                }
                recorded_at = Instant::now();
                unrecorded = 0;
            }
        }
    };
    drop(results);
    facade.end_subscription(reason, delivered);
    commit(&facade).await;
    if reason != "client" && reason != "refused" {
        let _ = frames.send(Frame::Complete).await;
    }
    drop(open);
}

// -- GraphQL over SSE -----------------------------------------------------------------------------

/// Serves one operation as an event stream: `next` events, then `complete`.
pub async fn serve_sse(
    state: AppState,
    caller: Result<RequestCaller, Refusal>,
    request: Request,
) -> Response {
    const JSON: &str = "application/json; charset=utf-8";
    let caller = match caller {
        Ok(c) => c,
        Err(Refusal(e)) => return envelope::error_response(envelope::status_of(&e), JSON, &e),
    };
    let prepared = match prepare(&state, &caller, request) {
        Ok(p) => p,
        Err(e) => return envelope::error_response(envelope::status_of(&e), JSON, &e),
    };
    let (tx, rx) = prepared.frames();
    // The stream's end (the client went away) drops `rx`, which ends the subscription.
    let (_keep, cancel) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _keep = _keep;
        drive(prepared, tx, cancel).await;
    });
    // An operation refused before it ran is a `next` with its errors, then `complete`.
    let events = futures_util::stream::unfold((rx, Some(false)), |(mut rx, state)| async move {
        let text = match state? {
            true => (sse_event("complete", ""), None),
            false => tokio::select! {
                frame = rx.recv() => match frame? {
                    Frame::Next(text) => (sse_event("next", &text), Some(false)),
                    Frame::Error(errors) => {
                        (sse_event("next", &format!("{{\"errors\":{errors}}}")), Some(true))
                    }
                    Frame::Complete => (sse_event("complete", ""), None),
                },
                // A comment line keeps proxies from closing a quiet stream.
                _ = tokio::time::sleep(SSE_KEEP_ALIVE) => (":\n\n".to_string(), Some(false)),
            },
        };
        Some((Ok::<_, Infallible>(text.0), (rx, text.1)))
    });
    let mut response = Response::new(axum::body::Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    response
}

/// One event of an event stream: its type, and its data on one `data:` line (JSON text has no
/// line breaks); an empty data line still dispatches the event (WHATWG HTML, "Interpreting an
/// event stream").
fn sse_event(kind: &str, data: &str) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

// -- graphql-transport-ws -------------------------------------------------------------------------

/// Upgrades `GET /graphql` to a graphql-transport-ws connection.
pub fn upgrade(
    state: AppState,
    ws: WebSocketUpgrade,
    caller: Result<RequestCaller, Refusal>,
    peer: Option<SocketAddr>,
    authorization: Option<String>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(Refusal(e)) => {
            return envelope::error_response(
                envelope::status_of(&e),
                "application/json; charset=utf-8",
                &e,
            );
        }
    };
    let offered = ws
        .requested_protocols()
        .any(|p| p.to_str().is_ok_and(|p| p.trim() == PROTOCOL));
    // Small buffers: an idle subscriber should cost kilobytes, not the default 128 KiB.
    let ws = ws
        .protocols([PROTOCOL])
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(state.settings.max_body_bytes);
    ws.on_upgrade(move |socket| async move {
        if !offered {
            close(socket, 4406, "Subprotocol not acceptable").await;
            return;
        }
        Connection {
            state,
            header_caller: caller.caller.and(authorization),
            credentials: None,
            peer,
            caller: None,
            inits: 0,
            subscriptions: HashMap::new(),
        }
        .run(socket)
        .await;
    })
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// Why the server closes a connection: a protocol close code and its reason.
struct Close(u16, String);

struct Connection {
    state: AppState,
    /// The upgrade request's `Authorization` header, if it named a valid key.
    header_caller: Option<String>,
    /// The `Authorization` value `connection_init` was accepted with, checked again at every
    /// `subscribe` (through the key cache), so that a revoked key starts nothing more.
    credentials: Option<String>,
    peer: Option<SocketAddr>,
    /// Set once `connection_init` was acknowledged.
    caller: Option<RequestCaller>,
    inits: u32,
    /// Running operations by id, with what cancels them.
    subscriptions: HashMap<String, oneshot::Sender<()>>,
}

/// What a subscription's task tells its connection.
enum Outgoing {
    Text(String),
    Done(String),
}

impl Connection {
    async fn run(mut self, mut socket: WebSocket) {
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(FRAME_QUEUE);
        let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
        tokio::pin!(init_deadline);
        let mut shutdown = self.state.live.watch_shutdown();
        let ended: Option<Close> = loop {
            tokio::select! {
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        // Boxed: an idle connection should not carry the size of the key
                        // check's database future.
                        match Box::pin(self.handle(text.as_str(), &out_tx)).await {
                            Ok(Some(reply)) => {
                                if !send(&mut socket, reply).await { break None; }
                            }
                            Ok(None) => {}
                            Err(close) => break Some(close),
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        break Some(Close(4400, "binary messages are not part of graphql-transport-ws".into()));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => {}
                },
                Some(out) = out_rx.recv() => match out {
                    Outgoing::Text(text) => if !send(&mut socket, text).await { break None },
                    Outgoing::Done(id) => { self.subscriptions.remove(&id); }
                },
                _ = &mut init_deadline, if self.caller.is_none() => {
                    break Some(Close(4408, "Connection initialisation timeout".into()));
                }
                _ = stopping(&mut shutdown) => {
                    // Let every subscription say SHUTTING_DOWN with its cursor, and complete.
                    let flush = async {
                        while !self.subscriptions.is_empty() {
                            match out_rx.recv().await {
                                Some(Outgoing::Text(text)) => {
                                    if !send(&mut socket, text).await { break; }
                                }
                                Some(Outgoing::Done(id)) => { self.subscriptions.remove(&id); }
                                None => break,
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
                    self.subscriptions.clear();
                    close(socket, 1001, "the server is shutting down; resume with the last cursor").await;
                    return;
                }
            }
        };
        // Dropping the cancel senders ends every running subscription.
        self.subscriptions.clear();
        if let Some(Close(code, reason)) = ended {
            close(socket, code, &reason).await;
        }
    }

    /// Handles one client message: a reply to send, or the close it calls for.
    async fn handle(
        &mut self,
        text: &str,
        out: &mpsc::Sender<Outgoing>,
    ) -> Result<Option<String>, Close> {
        let invalid = |why: &str| Close(4400, why.to_string());
        let message: Value =
            serde_json::from_str(text).map_err(|_| invalid("Invalid message received"))?;
        let kind = message["type"]
            .as_str()
            .ok_or_else(|| invalid("Invalid message received: no `type`"))?;
        match kind {
            "connection_init" => {
                self.inits += 1;
                if self.inits > 1 {
                    return Err(Close(4429, "Too many initialisation requests".into()));
                }
                let (caller, credentials) = self.authenticate(&message["payload"]).await?;
                self.caller = Some(RequestCaller::new(Some(caller), self.peer));
                self.credentials = Some(credentials);
                Ok(Some(json!({"type": "connection_ack"}).to_string()))
            }
            "ping" => Ok(Some(json!({"type": "pong"}).to_string())),
            "pong" => Ok(None),
            "subscribe" => {
                if self.caller.is_none() {
                    return Err(Close(4401, "Unauthorized".into()));
                }
                let id = message["id"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| invalid("Invalid message received: `subscribe` needs an `id`"))?
                    .to_string();
                if self.subscriptions.contains_key(&id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                // The key as it is now: revoked since `connection_init`, it starts nothing.
                let credentials = self.credentials.clone().unwrap_or_default();
                let caller =
                    match super::caller::authenticate_header(&self.state, &credentials).await {
                        Ok(c) => RequestCaller::new(Some(c), self.peer),
                        Err(Refusal(e)) => {
                            let mut error = e.into_graphql().into_server_error(Default::default());
                            envelope::add_missing_code(&mut error);
                            return Ok(Some(error_message(&id, &[error])));
                        }
                    };
                let request: Request = serde_json::from_value(message["payload"].clone())
                    .map_err(|e| invalid(&format!("Invalid message received: {e}")))?;
                if request.query.trim().is_empty() {
                    return Err(invalid(
                        "Invalid message received: the payload has no `query`",
                    ));
                }
                match prepare(&self.state, &caller, request) {
                    Ok(prepared) => {
                        let (cancel_tx, cancel_rx) = oneshot::channel();
                        self.subscriptions.insert(id.clone(), cancel_tx);
                        tokio::spawn(run_on_socket(id, prepared, out.clone(), cancel_rx));
                        Ok(None)
                    }
                    Err(e) => {
                        let mut error = e.into_graphql().into_server_error(Default::default());
                        envelope::add_missing_code(&mut error);
                        Ok(Some(error_message(&id, &[error])))
                    }
                }
            }
            "complete" => {
                if let Some(id) = message["id"].as_str() {
                    self.subscriptions.remove(id);
                }
                Ok(None)
            }
            other => Err(invalid(&format!(
                "Invalid message received: unknown type `{other}`"
            ))),
        }
    }

    /// The key of `connection_init`'s payload (`{"Authorization": "Bearer <key>"}`, the way
    /// browsers, which cannot set headers on a websocket, send it), else the upgrade
    /// request's header; 4403 when there is none or it is refused.
    async fn authenticate(&self, payload: &Value) -> Result<(Caller, String), Close> {
        let field = ["Authorization", "authorization"]
            .iter()
            .find_map(|k| payload.get(*k).and_then(Value::as_str))
            .map(str::to_string);
        let Some(value) = field.or_else(|| self.header_caller.clone()) else {
            return Err(Close(
                4403,
                "Forbidden: send the API key in connection_init's payload as \
                 {\"Authorization\": \"Bearer <api key>\"}"
                    .into(),
            ));
        };
        super::caller::authenticate_header(&self.state, &value)
            .await
            .map(|caller| (caller, value))
            .map_err(|e| {
                let e = e.0;
                e.log();
                let message = format!("Forbidden: {}", e.client_message());
                // A close reason is at most 123 bytes.
                let mut end = message.len().min(123);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                Close(4403, message[..end].to_string())
            })
    }
}

async fn send(socket: &mut WebSocket, text: String) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

fn error_message(id: &str, errors: &[ServerError]) -> String {
    json!({"id": id, "type": "error", "payload": errors}).to_string()
}

/// Runs one subscription of a connection, turning its frames into protocol messages.
async fn run_on_socket(
    id: String,
    prepared: Prepared,
    out: mpsc::Sender<Outgoing>,
    cancel: oneshot::Receiver<()>,
) {
    let (tx, mut rx) = prepared.frames();
    let forward = {
        let (id, out) = (id.clone(), out.clone());
        async move {
            while let Some(frame) = rx.recv().await {
                let text = match frame {
                    Frame::Next(payload) => {
                        format!(
                            "{{\"id\":{},\"type\":\"next\",\"payload\":{payload}}}",
                            json!(id)
                        )
                    }
                    Frame::Error(errors) => {
                        format!(
                            "{{\"id\":{},\"type\":\"error\",\"payload\":{errors}}}",
                            json!(id)
                        )
                    }
                    Frame::Complete => json!({"id": id, "type": "complete"}).to_string(),
                };
                if out.send(Outgoing::Text(text)).await.is_err() {
                    return;
                }
            }
        }
    };
    tokio::join!(drive(prepared, tx, cancel), forward);
    let _ = out.send(Outgoing::Done(id)).await;
}
