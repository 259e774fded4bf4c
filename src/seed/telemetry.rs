//! Telemetry samples of a run: latency, throughput and queue depth from start to completion.

use super::*;

impl TenantGenerator {
    /// Latency, throughput and queue depth every 0.5–1 s from start to completion.
    pub(super) fn telemetry(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        facts: &[StepFacts],
    ) -> Vec<telemetry_samples::Model> {
        let mut out = Vec::new();
        let mut queue_depth = rng.range(0, 6);
        let mut next_step = 0;
        let mut t = ctx.started_us;
        while t <= ctx.completed_us {
            while next_step < facts.len() && facts[next_step].end_us <= t {
                next_step += 1;
            }
            let active = facts
                .get(next_step)
                .filter(|s| s.executed() && s.start_us <= t);
            let (latency_ms, tokens_per_second) = match active {
                Some(s) if is_llm(s.skill) => {
                    let latency = if ctx.model.reasoning {
                        rng.range_f64(1_500.0, 6_000.0)
                    } else {
                        rng.range_f64(250.0, 1_500.0)
                    };
                    let speed = if s.status == StepStatus::Failed {
                        0.0
                    } else {
                        ctx.model.tokens_per_second * rng.range_f64(0.8, 1.2)
                    };
                    (latency, speed)
                }
                Some(s) if is_tool(s.skill) => (rng.range_f64(50.0, 900.0), 0.0),
                _ => (rng.range_f64(5.0, 80.0), 0.0),
            };
            queue_depth = (queue_depth + rng.range(-2, 2)).clamp(0, 40);
            for (metric, value, unit) in [
                ("latency_ms", round1(latency_ms), Some("ms")),
                (
                    "tokens_per_second",
                    round1(tokens_per_second),
                    Some("tok/s"),
                ),
                ("queue_depth", queue_depth as f64, None),
            ] {
                out.push(telemetry_samples::Model {
                    anchor_id: None,
                    tenant_id: self.tenant_id.clone(),
                    id: format!("tel_{}", rng.hex(32)),
                    run_id: ctx.run_id.clone(),
                    sampled_at: ts(t),
                    metric: metric.to_string(),
                    value,
                    unit: unit.map(str::to_string),
                    recorded_at: ts(t + rng.range(50 * MILLI, 2 * SECOND)),
                    record_hash: String::new(),
                });
            }
            t += rng.range(500 * MILLI, SECOND);
        }
        out
    }
}
