//! The one error type of runledger and its policy.
//!
//! Every failure a client can see is an [`AppError`] with a stable machine-readable code
//! ([`AppError::code`]), mapped to GraphQL `extensions.code` in exactly one place
//! ([`AppError::into_graphql`]). Client-caused errors carry a precise message naming what is
//! wrong. Internal failures (database, I/O) are logged with their whole cause chain and the
//! context of the operation, and the client only ever sees "internal error": no SQL, no paths,
//! no driver messages leak.

use std::error::Error as StdError;

/// A boxed cause of an internal error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Deliberately not `Display`: async-graphql converts any `Display` type into its error with
/// the message only, so a bare `?` would silently drop the code. Without `Display`, the only
/// conversion is [`AppError::into_graphql`] (through `From`), which keeps it.
#[derive(Debug)]
pub enum AppError {
    /// No credentials, or credentials that do not identify an active key.
    Unauthenticated(String),
    /// The caller is known but its role does not grant the operation.
    Forbidden(String),
    /// The thing asked for does not exist for this tenant.
    NotFound(String),
    /// The request is malformed: a bad cursor, filter value, page size, id…
    BadUserInput(String),
    /// A different record already exists under the same key.
    Conflict(String),
    /// The caller exceeded its request budget; it may retry after this many seconds.
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// The request ran past its time limit and was cancelled.
    Timeout(String),
    /// The query exceeds depth, complexity or size limits.
    QueryTooComplex(String),
    /// A subscription would exceed the subscriptions allowed per key or per server.
    TooManySubscriptions(String),
    /// The server ended a live subscription; the client may subscribe again after
    /// `resume_after` (sent as `extensions.resumeAfter`) and miss nothing.
    Interrupted {
        reason: Interruption,
        message: String,
        resume_after: Option<String>,
    },
    /// Anything the client did not cause. `context` says what runledger was doing.
    Internal { context: String, source: BoxError },
}

impl AppError {
    /// The stable code sent as GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadUserInput(_) => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Timeout(_) => "TIMEOUT",
            AppError::QueryTooComplex(_) => "QUERY_TOO_COMPLEX",
            AppError::TooManySubscriptions(_) => "TOO_MANY_SUBSCRIPTIONS",
            AppError::Interrupted { reason, .. } => reason.code(),
            AppError::Internal { .. } => "INTERNAL",
        }
    }

    pub fn bad_input(msg: impl Into<String>) -> Self {
        AppError::BadUserInput(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }

    /// An internal failure with the context of what was being done.
    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        AppError::Internal {
            context: context.into(),
            source: source.into(),
        }
    }

    /// How long a refused caller should wait before retrying, when the error says.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The message a client may see.
    pub fn client_message(&self) -> String {
        match self {
            AppError::Unauthenticated(m)
            | AppError::Forbidden(m)
            | AppError::NotFound(m)
            | AppError::BadUserInput(m)
            | AppError::Conflict(m)
            | AppError::RateLimited { message: m, .. }
            | AppError::Timeout(m)
            | AppError::QueryTooComplex(m)
            | AppError::TooManySubscriptions(m)
            | AppError::Interrupted { message: m, .. } => m.clone(),
            AppError::Internal { .. } => "internal error".to_string(),
        }
    }

    /// The full description for operators (logs, the command line): internal causes included.
    pub fn describe(&self) -> String {
        match self {
            AppError::Internal { context, source } => {
                format!("failed to {context}: {}", chain(source.as_ref()))
            }
            other => format!("{}: {}", other.code(), other.client_message()),
        }
    }

    /// Logs an internal failure with its context and cause chain (client errors are not logged).
    pub fn log(&self) {
        if let AppError::Internal { context, source } = self {
            tracing::error!(error.context = %context, error.chain = %chain(source.as_ref()), "internal error");
        }
    }

    /// The one mapping into a GraphQL error; internal causes are logged, not sent.
    pub fn into_graphql(self) -> async_graphql::Error {
        self.log();
        let code = self.code();
        let retry_after = self.retry_after_secs();
        let resume_after = match &self {
            AppError::Interrupted { resume_after, .. } => resume_after.clone(),
            _ => None,
        };
        async_graphql::ErrorExtensions::extend_with(
            async_graphql::Error::new(self.client_message()),
            |_, e| {
                e.set("code", code);
                if let Some(secs) = retry_after {
                    e.set("retryAfterSeconds", secs);
                }
                if let Some(cursor) = &resume_after {
                    e.set("resumeAfter", cursor.as_str());
                }
            },
        )
    }
}

/// Why the server ended a live subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// It fell behind the ledger by more than the server buffers.
    SlowConsumer,
    /// The server is stopping.
    ShuttingDown,
}

impl Interruption {
    pub const fn code(self) -> &'static str {
        match self {
            Interruption::SlowConsumer => "SLOW_CONSUMER",
            Interruption::ShuttingDown => "SHUTTING_DOWN",
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        e.into_graphql()
    }
}

/// Renders an error and all its sources as `a: b: c`.
pub fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

/// Adds the context of an I/O step to any error, turning it into [`AppError::Internal`].
pub trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T, AppError>;
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T, AppError>;
}

impl<T, E: Into<BoxError>> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, AppError> {
        self.map_err(|e| AppError::internal(what, e))
    }
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T, AppError> {
        self.map_err(|e| AppError::internal(what(), e))
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A DataLoader failure shared by several resolvers; only internal failures travel this way.
impl From<std::sync::Arc<AppError>> for AppError {
    fn from(shared: std::sync::Arc<AppError>) -> Self {
        match std::sync::Arc::try_unwrap(shared) {
            Ok(e) => e,
            Err(shared) => match shared.as_ref() {
                AppError::Internal { context, source } => {
                    AppError::internal(context.clone(), chain(source.as_ref()))
                }
                other => AppError::internal("load data", other.describe()),
            },
        }
    }
}
