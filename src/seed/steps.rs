//! A run's trace steps: the agent loop's skills, their durations, tokens and costs, and
//! statuses consistent with the run's.

use super::*;

/// A step before it is placed on the timeline.
#[derive(Clone, Debug)]
pub(super) struct StepDraft {
    pub(super) skill: &'static str,
    pub(super) status: StepStatus,
    pub(super) outcome: &'static str,
    pub(super) duration_ms: i64,
    pub(super) input_tokens: i64,
    pub(super) output_tokens: i64,
    pub(super) cost_cents: i64,
}

/// The agent loop: plan, input guardrail, work (retrieval, LLM calls, tools), summarize,
/// respond; shorter traces keep the ends.
pub(super) fn skill_sequence(rng: &mut Prng, n: usize) -> Vec<&'static str> {
    match n {
        0 => Vec::new(),
        1 => vec!["call_llm"],
        2 => vec!["plan", "respond"],
        _ => {
            let tail: &[&'static str] = if n >= 5 {
                &["summarize", "respond"]
            } else {
                &["respond"]
            };
            let middle = n - 2 - tail.len();
            let mut skills = Vec::with_capacity(n);
            skills.push("plan");
            skills.push("guardrail_check");
            for j in 0..middle {
                let previous = skills.last().copied().unwrap_or("plan");
                let next = if j == 0 && middle >= 3 {
                    "retrieve_context"
                } else if j + 1 == middle && middle >= 6 && rng.chance(0.3) {
                    // An output guardrail before the answer is assembled.
                    "guardrail_check"
                } else if previous == "call_llm" && rng.chance(0.7) {
                    *rng.pick(&TOOLS)
                } else {
                    "call_llm"
                };
                skills.push(next);
            }
            skills.extend_from_slice(tail);
            skills
        }
    }
}

pub(super) fn llm_token_ranges(skill: &str) -> (i64, i64, i64, i64) {
    match skill {
        "plan" => (800, 3_000, 100, 400),
        "summarize" => (3_000, 16_000, 200, 800),
        "respond" => (1_500, 6_000, 100, 700),
        _ => (2_000, 24_000, 150, 1_500),
    }
}

pub(super) fn executed_step(
    rng: &mut Prng,
    skill: &'static str,
    model: &ModelProfile,
    retried: bool,
) -> StepDraft {
    let (mut duration_ms, input_tokens, output_tokens, cost_cents) = if is_llm(skill) {
        let (in_lo, in_hi, out_lo, out_hi) = llm_token_ranges(skill);
        let input = rng.range(in_lo, in_hi);
        let output = rng.range(out_lo, out_hi);
        let first_token_ms = if model.reasoning {
            rng.range(1_500, 6_000)
        } else {
            rng.range(200, 900)
        };
        let speed = model.tokens_per_second * rng.range_f64(0.8, 1.2);
        let generation_ms = (output as f64 / speed * 1000.0).round() as i64;
        (
            first_token_ms + generation_ms,
            input,
            output,
            model.cost_cents(input, output),
        )
    } else {
        match skill {
            // Search APIs bill per query.
            "tool:web_search" => (rng.range(300, 2_800), 0, 0, 1),
            "tool:sql_query" => (rng.range(20, 1_500), 0, 0, 0),
            "retrieve_context" => (rng.range(40, 600), 0, 0, 0),
            "guardrail_check" => (rng.range(15, 250), 0, 0, 0),
            _ => (rng.range(50, 500), 0, 0, 0),
        }
    };
    let (status, outcome) = if retried {
        // The failed attempt and the backoff are part of the step.
        duration_ms += rng.range(500, 2_500);
        (StepStatus::Retried, "TRANSIENT_ERROR")
    } else {
        (StepStatus::Succeeded, "SUCCESS")
    };
    StepDraft {
        skill,
        status,
        outcome,
        duration_ms,
        input_tokens,
        output_tokens,
        cost_cents,
    }
}

/// The step that ends a failed, timed-out or blocked run.
pub(super) fn failing_step(rng: &mut Prng, status: RunStatus, skill: &'static str) -> StepDraft {
    let (step_status, outcome, duration_ms) = match status {
        RunStatus::Blocked => (StepStatus::Blocked, "POLICY_BLOCK", rng.range(15, 250)),
        RunStatus::TimedOut => {
            let limit = if is_llm(skill) { 60_000 } else { 30_000 };
            (StepStatus::Failed, "TIMEOUT", limit + rng.range(0, 250))
        }
        _ if is_tool(skill) => (StepStatus::Failed, "TOOL_ERROR", rng.range(100, 5_000)),
        _ if is_llm(skill) => (StepStatus::Failed, "PROVIDER_ERROR", rng.range(150, 3_000)),
        _ => (StepStatus::Failed, "INTERNAL_ERROR", rng.range(10, 500)),
    };
    StepDraft {
        skill,
        status: step_status,
        outcome,
        duration_ms,
        input_tokens: 0,
        output_tokens: 0,
        cost_cents: 0,
    }
}

pub(super) fn skipped_step(skill: &'static str) -> StepDraft {
    StepDraft {
        skill,
        status: StepStatus::Skipped,
        outcome: "SKIPPED",
        duration_ms: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_cents: 0,
    }
}

/// The steps of a run, with statuses consistent with the run's: a succeeded run's steps all
/// succeed (a few after a retry); a failed or timed-out run has one FAILED step, a blocked run
/// one BLOCKED guardrail step, each followed only by SKIPPED steps; an aborted run ends in a
/// SKIPPED tail.
pub(super) fn draft_steps(
    rng: &mut Prng,
    status: RunStatus,
    n: usize,
    model: &ModelProfile,
) -> Vec<StepDraft> {
    let mut skills = skill_sequence(rng, n);
    if skills.is_empty() {
        return Vec::new();
    }
    let turn = match status {
        RunStatus::Succeeded => None,
        RunStatus::Failed | RunStatus::TimedOut => {
            let candidates: Vec<usize> = (0..n)
                .filter(|&i| is_llm(skills[i]) || is_tool(skills[i]))
                .collect();
            if candidates.is_empty() {
                Some(rng.below(n as u64) as usize)
            } else {
                Some(*rng.pick(&candidates))
            }
        }
        RunStatus::Blocked => {
            let guardrails: Vec<usize> =
                (0..n).filter(|&i| skills[i] == "guardrail_check").collect();
            if guardrails.is_empty() {
                // Traces too short for a guardrail step end in one.
                skills[n - 1] = "guardrail_check";
                Some(n - 1)
            } else {
                Some(*rng.pick(&guardrails))
            }
        }
        RunStatus::Aborted => Some(if n >= 2 {
            1 + rng.below(n as u64 - 1) as usize
        } else {
            0
        }),
    };
    let mut drafts = Vec::with_capacity(n);
    for (i, skill) in skills.into_iter().enumerate() {
        let draft = match turn {
            Some(t) if i > t || (i == t && status == RunStatus::Aborted) => skipped_step(skill),
            Some(t) if i == t => failing_step(rng, status, skill),
            _ => {
                let retried = status == RunStatus::Succeeded
                    && (is_llm(skill) || is_tool(skill))
                    && rng.chance(0.04);
                executed_step(rng, skill, model, retried)
            }
        };
        drafts.push(draft);
    }
    drafts
}

/// A step placed on the timeline.
#[derive(Clone, Debug)]
pub(super) struct StepFacts {
    pub(super) index: usize,
    pub(super) skill: &'static str,
    pub(super) status: StepStatus,
    pub(super) outcome: &'static str,
    pub(super) start_us: i64,
    pub(super) end_us: i64,
}

impl StepFacts {
    pub(super) fn executed(&self) -> bool {
        self.status != StepStatus::Skipped
    }
}
