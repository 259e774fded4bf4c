//! One tenant's world: its people and keys, and each run with everything that belongs to it
//! (steps, governance, system records, telemetry, ledger entries, the exports an auditor will
//! ask for), batched for ingest.

use super::*;

/// Everything generated for one run.
#[derive(Debug)]
pub(super) struct GeneratedRun {
    pub(super) run: llm_runs::Model,
    pub(super) steps: Vec<trace_steps::Model>,
    pub(super) governance: Vec<governance_events::Model>,
    pub(super) system_records: Vec<system_records::Model>,
    pub(super) telemetry: Vec<telemetry_samples::Model>,
    /// The export of this run an auditor asks for once the evidence is stored, if any.
    pub(super) export: Option<ExportPlan>,
    pub(super) ledger: Vec<NewEntry>,
}

/// What the per-record generators need to know about the run.
pub(super) struct RunContext {
    pub(super) index: u32,
    pub(super) run_id: String,
    pub(super) trace_id: String,
    pub(super) status: RunStatus,
    pub(super) model: ModelProfile,
    pub(super) started_us: i64,
    pub(super) completed_us: i64,
    pub(super) slot_start_us: i64,
    pub(super) slot_len_us: i64,
    pub(super) cost_cents: i64,
}

/// The tenant's API keys as its ledger knows them (seeded history, not usable keys).
#[derive(Clone, Debug)]
pub(super) struct TenantKeys {
    pub(super) admin: String,
    pub(super) viewer: String,
    pub(super) auditor: String,
    pub(super) ingest: String,
    pub(super) viewer_rotated: String,
}

impl TenantKeys {
    pub(super) fn of(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.admin,
            Role::Viewer => &self.viewer_rotated,
            Role::Auditor => &self.auditor,
            Role::Ingest => &self.ingest,
        }
    }
}

pub(super) struct TenantGenerator {
    pub(super) tenant_id: String,
    pub(super) stream: u64,
    pub(super) runs: u32,
    pub(super) steps_per_run: usize,
    /// Probability that a run carries telemetry.
    pub(super) telemetry_share: f64,
    pub(super) with_globals: bool,
    pub(super) region: &'static str,
    /// `people[0]` administers the tenant, `people[1..3]` are its auditors.
    pub(super) people: Vec<String>,
    pub(super) keys: TenantKeys,
}

impl TenantGenerator {
    pub(super) fn new(tenant_id: &str, opts: &SeedOptions, with_globals: bool) -> Self {
        let stream = mix(opts.seed ^ mix(fnv1a(tenant_id)));
        let mut rng = Prng::derive(stream, &[STREAM_TENANT]);
        let region = *rng.pick(&REGIONS);
        let domain = format!("{tenant_id}.example");
        let mut people: Vec<String> = PEOPLE.iter().map(|p| format!("{p}@{domain}")).collect();
        for i in (1..people.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            people.swap(i, j);
        }
        let keys = TenantKeys {
            admin: rng.hex(12),
            viewer: rng.hex(12),
            auditor: rng.hex(12),
            ingest: rng.hex(12),
            viewer_rotated: rng.hex(12),
        };
        TenantGenerator {
            tenant_id: tenant_id.to_string(),
            stream,
            runs: opts.runs,
            steps_per_run: opts.steps_per_run as usize,
            telemetry_share: f64::from(opts.telemetry_percent) / 100.0,
            with_globals,
            region,
            people,
            keys,
        }
    }

    pub(super) fn admin(&self) -> &str {
        &self.people[0]
    }

    /// The evidence of runs `range` (and, for the first batch, the tenant's key setup), and
    /// the exports of those runs to request once it is stored.
    pub(super) fn batch(&self, range: Range<u32>) -> (EvidenceBatch, Vec<ExportPlan>) {
        let mut batch = EvidenceBatch::default();
        let mut exports = Vec::new();
        if range.start == 0 {
            batch.ledger_entries.extend(self.setup_entries());
        }
        for index in range {
            let g = self.generate_run(index);
            batch.runs.push(g.run);
            batch.steps.extend(g.steps);
            batch.governance.extend(g.governance);
            batch.system_records.extend(g.system_records);
            batch.telemetry.extend(g.telemetry);
            exports.extend(g.export);
            batch.ledger_entries.extend(g.ledger);
        }
        // Ledger order is seq order; appending in time order keeps it readable.
        batch.ledger_entries.sort_by_key(|e| e.occurred_at);
        (batch, exports)
    }

    /// Start and length of run `index`'s time slot: runs are spread evenly over the week.
    pub(super) fn slot(&self, index: u32) -> (i64, i64) {
        let runs = i128::from(self.runs.max(1));
        let start = RUNS_FROM_US + (i128::from(index) * i128::from(RUNS_SPAN_US) / runs) as i64;
        let len = (i128::from(RUNS_SPAN_US) / runs).max(1) as i64;
        (start, len)
    }

    pub(super) fn generate_run(&self, index: u32) -> GeneratedRun {
        let mut rng = Prng::derive(self.stream, &[STREAM_RUN, u64::from(index)]);
        let (slot_start_us, slot_len_us) = self.slot(index);
        let status = rng.weighted(&RUN_STATUS_MIX);
        let model = rng.weighted(&MODELS);
        let run_id = format!("run_{}", rng.hex(16));
        let trace_id = format!("trace_{}", rng.hex(32));
        let started_us = slot_start_us + rng.range(0, slot_len_us * 3 / 4);
        let source = rng.weighted(&[("sdk", 55), ("api", 30), ("otel", 15)]);
        let is_synthetic = rng.chance(0.05);
        let by_human = rng.chance(0.20);
        let origin = if is_synthetic {
            Origin::Replay
        } else if by_human {
            Origin::Human
        } else {
            Origin::Agent
        };
        let human_actor_id = by_human.then(|| self.people[3 + rng.below(3) as usize].clone());
        let agent_id = (!by_human).then(|| rng.pick(&AGENTS).to_string());

        let drafts = draft_steps(&mut rng, status, self.steps_per_run, &model);
        let mut facts = Vec::with_capacity(drafts.len());
        let mut steps = Vec::with_capacity(drafts.len());
        let mut cursor = started_us + rng.range(1, 40) * MILLI;
        for (index, d) in drafts.iter().enumerate() {
            let start_us = cursor;
            let end_us = start_us + d.duration_ms * MILLI;
            cursor = if d.status == StepStatus::Skipped {
                // Skipped steps are marked one after another when the run stops.
                cursor + MILLI
            } else {
                end_us + rng.range(1, 40) * MILLI
            };
            steps.push(trace_steps::Model {
                anchor_id: None,
                tenant_id: self.tenant_id.clone(),
                trace_id: trace_id.clone(),
                step_index: index as i32,
                occurred_at: ts(start_us),
                skill_name: d.skill.to_string(),
                status: d.status.as_str().to_string(),
                outcome_category: d.outcome.to_string(),
                cost_cents: d.cost_cents,
                duration_ms: d.duration_ms,
                span_id: None,
                recorded_at: ts(end_us + rng.range(50 * MILLI, 2 * SECOND)),
                record_hash: String::new(),
                provider: None,
                request_model: None,
                response_model: None,
                input_tokens: None,
                output_tokens: None,
                cache_read_tokens: None,
                cache_creation_tokens: None,
                session_id: None,
                attributes: None,
                content: None,
                content_sha256: None,
            });
            facts.push(StepFacts {
                index,
                skill: d.skill,
                status: d.status,
                outcome: d.outcome,
                start_us,
                end_us,
            });
        }
        let completed_us = cursor;
        let cost_cents: i64 = drafts.iter().map(|d| d.cost_cents).sum();
        let run = llm_runs::Model {
            anchor_id: None,
            tenant_id: self.tenant_id.clone(),
            run_id: run_id.clone(),
            trace_id: Some(trace_id.clone()),
            provider: model.provider.to_string(),
            model: model.model.to_string(),
            input_tokens: drafts.iter().map(|d| d.input_tokens).sum(),
            output_tokens: drafts.iter().map(|d| d.output_tokens).sum(),
            cost_cents,
            execution_status: status.as_str().to_string(),
            started_at: ts(started_us),
            completed_at: Some(ts(completed_us)),
            source: source.to_string(),
            is_synthetic,
            human_actor_id,
            agent_id,
            system_id: Some("agent-runtime".to_string()),
            origin: origin.as_str().to_string(),
            recorded_at: ts(completed_us + rng.range(50 * MILLI, 2 * SECOND)),
            record_hash: String::new(),
            session_id: None,
            cache_read_tokens: None,
            cache_creation_tokens: None,
            attributes: None,
            content: None,
            content_sha256: None,
        };
        let ctx = RunContext {
            index,
            run_id,
            trace_id,
            status,
            model,
            started_us,
            completed_us,
            slot_start_us,
            slot_len_us,
            cost_cents,
        };

        let mut governance = self.governance_events(&mut rng, &ctx, &facts);
        governance.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        let system_records = self.system_records(&mut rng, &ctx, &facts);
        let telemetry = if rng.chance(self.telemetry_share) {
            self.telemetry(&mut rng, &ctx, &facts)
        } else {
            Vec::new()
        };

        let export = (index == 0 || rng.chance(EXPORTED_RUN_SHARE))
            .then(|| self.export_plan(&mut rng, &ctx));
        let mut ledger = Vec::new();
        self.run_ledger_entries(&mut rng, &ctx, &mut ledger);

        GeneratedRun {
            run,
            steps,
            governance,
            system_records,
            telemetry,
            export,
            ledger,
        }
    }
}
