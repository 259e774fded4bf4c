//! A run's policy events: the checks of its steps, its cost ceiling, and which policy looks at
//! a step of each skill.

use super::*;

impl TenantGenerator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn governance_event(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        occurred_us: i64,
        rule: (&str, &str),
        decision: PolicyDecision,
        entity: (&str, String),
        reason: String,
    ) -> governance_events::Model {
        governance_events::Model {
            anchor_id: None,
            tenant_id: self.tenant_id.clone(),
            id: format!("gov_{}", rng.hex(32)),
            run_id: ctx.run_id.clone(),
            occurred_at: ts(occurred_us),
            event_type: "POLICY_EVALUATED".to_string(),
            policy_id: Some(rule.0.to_string()),
            rule_id: Some(rule.1.to_string()),
            decision: decision.as_str().to_string(),
            entity_type: entity.0.to_string(),
            entity_id: entity.1,
            reason: Some(reason),
            recorded_at: ts(occurred_us + rng.range(50 * MILLI, 2 * SECOND)),
            record_hash: String::new(),
        }
    }

    /// 2–4 policy evaluations (3 on average); a blocked run always has the BLOCK at its
    /// blocked step.
    pub(super) fn governance_events(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        facts: &[StepFacts],
    ) -> Vec<governance_events::Model> {
        let count = rng.weighted(&[(2usize, 20), (3, 55), (4, 25)]);
        let step_ref = |s: &StepFacts| ("step", format!("{}#{}", ctx.trace_id, s.index));
        let mut events = Vec::with_capacity(count);
        if let Some(blocked) = facts.iter().find(|s| s.status == StepStatus::Blocked) {
            let (rule, reason) = match rng.weighted(&[(0u8, 60), (1, 25), (2, 15)]) {
                0 => (
                    ("pol-prompt-injection", "classifier-threshold"),
                    format!(
                        "prompt-injection classifier score 0.{} is at or above the 0.80 threshold",
                        rng.range(80, 99)
                    ),
                ),
                1 => (
                    ("pol-pii-redaction", "pii-payment-card"),
                    "payment card number in the user input".to_string(),
                ),
                _ => (
                    ("pol-tool-allowlist", "allowlist-v3"),
                    "requested tool `tool:shell_exec` is not on the allowlist".to_string(),
                ),
            };
            let event = self.governance_event(
                rng,
                ctx,
                blocked.start_us,
                rule,
                PolicyDecision::Block,
                step_ref(blocked),
                reason,
            );
            events.push(event);
        }
        let evaluated: Vec<&StepFacts> = facts
            .iter()
            .filter(|s| s.executed() && s.status != StepStatus::Blocked)
            .collect();
        let mut cost_checked = false;
        while events.len() < count {
            let run_level = evaluated.is_empty() || rng.chance(0.25);
            if run_level {
                if cost_checked {
                    if evaluated.is_empty() {
                        break;
                    }
                    continue;
                }
                cost_checked = true;
                let event = self.cost_event(rng, ctx);
                events.push(event);
                continue;
            }
            let step = *rng.pick(&evaluated);
            let (rule, decision, reason) = step_policy(rng, step.skill);
            let latest = (step.end_us - step.start_us).min(20 * MILLI);
            let occurred_us = step.start_us + rng.range(0, latest);
            let event = self.governance_event(
                rng,
                ctx,
                occurred_us,
                rule,
                decision,
                step_ref(step),
                reason,
            );
            events.push(event);
        }
        events
    }

    /// The per-run cost ceiling, checked when the run closes.
    pub(super) fn cost_event(&self, rng: &mut Prng, ctx: &RunContext) -> governance_events::Model {
        const CEILING_CENTS: i64 = 40;
        let percent = ctx.cost_cents * 100 / CEILING_CENTS;
        let (decision, reason) = if percent >= 80 {
            (
                PolicyDecision::Warn,
                format!(
                    "run cost {} cents is {percent}% of the {CEILING_CENTS} cent per-run ceiling",
                    ctx.cost_cents
                ),
            )
        } else {
            (
                PolicyDecision::Allow,
                format!(
                    "run cost {} cents is within the {CEILING_CENTS} cent per-run ceiling",
                    ctx.cost_cents
                ),
            )
        };
        self.governance_event(
            rng,
            ctx,
            ctx.completed_us,
            ("pol-cost-ceiling", "per-run-ceiling"),
            decision,
            ("run", ctx.run_id.clone()),
            reason,
        )
    }
}

/// Which policy looks at a step of this skill, and what it decided.
pub(super) fn step_policy(
    rng: &mut Prng,
    skill: &'static str,
) -> ((&'static str, &'static str), PolicyDecision, String) {
    if is_tool(skill) {
        let rule = ("pol-tool-allowlist", "allowlist-v3");
        return if rng.chance(0.9) {
            (
                rule,
                PolicyDecision::Allow,
                format!("`{skill}` is on the allowlist"),
            )
        } else {
            (
                rule,
                PolicyDecision::Warn,
                format!("`{skill}` is allowlisted but was called outside business hours"),
            )
        };
    }
    if skill == "guardrail_check" && rng.chance(0.6) {
        let rule = ("pol-prompt-injection", "classifier-threshold");
        return if rng.chance(0.88) {
            (
                rule,
                PolicyDecision::Allow,
                format!(
                    "prompt-injection classifier score 0.{:02} is below the 0.80 threshold",
                    rng.range(1, 40)
                ),
            )
        } else {
            (
                rule,
                PolicyDecision::Warn,
                format!(
                    "prompt-injection classifier score 0.{} is close to the 0.80 threshold",
                    rng.range(60, 79)
                ),
            )
        };
    }
    let target = if skill == "retrieve_context" || skill == "guardrail_check" {
        "input"
    } else {
        "model output"
    };
    match rng.weighted(&[(0u8, 80), (1, 12), (2, 8)]) {
        0 => (
            ("pol-pii-redaction", "pii-scan"),
            PolicyDecision::Allow,
            format!("no personal data detected in the {target}"),
        ),
        1 => (
            ("pol-pii-redaction", "pii-email"),
            PolicyDecision::Redact,
            format!("email address redacted from the {target}"),
        ),
        _ => (
            ("pol-pii-redaction", "pii-phone"),
            PolicyDecision::Warn,
            format!("possible phone number left in the {target}"),
        ),
    }
}
