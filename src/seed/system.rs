//! System records around runs: the tenant's infrastructure events, incidents, configuration
//! changes, and the global records of the platform.

use super::*;

impl TenantGenerator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn system_record(
        &self,
        rng: &mut Prng,
        global: bool,
        kind: (&str, &str),
        severity: Severity,
        summary: String,
        details: Value,
        caused_by: Option<String>,
        correlation_id: Option<&str>,
        origin: Origin,
        occurred_us: i64,
    ) -> system_records::Model {
        system_records::Model {
            anchor_id: None,
            id: format!("sys_{}", rng.hex(32)),
            tenant_id: (!global).then(|| self.tenant_id.clone()),
            component: kind.0.to_string(),
            event_type: kind.1.to_string(),
            severity: severity.as_str().to_string(),
            summary,
            details: Some(canonical_json(&details)),
            caused_by,
            correlation_id: correlation_id.map(str::to_string),
            origin: origin.as_str().to_string(),
            occurred_at: ts(occurred_us),
            recorded_at: ts(occurred_us + rng.range(50 * MILLI, 2 * SECOND)),
            record_hash: String::new(),
        }
    }

    pub(super) fn system_records(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        facts: &[StepFacts],
    ) -> Vec<system_records::Model> {
        let mut out = Vec::new();
        let worker = format!("worker-{}", rng.range(1, 24));
        {
            let gateway = format!("gw-{}-{}", self.region, rng.pick(&["a", "b"]));
            let record = self.system_record(
                rng,
                false,
                ("agent-runtime", "ENVIRONMENT_SNAPSHOT"),
                Severity::Info,
                format!("environment of run {} at start", ctx.run_id),
                json!({
                    "region": self.region,
                    "worker": worker,
                    "runtime_version": runtime_version(ctx.started_us),
                    "model_gateway": gateway,
                }),
                None,
                Some(&ctx.run_id),
                Origin::System,
                ctx.started_us,
            );
            out.push(record);
        }
        let failing = facts.iter().find(|s| s.status == StepStatus::Failed);
        if let Some(fail) =
            failing.filter(|_| matches!(ctx.status, RunStatus::Failed | RunStatus::TimedOut))
        {
            let first_us = fail.start_us + rng.range(0, fail.end_us - fail.start_us);
            let primary = if fail.outcome == "PROVIDER_ERROR"
                || (fail.outcome == "TIMEOUT" && is_llm(fail.skill))
            {
                "PROVIDER_ERROR_RATE"
            } else if is_tool(fail.skill) {
                "WORKER_RESTART"
            } else {
                "HEALTH_DEGRADED"
            };
            let record = self.incident_record(rng, ctx, primary, first_us);
            out.push(record);
            if rng.chance(0.5) {
                let secondary =
                    *rng.pick(&["PROVIDER_ERROR_RATE", "WORKER_RESTART", "HEALTH_DEGRADED"]);
                let before_us =
                    (fail.start_us - rng.range(SECOND, 10 * SECOND)).max(ctx.started_us);
                let record = self.incident_record(rng, ctx, secondary, before_us);
                out.push(record);
            }
        }
        if rng.chance(0.75) {
            let executed: Vec<&StepFacts> = facts.iter().filter(|s| s.executed()).collect();
            let model_calls = executed.iter().filter(|s| is_llm(s.skill)).count();
            let tool_calls = executed.iter().filter(|s| is_tool(s.skill)).count();
            let cpu_ms = rng.range(200, 20_000);
            let peak_memory_mb = rng.range(180, 2_400);
            let record = self.system_record(
                rng,
                false,
                ("agent-runtime", "RESOURCE_USAGE"),
                Severity::Info,
                format!("resources used by run {}", ctx.run_id),
                json!({
                    "worker": worker,
                    "cpu_ms": cpu_ms,
                    "peak_memory_mb": peak_memory_mb,
                    "model_calls": model_calls,
                    "tool_calls": tool_calls,
                }),
                None,
                Some(&ctx.run_id),
                Origin::System,
                ctx.completed_us,
            );
            out.push(record);
        }
        if rng.chance(0.02) {
            let occurred_us = ctx.slot_start_us + rng.range(0, ctx.slot_len_us);
            let record = self.tenant_config_record(rng, occurred_us);
            out.push(record);
        }
        if self.with_globals {
            out.extend(self.global_records(rng, ctx, failing));
        }
        out
    }

    /// An infrastructure event correlated to a failing run.
    pub(super) fn incident_record(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        event_type: &str,
        occurred_us: i64,
    ) -> system_records::Model {
        let provider = ctx.model.provider;
        match event_type {
            "PROVIDER_ERROR_RATE" => {
                let rate = rng.range(12, 65);
                let severity = rng.weighted(&[
                    (Severity::Error, 60),
                    (Severity::Critical, 25),
                    (Severity::Warning, 15),
                ]);
                self.system_record(
                    rng,
                    false,
                    ("model-gateway", "PROVIDER_ERROR_RATE"),
                    severity,
                    format!("{provider} error rate {rate}% over the last 60 s"),
                    json!({"provider": provider, "error_rate_percent": rate, "window_seconds": 60}),
                    Some(format!("provider:{provider}")),
                    Some(&ctx.run_id),
                    Origin::System,
                    occurred_us,
                )
            }
            "WORKER_RESTART" => {
                let worker = format!("worker-{}", rng.range(1, 24));
                let cause = if occurred_us >= DEPLOY_US && rng.chance(0.5) {
                    "deploy:v2.14.3".to_string()
                } else {
                    rng.pick(&["autoscaler", "oom-killer"]).to_string()
                };
                let exit_code = if cause == "oom-killer" { 137 } else { 143 };
                let severity = rng.weighted(&[(Severity::Warning, 50), (Severity::Error, 50)]);
                self.system_record(
                    rng,
                    false,
                    ("worker-pool", "WORKER_RESTART"),
                    severity,
                    format!("{worker} restarted (exit code {exit_code})"),
                    json!({"worker": worker, "exit_code": exit_code}),
                    Some(cause),
                    Some(&ctx.run_id),
                    Origin::System,
                    occurred_us,
                )
            }
            _ => {
                let p95 = rng.range(55, 140) as f64 / 10.0;
                let severity = rng.weighted(&[(Severity::Warning, 60), (Severity::Error, 40)]);
                let cause = if rng.chance(0.7) {
                    format!("provider:{provider}")
                } else {
                    "autoscaler".to_string()
                };
                self.system_record(
                    rng,
                    false,
                    ("model-gateway", "HEALTH_DEGRADED"),
                    severity,
                    format!("gateway p95 latency {p95:.1} s is above the 5 s objective"),
                    json!({"p95_latency_seconds": p95, "objective_seconds": 5}),
                    Some(cause),
                    Some(&ctx.run_id),
                    Origin::System,
                    occurred_us,
                )
            }
        }
    }

    /// A tenant-level change that is not about any run.
    pub(super) fn tenant_config_record(
        &self,
        rng: &mut Prng,
        occurred_us: i64,
    ) -> system_records::Model {
        if rng.chance(0.5) {
            let (summary, setting, before, after) = *rng.pick(&[
                (
                    "SSO session lifetime reduced from 12 h to 8 h",
                    "sso.session_hours",
                    12,
                    8,
                ),
                (
                    "API key expiry set to 90 days",
                    "api_keys.expiry_days",
                    365,
                    90,
                ),
                (
                    "MFA enforced for the admin role",
                    "mfa.admin_required",
                    0,
                    1,
                ),
            ]);
            let severity = rng.weighted(&[(Severity::Info, 70), (Severity::Warning, 30)]);
            self.system_record(
                rng,
                false,
                ("auth", "AUTH_CONFIG_CHANGED"),
                severity,
                summary.to_string(),
                json!({"setting": setting, "before": before, "after": after}),
                Some(format!("admin:{}", self.admin())),
                None,
                Origin::Human,
                occurred_us,
            )
        } else {
            let before = rng.range(10, 40);
            let after = before + rng.range(5, 20);
            let cause = rng.pick(&["billing-sync", "autoscaler"]).to_string();
            self.system_record(
                rng,
                false,
                ("quota-manager", "QUOTA_ADJUSTED"),
                Severity::Info,
                format!("daily token quota raised from {before}M to {after}M"),
                json!({
                    "quota": "tokens_per_day",
                    "before": before * 1_000_000,
                    "after": after * 1_000_000,
                }),
                Some(cause),
                None,
                Origin::System,
                occurred_us,
            )
        }
    }

    /// Global records (no tenant) around this run: about one per 20 runs, a fifth of failing
    /// runs get one just before their failing step, and the deploy's migration lands in the
    /// slot that contains it.
    pub(super) fn global_records(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        failing: Option<&StepFacts>,
    ) -> Vec<system_records::Model> {
        let mut out = Vec::new();
        if (ctx.slot_start_us..ctx.slot_start_us + ctx.slot_len_us).contains(&DEPLOY_US) {
            let record = self.global_record(rng, "MIGRATION_APPLIED", DEPLOY_US, ctx);
            out.push(record);
        }
        let failed = matches!(ctx.status, RunStatus::Failed | RunStatus::TimedOut);
        match failing.filter(|_| failed) {
            Some(fail) if rng.chance(0.2) => {
                let occurred_us = fail.start_us - rng.range(500 * MILLI, 8 * SECOND);
                let kind = *rng.pick(&["WORKER_RESTART", "HEALTH_TRANSITION"]);
                let record = self.global_record(rng, kind, occurred_us, ctx);
                out.push(record);
            }
            _ => {
                if rng.chance(0.03) {
                    let occurred_us = if rng.chance(0.5) {
                        ctx.started_us + rng.range(-25 * SECOND, 25 * SECOND)
                    } else {
                        ctx.slot_start_us + rng.range(0, ctx.slot_len_us)
                    };
                    let kind = rng.weighted(&[
                        ("MIGRATION_APPLIED", 15),
                        ("WORKER_RESTART", 35),
                        ("HEALTH_TRANSITION", 35),
                        ("CERT_ROTATED", 15),
                    ]);
                    let record = self.global_record(rng, kind, occurred_us, ctx);
                    out.push(record);
                }
            }
        }
        out
    }

    pub(super) fn global_record(
        &self,
        rng: &mut Prng,
        event_type: &str,
        occurred_us: i64,
        ctx: &RunContext,
    ) -> system_records::Model {
        let version = runtime_version(occurred_us);
        match event_type {
            "MIGRATION_APPLIED" => {
                let migration = format!("{:04}_gateway_routes", 130 + rng.range(0, 20));
                let duration_ms = rng.range(200, 9_000);
                self.system_record(
                    rng,
                    true,
                    ("control-plane", "MIGRATION_APPLIED"),
                    Severity::Info,
                    format!("schema migration {migration} applied"),
                    json!({"migration": migration, "duration_ms": duration_ms}),
                    Some(format!("deploy:v{version}")),
                    None,
                    Origin::Migration,
                    occurred_us,
                )
            }
            "WORKER_RESTART" => {
                let worker = format!("worker-{}", rng.range(1, 24));
                let cause = rng
                    .weighted(&[
                        (format!("deploy:v{version}").as_str(), 40),
                        ("autoscaler", 40),
                        ("oom-killer", 20),
                    ])
                    .to_string();
                let exit_code = if cause == "oom-killer" { 137 } else { 143 };
                self.system_record(
                    rng,
                    true,
                    ("worker-pool", "WORKER_RESTART"),
                    Severity::Warning,
                    format!("{worker} restarted (exit code {exit_code})"),
                    json!({"worker": worker, "exit_code": exit_code}),
                    Some(cause),
                    None,
                    Origin::System,
                    occurred_us,
                )
            }
            "HEALTH_TRANSITION" => {
                let provider = ctx.model.provider;
                let (from, to, severity) = *rng.pick(&[
                    ("healthy", "degraded", Severity::Warning),
                    ("degraded", "unhealthy", Severity::Error),
                    ("degraded", "healthy", Severity::Info),
                ]);
                self.system_record(
                    rng,
                    true,
                    ("model-gateway", "HEALTH_TRANSITION"),
                    severity,
                    format!("{provider} upstream {from} → {to}"),
                    json!({"provider": provider, "from": from, "to": to}),
                    Some(format!("provider:{provider}")),
                    None,
                    Origin::System,
                    occurred_us,
                )
            }
            _ => {
                let serial = rng.hex(16);
                self.system_record(
                    rng,
                    true,
                    ("edge-proxy", "CERT_ROTATED"),
                    Severity::Info,
                    "TLS certificate of the public API rotated".to_string(),
                    json!({"serial": serial, "valid_days": 90}),
                    Some("cert-manager".to_string()),
                    None,
                    Origin::System,
                    occurred_us,
                )
            }
        }
    }
}
