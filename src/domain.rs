//! Validated domain values: the closed vocabularies of the evidence (statuses, decisions,
//! severities, ledger categories, roles…) and bounded request values (page sizes, windows).
//!
//! Strings from the database or from clients are parsed into these at the edge, so the facade
//! only ever sees valid values. Each vocabulary is also a GraphQL enum of the same spelling.

use crate::error::AppError;

/// Declares a closed vocabulary stored as its SCREAMING_CASE name.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, async_graphql::Enum)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Parses the stored spelling, naming the field in the error.
            pub fn parse_field(text: &str, field: &str) -> Result<Self, AppError> {
                Self::parse(text).ok_or_else(|| {
                    let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    AppError::bad_input(format!(
                        "{field}: `{text}` is not one of {}", allowed.join(", ")
                    ))
                })
            }
        }

        impl $crate::domain::Vocabulary for $name {
            const NAME: &'static str = stringify!($name);

            fn from_stored(text: &str) -> Option<Self> {
                $name::parse(text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A closed vocabulary, as the database stores it.
pub trait Vocabulary: Sized + Copy + async_graphql::InputType {
    /// The vocabulary's name, e.g. `RunStatus`.
    const NAME: &'static str;

    /// Parses the stored spelling.
    fn from_stored(text: &str) -> Option<Self>;
}

/// Reads a stored value of a vocabulary: the one place stored enums are parsed on read, and
/// the one policy for a value outside the vocabulary (a corrupt or foreign row). It is an
/// INTERNAL error whose description names the row (`row()`, e.g. `llm_runs t1/r1`) and the
/// value; the description is logged when the error reaches a client, which sees only
/// `internal error`.
pub fn read_stored<T: Vocabulary>(text: &str, row: impl FnOnce() -> String) -> Result<T, AppError> {
    T::from_stored(text).ok_or_else(|| {
        AppError::internal(
            format!("read the stored {} of {}", T::NAME, row()),
            format!("`{text}` is not a {}", T::NAME),
        )
    })
}

vocabulary! {
    /// Final status of an LLM run.
    RunStatus {
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        /// Stopped by a policy.
        Blocked = "BLOCKED",
        TimedOut = "TIMED_OUT",
        Aborted = "ABORTED",
    }
}

vocabulary! {
    /// Status of one trace step.
    StepStatus {
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        Blocked = "BLOCKED",
        Skipped = "SKIPPED",
        Retried = "RETRIED",
    }
}

vocabulary! {
    /// Decision of a policy on a run.
    PolicyDecision { Allow = "ALLOW", Warn = "WARN", Block = "BLOCK", Redact = "REDACT" }
}

vocabulary! {
    /// Severity of a system record.
    Severity { Debug = "DEBUG", Info = "INFO", Warning = "WARNING", Error = "ERROR", Critical = "CRITICAL" }
}

vocabulary! {
    /// What kind of fact an audit ledger entry records.
    LedgerCategory {
        /// Tenant and key lifecycle, failed authentication.
        Identity = "IDENTITY",
        /// Allow and deny decisions of runledger's access control.
        Authorization = "AUTHORIZATION",
        /// Who read or exported which evidence.
        Access = "ACCESS",
        /// Changes of policies, rules and limits reported by producers.
        Governance = "GOVERNANCE",
        /// Compliance export lifecycle.
        Export = "EXPORT",
        /// Integrity verifications.
        Integrity = "INTEGRITY",
        /// Commitments to batches of written evidence records.
        Anchor = "ANCHOR",
    }
}

vocabulary! {
    /// Who acted.
    ActorType { Human = "HUMAN", Agent = "AGENT", System = "SYSTEM" }
}

vocabulary! {
    /// Outcome of an authorization decision.
    AccessDecision { Allow = "ALLOW", Deny = "DENY" }
}

vocabulary! {
    /// Where a record came from.
    Origin { System = "SYSTEM", Human = "HUMAN", Agent = "AGENT", Migration = "MIGRATION", Replay = "REPLAY" }
}

vocabulary! {
    /// The evidence domain a response draws from.
    SourceDomain { Activity = "ACTIVITY", Policy = "POLICY", Incidents = "INCIDENTS", Logs = "LOGS", System = "SYSTEM" }
}

vocabulary! {
    /// Role of an API key.
    Role {
        /// Reads runs and system logs.
        Viewer = "VIEWER",
        /// Viewer plus the audit views and exports.
        Auditor = "AUDITOR",
        /// Writes evidence.
        Ingest = "INGEST",
        /// Manages keys; reads everything.
        Admin = "ADMIN",
    }
}

vocabulary! {
    /// State of a compliance export.
    ExportStatus { Pending = "PENDING", Completed = "COMPLETED", Failed = "FAILED" }
}

vocabulary! {
    /// Format of an evidence export.
    ExportFormat {
        /// The canonical JSON bundle of one run (RFC 8785), whose SHA-256 is the export
        /// checksum (the seeder's exports before signed bundles).
        Json = "JSON",
        /// The signed evidence bundle (docs/exports.md): records, anchors, proofs and the
        /// checkpoint they lead to, verifiable offline with `runledger verify-bundle`.
        Bundle = "BUNDLE",
        /// One row per run (RFC 4180), for spreadsheets; not signed.
        Csv = "CSV",
        /// Runs and their steps as OTLP/JSON spans in the GenAI conventions (JSON Lines, one
        /// `ExportTraceServiceRequest` per run), for any OpenTelemetry backend; not signed.
        OtlpJson = "OTLP_JSON",
    }
}

impl Role {
    /// May read runs and system logs.
    pub fn can_read_evidence(self) -> bool {
        matches!(self, Role::Viewer | Role::Auditor | Role::Admin)
    }

    /// May read the audit views and exports.
    pub fn can_read_audit(self) -> bool {
        matches!(self, Role::Auditor | Role::Admin)
    }

    /// May write evidence (runs, steps, system records, telemetry, producer audit events).
    pub fn can_write_evidence(self) -> bool {
        matches!(self, Role::Ingest)
    }
}

impl Severity {
    /// ERROR and CRITICAL records are incidents.
    pub fn is_incident(self) -> bool {
        matches!(self, Severity::Error | Severity::Critical)
    }
}

/// A page size within `1..=MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u64);

impl PageSize {
    pub const DEFAULT: u64 = 20;
    pub const MAX: u64 = 100;

    pub fn parse(first: Option<i32>, last: Option<i32>) -> Result<(Self, bool), AppError> {
        let (value, name, backward) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "pass either `first` or `last`, not both",
                ));
            }
            (Some(n), None) => (n, "first", false),
            (None, Some(n)) => (n, "last", true),
            (None, None) => return Ok((PageSize(Self::DEFAULT), false)),
        };
        if value < 1 || value as u64 > Self::MAX {
            return Err(AppError::bad_input(format!(
                "`{name}` must be between 1 and {}, got {value}",
                Self::MAX
            )));
        }
        Ok((PageSize(value as u64), backward))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// Half-width of a replay window in seconds, within `1..=MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSeconds(i64);

impl WindowSeconds {
    pub const DEFAULT: i64 = 30;
    pub const MAX: i64 = 3600;

    pub fn parse(value: Option<i32>) -> Result<Self, AppError> {
        let v = value.map(i64::from).unwrap_or(Self::DEFAULT);
        if !(1..=Self::MAX).contains(&v) {
            return Err(AppError::bad_input(format!(
                "`windowSeconds` must be between 1 and {}, got {v}",
                Self::MAX
            )));
        }
        Ok(WindowSeconds(v))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A UTC instant with microsecond precision: the GraphQL `DateTime` scalar.
///
/// Written as RFC 3339 in UTC with exactly six fractional digits
/// (`2026-03-01T12:00:00.000000Z`), so every timestamp of the API has one shape and sorts as
/// text; read from any RFC 3339 text with an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(t: chrono::DateTime<chrono::Utc>) -> Self {
        Timestamp(t)
    }
}

#[async_graphql::Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl async_graphql::ScalarType for Timestamp {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Timestamp(crate::canonical::micros(t.with_timezone(&chrono::Utc))))
                .map_err(|e| {
                    async_graphql::InputValueError::custom(format!(
                        "`{s}` is not an RFC 3339 timestamp: {e}"
                    ))
                }),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(crate::canonical::timestamp(&self.0))
    }
}
