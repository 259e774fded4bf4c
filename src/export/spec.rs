//! The scope of an export as requested: one run; runs by the run list's filter (with their
//! steps, policy events, correlated system records and telemetry); the audit ledger by seq or
//! time range and categories; the tenant's system records by filter. Stored as canonical JSON in
//! the job (`export_jobs.spec`), in the `EXPORT_REQUESTED` entry (`after_state.spec`) and in the
//! bundle's manifest, so all three say the same thing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{canonical_json, timestamp};
use crate::error::{AppError, AppResult};

/// What an export holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportSpec {
    /// One run with its steps, policy events, correlated system records and telemetry.
    Run { run_id: String },
    /// The runs the filter selects, each with what `Run` holds.
    Runs { filter: RunSelection },
    /// Entries of the tenant's audit ledger.
    Ledger(LedgerSelection),
    /// The tenant's system records.
    System(SystemSelection),
}

/// The run list's filter (`LlmRunFilter`), as its `applied` form spells it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunSelection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_status: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_synthetic: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_actor_id: Option<String>,
    /// Canonical timestamps (`2026-01-02T03:04:05.000000Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_before: Option<String>,
}

/// Ledger entries by seq range, time range (`occurred_at`) and categories; all optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSelection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
}

/// The tenant's own system records by component, severities, correlation and time range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSelection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_before: Option<String>,
}

/// A canonical timestamp of a spec back to an instant.
pub fn parse_time(field: &str, text: &str) -> AppResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AppError::bad_input(format!("{field} is not an RFC 3339 instant: {text}")))
}

/// An instant as a spec stores it.
pub fn time_text(t: &DateTime<Utc>) -> String {
    timestamp(t)
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    low: Option<T>,
    high: Option<T>,
) -> AppResult<()> {
    match (low, high) {
        (Some(a), Some(b)) if a > b => Err(AppError::bad_input(format!(
            "{field}: the lower bound {a} is after the upper bound {b}"
        ))),
        _ => Ok(()),
    }
}

fn check_times(field: &str, low: &Option<String>, high: &Option<String>) -> AppResult<()> {
    let low = low.as_deref().map(|t| parse_time(field, t)).transpose()?;
    let high = high.as_deref().map(|t| parse_time(field, t)).transpose()?;
    check_range(
        field,
        low.map(|t| timestamp(&t)),
        high.map(|t| timestamp(&t)),
    )
}

impl ExportSpec {
    /// Checks what the GraphQL types cannot: ranges in order, seqs positive.
    pub fn validate(&self) -> AppResult<()> {
        match self {
            ExportSpec::Run { run_id } if run_id.is_empty() => {
                Err(AppError::bad_input("scope.runId must not be empty"))
            }
            ExportSpec::Run { .. } => Ok(()),
            ExportSpec::Runs { filter } => check_times(
                "scope.runs.startedAfter/startedBefore",
                &filter.started_after,
                &filter.started_before,
            ),
            ExportSpec::Ledger(l) => {
                for (name, v) in [("fromSeq", l.from_seq), ("toSeq", l.to_seq)] {
                    if matches!(v, Some(s) if s < 1) {
                        return Err(AppError::bad_input(format!(
                            "scope.ledger.{name} must be at least 1"
                        )));
                    }
                }
                check_range("scope.ledger.fromSeq/toSeq", l.from_seq, l.to_seq)?;
                if matches!(&l.categories, Some(c) if c.is_empty()) {
                    return Err(AppError::bad_input(
                        "scope.ledger.categories must name at least one category",
                    ));
                }
                check_times(
                    "scope.ledger.occurredAfter/occurredBefore",
                    &l.occurred_after,
                    &l.occurred_before,
                )
            }
            ExportSpec::System(s) => {
                if matches!(&s.severities, Some(v) if v.is_empty()) {
                    return Err(AppError::bad_input(
                        "scope.system.severities must name at least one severity",
                    ));
                }
                check_times(
                    "scope.system.occurredAfter/occurredBefore",
                    &s.occurred_after,
                    &s.occurred_before,
                )
            }
        }
    }

    /// The run, when the scope is one run.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            ExportSpec::Run { run_id } => Some(run_id),
            _ => None,
        }
    }

    /// The spec as JSON (canonical once serialized with [`canonical_json`]).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The record's `scope` column: `run:<runId>`, else `<kind>:<canonical JSON of the rest>`.
    pub fn scope_text(&self) -> String {
        match self {
            ExportSpec::Run { run_id } => format!("run:{run_id}"),
            ExportSpec::Runs { filter } => format!("runs:{}", canonical_of(filter)),
            ExportSpec::Ledger(l) => format!("ledger:{}", canonical_of(l)),
            ExportSpec::System(s) => format!("system:{}", canonical_of(s)),
        }
    }

    /// Reads a scope as [`ExportSpec::scope_text`] writes it (the command line's `--scope`).
    pub fn from_scope_text(text: &str) -> AppResult<ExportSpec> {
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            AppError::bad_input("a scope is `run:<runId>` or `runs:`/`ledger:`/`system:` and JSON")
        })?;
        let json = |what: &str| -> AppResult<Value> {
            let rest = if rest.trim().is_empty() { "{}" } else { rest };
            serde_json::from_str(rest)
                .map_err(|e| AppError::bad_input(format!("the {what} filter is not JSON: {e}")))
        };
        let invalid = |e: serde_json::Error| AppError::bad_input(format!("invalid scope: {e}"));
        let spec = match kind {
            "run" => ExportSpec::Run {
                run_id: rest.to_string(),
            },
            "runs" => ExportSpec::Runs {
                filter: serde_json::from_value(json("runs")?).map_err(invalid)?,
            },
            "ledger" => {
                ExportSpec::Ledger(serde_json::from_value(json("ledger")?).map_err(invalid)?)
            }
            "system" => {
                ExportSpec::System(serde_json::from_value(json("system")?).map_err(invalid)?)
            }
            other => {
                return Err(AppError::bad_input(format!(
                    "unknown scope kind `{other}`: run, runs, ledger or system"
                )));
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Parses a stored spec.
    pub fn parse(text: &str) -> AppResult<ExportSpec> {
        serde_json::from_str(text)
            .map_err(|e| AppError::bad_input(format!("export scope does not parse: {e}")))
    }
}

fn canonical_of<T: Serialize>(v: &T) -> String {
    canonical_json(&serde_json::to_value(v).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips_through_its_stored_text() {
        let spec = ExportSpec::Runs {
            filter: RunSelection {
                model: Some("gpt-4o".into()),
                started_after: Some("2026-01-02T03:04:05.000000Z".into()),
                ..RunSelection::default()
            },
        };
        let text = canonical_json(&spec.to_json());
        assert_eq!(
            text,
            r#"{"filter":{"model":"gpt-4o","startedAfter":"2026-01-02T03:04:05.000000Z"},"kind":"runs"}"#
        );
        assert_eq!(ExportSpec::parse(&text).ok(), Some(spec));
        let ledger = ExportSpec::Ledger(LedgerSelection {
            from_seq: Some(5),
            to_seq: Some(2),
            ..LedgerSelection::default()
        });
        assert!(ledger.validate().is_err());
    }
}
