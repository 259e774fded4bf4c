//! The generated world's fixed vocabulary: models and their prices, run status mix, agents,
//! people, regions, skills and the runtime deployment.

use super::*;

#[derive(Clone, Copy, Debug)]
pub(super) struct ModelProfile {
    pub(super) provider: &'static str,
    pub(super) model: &'static str,
    /// List prices in cents per million tokens.
    pub(super) input_cents_per_mtok: f64,
    pub(super) output_cents_per_mtok: f64,
    pub(super) tokens_per_second: f64,
    /// Reasoning models think before the first token.
    pub(super) reasoning: bool,
}

impl ModelProfile {
    pub(super) fn cost_cents(&self, input: i64, output: i64) -> i64 {
        ((input as f64 * self.input_cents_per_mtok + output as f64 * self.output_cents_per_mtok)
            / 1e6)
            .round() as i64
    }
}

pub(super) const fn profile(
    provider: &'static str,
    model: &'static str,
    input_cents_per_mtok: f64,
    output_cents_per_mtok: f64,
    tokens_per_second: f64,
    reasoning: bool,
) -> ModelProfile {
    ModelProfile {
        provider,
        model,
        input_cents_per_mtok,
        output_cents_per_mtok,
        tokens_per_second,
        reasoning,
    }
}

pub(super) const MODELS: [(ModelProfile, u32); 7] = [
    (profile("openai", "gpt-4o", 250.0, 1000.0, 85.0, false), 22),
    (
        profile("openai", "gpt-4o-mini", 15.0, 60.0, 120.0, false),
        20,
    ),
    (profile("openai", "o3-mini", 110.0, 440.0, 150.0, true), 8),
    (
        profile("anthropic", "claude-sonnet-4", 300.0, 1500.0, 65.0, false),
        20,
    ),
    (
        profile("anthropic", "claude-3-5-haiku", 80.0, 400.0, 110.0, false),
        12,
    ),
    (
        profile("google", "gemini-2.0-flash", 10.0, 40.0, 190.0, false),
        10,
    ),
    (
        profile("mistral", "mistral-large", 200.0, 600.0, 45.0, false),
        8,
    ),
];

pub(super) const RUN_STATUS_MIX: [(RunStatus, u32); 5] = [
    (RunStatus::Succeeded, 80),
    (RunStatus::Failed, 7),
    (RunStatus::Blocked, 6),
    (RunStatus::TimedOut, 4),
    (RunStatus::Aborted, 3),
];

pub(super) const AGENTS: [&str; 5] = [
    "support-triage",
    "research-assistant",
    "code-review",
    "billing-copilot",
    "ops-runbook",
];
pub(super) const PEOPLE: [&str; 6] = [
    "alice.nguyen",
    "bob.schmidt",
    "carla.diaz",
    "dev.patel",
    "emma.okafor",
    "farid.haddad",
];
pub(super) const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1"];

pub(super) const LLM_SKILLS: [&str; 4] = ["plan", "call_llm", "summarize", "respond"];
pub(super) const TOOLS: [&str; 2] = ["tool:web_search", "tool:sql_query"];

pub(super) fn is_llm(skill: &str) -> bool {
    LLM_SKILLS.contains(&skill)
}

pub(super) fn is_tool(skill: &str) -> bool {
    skill.starts_with("tool:")
}

pub(super) fn runtime_version(at_us: i64) -> &'static str {
    if at_us < DEPLOY_US {
        "2.14.2"
    } else {
        "2.14.3"
    }
}
