//! A run's usage totals, derived when read from its record and its steps, never stored: the
//! spans of a trace may arrive in any order and grouping, minutes apart, and a stored total
//! would be frozen with whatever had arrived by then.
//!
//! For each kind (input, output, cache-read and cache-creation tokens, cost) the total is the
//! run record's own value when it has one above zero (the root span reported the run's total,
//! or a producer sent the run over GraphQL), else the sum over the run's steps. Provider and
//! model are the record's unless it says `unknown` (a root span that named none), else those of
//! the first step (in index order) that names one, the response model before the request model.

use crate::auth::Permission;
use crate::error::AppResult;
use crate::facade::Facade;
use crate::facade::decode::StepColumns;
use crate::ingest::otlp::UNKNOWN;
use entity::{llm_runs, trace_steps};

/// The totals of a run (or of a trace whose root span has not arrived).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunUsage {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cost_cents: i64,
    /// Steps the totals are over.
    pub steps: i64,
}

/// The step columns usage reads.
pub(crate) fn usage_columns() -> StepColumns {
    use trace_steps::Column as C;
    StepColumns::KEY.with_all(&[
        C::Provider,
        C::RequestModel,
        C::ResponseModel,
        C::InputTokens,
        C::OutputTokens,
        C::CacheReadTokens,
        C::CacheCreationTokens,
        C::CostCents,
    ])
}

impl RunUsage {
    /// The totals of `run` (if its record is stored) over `steps` (in index order).
    pub fn derive(run: Option<&llm_runs::Model>, steps: &[trace_steps::Model]) -> RunUsage {
        // The rule the run rollups sum by (`rollup::usage_total`), so stats and this view agree.
        let total = |own: Option<i64>, of: fn(&trace_steps::Model) -> Option<i64>| {
            crate::rollup::usage_total(own, steps.iter().map(of))
        };
        let named = |v: &str| (v != UNKNOWN).then(|| v.to_string());
        RunUsage {
            provider: run
                .and_then(|r| named(&r.provider))
                .or_else(|| steps.iter().find_map(|s| s.provider.clone())),
            model: run.and_then(|r| named(&r.model)).or_else(|| {
                steps
                    .iter()
                    .find_map(|s| s.response_model.clone().or_else(|| s.request_model.clone()))
            }),
            input_tokens: total(run.map(|r| r.input_tokens), |s| s.input_tokens),
            output_tokens: total(run.map(|r| r.output_tokens), |s| s.output_tokens),
            cache_read_tokens: total(run.and_then(|r| r.cache_read_tokens), |s| {
                s.cache_read_tokens
            }),
            cache_creation_tokens: total(run.and_then(|r| r.cache_creation_tokens), |s| {
                s.cache_creation_tokens
            }),
            cost_cents: total(run.map(|r| r.cost_cents), |s| Some(s.cost_cents)),
            steps: steps.len() as i64,
        }
    }
}

impl Facade {
    /// The run's usage totals, derived from its record and its steps.
    pub async fn run_usage(&self, run: &llm_runs::Model) -> AppResult<RunUsage> {
        let scope = self.scope(Permission::ReadEvidence)?;
        let steps = self.steps_with(&scope, run, usage_columns()).await?;
        Ok(RunUsage::derive(Some(run), &steps))
    }
}
