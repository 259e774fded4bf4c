//! Who is asking: the axum extractor every endpoint that serves evidence takes. It reads
//! `Authorization: Bearer <api key>` (the scheme is case-insensitive, RFC 7235 §2.1),
//! authenticates the key (a refused key is recorded in its ledger, within the failure budget),
//! and knows the client address, so that [`RequestCaller::admit`] can charge the request to the
//! key's rate-limit bucket, or to the address's when no key was sent.
//!
//! Handlers take `Result<RequestCaller, Refusal>` and answer a refusal in their own protocol's
//! envelope (GraphQL JSON, OTLP `Status`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::auth::{self, Caller};
use crate::error::AppError;

use super::envelope;
use super::ratelimit::retry_after_secs;
use super::state::AppState;

/// The caller of one request: the key's caller, if a key was sent, and the client address.
#[derive(Clone, Debug)]
pub struct RequestCaller {
    pub caller: Option<Caller>,
    peer: Option<SocketAddr>,
}

/// Why a request's credentials were refused (UNAUTHENTICATED, or INTERNAL when the key could
/// not be read).
#[derive(Debug)]
pub struct Refusal(pub AppError);

impl IntoResponse for Refusal {
    /// The GraphQL JSON envelope; handlers of other protocols map the error themselves.
    fn into_response(self) -> Response {
        self.0.log();
        envelope::error_response(
            envelope::status_of(&self.0),
            "application/json; charset=utf-8",
            &self.0,
        )
    }
}

impl FromRequestParts<AppState> for RequestCaller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(RequestCaller { caller: None, peer });
        };
        let caller = authenticate_header(state, value.to_str().unwrap_or("")).await?;
        Ok(RequestCaller {
            caller: Some(caller),
            peer,
        })
    }
}

/// Authenticates an `Authorization` value (`Bearer <api key>`), as the header or as a
/// websocket's `connection_init` payload carries it.
pub async fn authenticate_header(state: &AppState, text: &str) -> Result<Caller, Refusal> {
    let key = match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key,
        _ => {
            return Err(Refusal(AppError::Unauthenticated(
                "the Authorization header must be `Bearer <api key>`".into(),
            )));
        }
    };
    let limiter = state.rate_limiter.as_deref();
    auth::authenticate_recorded(
        &state.db,
        state.key_cache.as_deref(),
        &state.appender,
        |budget| limiter.is_none_or(|l| l.check(budget).is_ok()),
        key.trim(),
    )
    .await
    .map_err(Refusal)
}

impl RequestCaller {
    /// The caller of a websocket connection once its `connection_init` was accepted.
    pub fn new(caller: Option<Caller>, peer: Option<SocketAddr>) -> Self {
        RequestCaller { caller, peer }
    }

    /// The client address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Charges `operations` requests to the caller's rate-limit bucket: its key's, or its
    /// client address's when it sent no key. RATE_LIMITED (with the wait) when over the rate.
    pub fn admit(&self, state: &AppState, operations: usize) -> Result<(), AppError> {
        let Some(limiter) = state.rate_limiter.as_ref() else {
            return Ok(());
        };
        let bucket = match (&self.caller, self.peer) {
            (Some(caller), _) => caller.key_id.clone(),
            (None, Some(peer)) => address_bucket(peer.ip()),
            (None, None) => return Ok(()),
        };
        limiter.check_n(&bucket, operations as u32).map_err(|wait| {
            let secs = retry_after_secs(wait);
            AppError::RateLimited {
                message: format!("rate limit exceeded for this API key; retry in {secs} s"),
                retry_after_secs: secs,
            }
        })
    }

    /// The caller, which must have sent a key: UNAUTHENTICATED otherwise.
    pub fn required(self) -> Result<Caller, AppError> {
        self.caller.ok_or_else(|| {
            AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <api key>`".into(),
            )
        })
    }
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
