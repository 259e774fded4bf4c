//! A run's usage totals (`LlmRunUsage`), derived when read from its record and its steps.

use async_graphql::Object;

use crate::facade::runs::RunUsage;

/// Totals of a run over its record and its steps, derived when read (so they are right
/// whatever order its spans arrived in): for each kind the run record's own value when above
/// zero, else the sum over its steps; provider and model the record's unless `unknown`, else
/// the first step's that names one.
pub struct LlmRunUsage(pub RunUsage);

#[Object]
impl LlmRunUsage {
    /// Provider, when the record or a step names one.
    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }
    /// Model (the response model before the request model), when the record or a step names
    /// one.
    async fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }
    /// Prompt tokens.
    async fn input_tokens(&self) -> i64 {
        self.0.input_tokens
    }
    /// Completion tokens.
    async fn output_tokens(&self) -> i64 {
        self.0.output_tokens
    }
    /// Input tokens read from the provider's prompt cache.
    async fn cache_read_tokens(&self) -> i64 {
        self.0.cache_read_tokens
    }
    /// Input tokens written to the provider's prompt cache.
    async fn cache_creation_tokens(&self) -> i64 {
        self.0.cache_creation_tokens
    }
    /// Cost in US cents.
    async fn cost_cents(&self) -> i64 {
        self.0.cost_cents
    }
    /// Steps the totals are over.
    async fn steps(&self) -> i64 {
        self.0.steps
    }
}
