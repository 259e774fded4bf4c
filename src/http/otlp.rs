//! `POST /v1/traces`: the OTLP/HTTP trace receiver, protobuf or JSON, optionally gzip-compressed,
//! authenticated with the same API keys as GraphQL (role `ingest`). Spans become runs and steps
//! (see `ingest::otlp`); the answer is an `ExportTraceServiceResponse`, with a partial-success
//! part naming how many spans were refused and why. Errors follow OTLP/HTTP: a `google.rpc.Status`
//! body in the request's encoding and a status code that says whether to retry.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::error::AppError;
use crate::ingest::otlp::MAX_SPANS;

use super::caller::{Refusal, RequestCaller};
use super::envelope;
use super::state::AppState;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Status`, the error body of OTLP/HTTP.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

fn reply(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}

/// An OTLP error: `google.rpc.Status` with a gRPC code matching the HTTP status.
fn error(status: StatusCode, encoding: Encoding, message: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3, // INVALID_ARGUMENT
        StatusCode::UNAUTHORIZED => 16,                                    // UNAUTHENTICATED
        StatusCode::FORBIDDEN => 7,                                        // PERMISSION_DENIED
        StatusCode::CONFLICT => 6,                                         // ALREADY_EXISTS
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8, // RESOURCE_EXHAUSTED
        _ => 13,                                                           // INTERNAL
    };
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    let mut resp = reply(status, encoding, body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"runledger\""),
        );
    }
    resp
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Inflates a gzip body (every member), refusing to grow past `limit` bytes.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzip body does not decompress: {e}"))?;
    if out.len() > limit {
        return Err(format!("the decompressed body exceeds {limit} bytes"));
    }
    Ok(out)
}

/// Reads a varint of the protobuf wire format.
fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    prost::encoding::decode_varint(buf).map_err(|e| format!("malformed protobuf: {e}"))
}

/// Calls `on_field(field, bytes)` for each length-delimited field of a message and skips the
/// others, checking the wire format as it goes.
fn fields<'a>(
    mut buf: &'a [u8],
    mut on_field: impl FnMut(u64, &'a [u8]) -> Result<(), String>,
) -> Result<(), String> {
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let skip = match key & 7 {
            0 => {
                varint(&mut buf)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|e| e.to_string())?;
                if len > buf.len() {
                    return Err("malformed protobuf: a field runs past the end".into());
                }
                on_field(key >> 3, &buf[..len])?;
                len
            }
            _ => return Err("malformed protobuf: unknown wire type".into()),
        };
        if skip > buf.len() {
            return Err("malformed protobuf: a field runs past the end".into());
        }
        buf = &buf[skip..];
    }
    Ok(())
}

/// Counts the spans of an encoded `ExportTraceServiceRequest` without decoding them, so that
/// an oversized request is refused before millions of spans are allocated.
fn count_spans(raw: &[u8]) -> Result<usize, String> {
    let mut spans = 0usize;
    fields(raw, |field, resource_spans| {
        if field != 1 {
            return Ok(());
        }
        fields(resource_spans, |field, scope_spans| {
            if field != 2 {
                return Ok(());
            }
            fields(scope_spans, |field, _| {
                if field == 2 {
                    spans += 1;
                }
                Ok(())
            })
        })
    })?;
    Ok(spans)
}

/// Why a request was not taken: its body, or an error of the operation.
enum Refused {
    Body(StatusCode, String),
    App(AppError),
}

/// Decompresses and decodes the body (a compressed body may not decompress past the body limit
/// itself).
fn decode(
    headers: &HeaderMap,
    body: &[u8],
    encoding: Encoding,
    limit: usize,
) -> Result<ExportTraceServiceRequest, Refused> {
    let content_encoding = header_text(headers, header::CONTENT_ENCODING)
        .trim()
        .to_ascii_lowercase();
    let raw = match content_encoding.as_str() {
        "" | "identity" => body.to_vec(),
        "gzip" => gunzip(body, limit).map_err(|why| Refused::Body(StatusCode::BAD_REQUEST, why))?,
        other => {
            return Err(Refused::Body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding `{other}` is not supported; use gzip or none"),
            ));
        }
    };
    match encoding {
        Encoding::Protobuf => count_spans(&raw).and_then(|n| {
            if n > MAX_SPANS {
                Err(format!("the request holds {n} spans; at most {MAX_SPANS}"))
            } else {
                ExportTraceServiceRequest::decode(raw.as_slice())
                    .map_err(|e| format!("the body is not an OTLP ExportTraceServiceRequest: {e}"))
            }
        }),
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&raw)
            .map_err(|e| format!("the body is not an OTLP/JSON ExportTraceServiceRequest: {e}")),
    }
    .map_err(|why| Refused::Body(StatusCode::BAD_REQUEST, why))
}

/// `POST /v1/traces`.
pub async fn traces(
    State(state): State<AppState>,
    caller: Result<RequestCaller, Refusal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = match super::content_media_type(&headers).as_str() {
        PROTOBUF => Encoding::Protobuf,
        JSON => Encoding::Json,
        _ => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Encoding::Json,
                "OTLP bodies must be application/x-protobuf or application/json",
            );
        }
    };
    // Who is asking, and whether they may write, come first: nothing is decompressed or
    // decoded for an unknown caller or one without the permission.
    let caller = caller.map_err(|Refusal(e)| e).and_then(|caller| {
        let key = caller.clone().required()?;
        // OTLP/HTTP: 429 with Retry-After is a retryable answer exporters honour.
        caller.admit(&state, 1)?;
        Ok(key)
    });
    let caller = match caller {
        Ok(caller) => caller,
        Err(e) => return app_error(e, encoding),
    };
    let facade = state.request_facade(Some(caller), Some("otlp.traces".into()));
    let outcome = match facade.permit_otlp() {
        Ok(permit) => match decode(&headers, &body, encoding, state.settings.max_body_bytes) {
            Ok(request) => facade
                .ingest_otlp(permit, &request)
                .await
                .map_err(Refused::App),
            Err(refused) => Err(refused),
        },
        Err(e) => Err(Refused::App(e)),
    };
    // The authorization decision is recorded whatever the outcome.
    if let Err(e) = facade.pending_records().commit().await {
        return app_error(e, encoding);
    }
    let outcome = match outcome {
        Ok(outcome) => Ok(outcome),
        Err(Refused::App(e)) => Err(e),
        Err(Refused::Body(status, why)) => return error(status, encoding, &why),
    };
    match outcome {
        Ok(outcome) => {
            // OTLP: a partial success with no rejected span and a message is a warning.
            let messages: Vec<String> = outcome
                .reasons
                .into_iter()
                .chain(outcome.warnings)
                .collect();
            let partial_success =
                (outcome.rejected > 0 || !messages.is_empty()).then(|| ExportTracePartialSuccess {
                    rejected_spans: outcome.rejected as i64,
                    error_message: messages.join("; "),
                });
            let response = ExportTraceServiceResponse { partial_success };
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
            };
            reply(StatusCode::OK, encoding, body)
        }
        Err(e) => app_error(e, encoding),
    }
}

/// The OTLP envelope of an error: its status as `google.rpc.Status`, and the HTTP status that
/// tells an exporter whether to retry (OTLP/HTTP "Failures").
fn app_error(e: AppError, encoding: Encoding) -> Response {
    e.log();
    let status = match &e {
        // Our internal failures are database or I/O trouble: OTLP exporters retry a 503.
        AppError::Internal { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::NotFound(_) => StatusCode::BAD_REQUEST,
        other => envelope::status_of(other),
    };
    let mut resp = error(status, encoding, &e.client_message());
    envelope::add_error_headers(&e, &mut resp);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}
