//! Deterministic, realistic demo and benchmark data: tenants with LLM runs, their step traces,
//! policy events, system records (tenant and global), telemetry, exports and audit ledger
//! entries of every producer category.
//!
//! Every value is drawn from a small in-file PRNG (splitmix64) seeded from
//! [`SeedOptions::seed`], the tenant id and the run index, so the same options give the same
//! tenants, ids, timestamps and values, and a run's data does not depend on how runs are
//! batched. Times lie in the seven days before 2026-11-01T00:00:00Z (a fixed anchor, so output
//! does not depend on when the seeder runs). Data goes through [`crate::ingest::store`] in
//! batches of [`RUNS_PER_BATCH`] runs, so memory stays bounded whatever the run count; the
//! global system records of a batch go in a batch of their own, anchored in the platform ledger.
//! Ledger entry ids, hashes and `recorded_at` are assigned by the appender and are not
//! reproducible.

use std::ops::Range;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::auth;
use crate::canonical::{canonical_json, run_bundle_json, sha256_hex};
use crate::db::Db;
use crate::domain::{
    AccessDecision, ActorType, ExportFormat, ExportStatus, LedgerCategory, Origin, PolicyDecision,
    Role, RunStatus, Severity, StepStatus,
};
use crate::error::{AppError, AppResult, Context};
use crate::ingest::{self, EvidenceBatch};
use crate::ledger::{self, NewEntry};
use entity::{
    governance_events, llm_runs, log_exports, system_records, telemetry_samples, tenants,
    trace_steps,
};

/// Runs (with everything that belongs to them) written per [`ingest::store`] call.
pub const RUNS_PER_BATCH: u32 = 500;

const MILLI: i64 = 1_000;
const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// 2026-11-01T00:00:00Z in microseconds since the epoch: the end of the seeded week.
const ANCHOR_US: i64 = 1_793_491_200 * SECOND;
const PERIOD_START_US: i64 = ANCHOR_US - 7 * DAY;
/// Runs start in `[RUNS_FROM_US, RUNS_FROM_US + RUNS_SPAN_US)`: the first hour of the week holds
/// the tenant's key setup, and the last two hours leave the longest runs room to complete (and
/// be looked at) before the anchor.
const RUNS_FROM_US: i64 = PERIOD_START_US + HOUR;
const RUNS_SPAN_US: i64 = 7 * DAY - 3 * HOUR;
/// When runtime v2.14.3 was deployed: runtime versions and restart causes change here.
const DEPLOY_US: i64 = PERIOD_START_US + 3 * DAY + 12 * HOUR;

const MAX_TENANTS: u32 = 10_000;
const MAX_RUNS: u32 = 10_000_000;
const MAX_STEPS_PER_RUN: u32 = 200;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// Number of tenants ([`seed`] only).
    pub tenants: u32,
    /// Runs per tenant.
    pub runs: u32,
    /// Trace steps per run.
    pub steps_per_run: u32,
    /// Share of runs, in percent, that carry telemetry samples (a sample set every 0.5-1 s of
    /// the run, three metrics each: by far the most rows per run).
    pub telemetry_percent: u32,
    /// PRNG seed: the same seed gives the same data.
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            tenants: 3,
            runs: 200,
            steps_per_run: 8,
            telemetry_percent: 50,
            seed: 42,
        }
    }
}

impl SeedOptions {
    fn validate(&self, with_tenant_count: bool) -> AppResult<()> {
        if with_tenant_count && !(1..=MAX_TENANTS).contains(&self.tenants) {
            return Err(AppError::bad_input(format!(
                "tenants must be between 1 and {MAX_TENANTS}, got {}",
                self.tenants
            )));
        }
        if self.runs > MAX_RUNS {
            return Err(AppError::bad_input(format!(
                "runs must be at most {MAX_RUNS} per tenant, got {}",
                self.runs
            )));
        }
        if !(1..=MAX_STEPS_PER_RUN).contains(&self.steps_per_run) {
            return Err(AppError::bad_input(format!(
                "steps per run must be between 1 and {MAX_STEPS_PER_RUN}, got {}",
                self.steps_per_run
            )));
        }
        if self.telemetry_percent > 100 {
            return Err(AppError::bad_input(format!(
                "telemetry percent must be between 0 and 100, got {}",
                self.telemetry_percent
            )));
        }
        Ok(())
    }
}

/// Seeds tenants and returns their ids in order.
///
/// Fails with [`AppError::Conflict`] before writing anything when one of the tenants the seed
/// names already exists.
pub async fn seed(db: &Db, opts: &SeedOptions) -> AppResult<Vec<String>> {
    opts.validate(true)?;
    let specs = tenant_specs(opts.seed, opts.tenants);
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    let existing = tenants::Entity::find()
        .filter(tenants::Column::Id.is_in(ids.clone()))
        .one(&db.conn)
        .await
        .context("look for existing tenants before seeding")?;
    if let Some(t) = existing {
        return Err(already_exists(&t.id, "use another --seed"));
    }
    for (i, spec) in specs.iter().enumerate() {
        // Global records are created once per call, alongside the first tenant's runs.
        let with_globals = i == 0;
        seed_one(
            db,
            &spec.id,
            &spec.name,
            spec.frameworks,
            opts,
            with_globals,
            "use another --seed",
        )
        .await?;
    }
    Ok(ids)
}

/// Seeds exactly one tenant with the given id/name (used by `serve --demo`), global system
/// records included.
pub async fn seed_tenant(
    db: &Db,
    tenant_id: &str,
    name: &str,
    opts: &SeedOptions,
) -> AppResult<()> {
    opts.validate(false)?;
    let mut rng = Prng::derive(opts.seed, &[STREAM_TENANT, fnv1a(tenant_id)]);
    let frameworks = *rng.pick(&[FRAMEWORKS_GENERAL, FRAMEWORKS_HEALTH, FRAMEWORKS_AI]);
    seed_one(
        db,
        tenant_id,
        name,
        frameworks,
        opts,
        true,
        "use another tenant id",
    )
    .await
}

/// What a database holds, as far as demo seeding is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    /// No tenant at all.
    Empty,
    /// The tenant asked about exists.
    HasTenant,
    /// Other tenants exist, not this one.
    OtherTenantsOnly,
}

/// Whether the database is empty, holds `tenant_id`, or only other tenants.
pub async fn database_state(db: &Db, tenant_id: &str) -> AppResult<DatabaseState> {
    let own = tenants::Entity::find_by_id(tenant_id.to_string())
        .one(&db.conn)
        .await
        .with_context(|| format!("look up tenant {tenant_id}"))?;
    if own.is_some() {
        return Ok(DatabaseState::HasTenant);
    }
    let any = tenants::Entity::find()
        .one(&db.conn)
        .await
        .context("look for any tenant")?;
    Ok(if any.is_some() {
        DatabaseState::OtherTenantsOnly
    } else {
        DatabaseState::Empty
    })
}

fn already_exists(tenant_id: &str, hint: &str) -> AppError {
    AppError::Conflict(format!(
        "tenant `{tenant_id}` already exists; seed a fresh database or {hint}"
    ))
}

async fn seed_one(
    db: &Db,
    tenant_id: &str,
    name: &str,
    frameworks: &[&str],
    opts: &SeedOptions,
    with_globals: bool,
    hint: &str,
) -> AppResult<()> {
    if !auth::ensure_tenant(db, tenant_id, name, frameworks).await? {
        return Err(already_exists(tenant_id, hint));
    }
    let generator = TenantGenerator::new(tenant_id, opts, with_globals);
    let batches = opts.runs.div_ceil(RUNS_PER_BATCH).max(1);
    for b in 0..batches {
        let from = b * RUNS_PER_BATCH;
        let to = from.saturating_add(RUNS_PER_BATCH).min(opts.runs);
        let mut batch = generator.batch(from..to);
        let runs = batch.runs.len();
        // Global records belong to no tenant: the platform ledger anchors them.
        let (global, own) = std::mem::take(&mut batch.system_records)
            .into_iter()
            .partition::<Vec<_>, _>(|s| s.tenant_id.is_none());
        batch.system_records = own;
        let stored = ingest::store(db, tenant_id, batch).await?;
        if !global.is_empty() {
            let platform = EvidenceBatch {
                system_records: global,
                ..EvidenceBatch::default()
            };
            let anchored = ingest::store(db, ledger::PLATFORM_LEDGER, platform).await?;
            tracing::info!(
                batch = b + 1,
                records = anchored.records,
                merkle_root = anchored.merkle_root.as_deref().unwrap_or("-"),
                "seeded global system records"
            );
        }
        tracing::info!(
            tenant = %tenant_id,
            batch = b + 1,
            batches,
            runs,
            records = stored.records,
            ledger_entries = stored.ledger.len(),
            merkle_root = stored.merkle_root.as_deref().unwrap_or("-"),
            "seeded evidence batch"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PRNG

/// Stream labels, so that tenant names, tenant profiles and runs draw from independent streams.
const STREAM_TENANT_NAMES: u64 = 1;
const STREAM_TENANT: u64 = 2;
const STREAM_RUN: u64 = 3;

/// splitmix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough for plausible data.
#[derive(Clone, Debug)]
struct Prng {
    state: u64,
}

/// The splitmix64 output function, also used to mix seeds with stream labels.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string: turns a tenant id into stream material.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

impl Prng {
    fn new(seed: u64) -> Self {
        Prng { state: seed }
    }

    /// An independent stream for `seed` and a path of labels.
    fn derive(seed: u64, path: &[u64]) -> Self {
        let state = path.iter().fold(mix(seed), |s, part| {
            mix(s ^ mix(part.wrapping_add(0x9E37_79B9_7F4A_7C15)))
        });
        Prng::new(state)
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `0..n` (0 when n is 0), by multiply-high (no modulo bias to speak of).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// `chars` lower-case hex digits.
    fn hex(&mut self, chars: usize) -> String {
        let mut out = String::with_capacity(chars + 16);
        while out.len() < chars {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(chars);
        out
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut ticket = self.below(total);
        for (item, weight) in items {
            if ticket < u64::from(*weight) {
                return *item;
            }
            ticket -= u64::from(*weight);
        }
        items[items.len() - 1].0
    }
}

fn ts(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Rounds to one decimal, so telemetry values read like instrument output.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

// ---------------------------------------------------------------------------------------------
// Tenants

const COMPANIES: [&str; 16] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "hooli",
    "soylent",
    "wonka",
    "aperture",
    "vandelay",
    "oscorp",
    "massive-dynamic",
    "pied-piper",
];
const DIVISIONS: [&str; 8] = [
    "robotics",
    "ai",
    "labs",
    "health",
    "agents",
    "analytics",
    "cloud",
    "finance",
];
const FRAMEWORKS_GENERAL: &[&str] = &["SOC2", "ISO27001"];
const FRAMEWORKS_HEALTH: &[&str] = &["HIPAA", "SOC2"];
const FRAMEWORKS_AI: &[&str] = &["EU_AI_ACT", "GDPR"];

#[derive(Clone, Debug, PartialEq, Eq)]
struct TenantSpec {
    id: String,
    name: String,
    frameworks: &'static [&'static str],
}

/// Tenant ids are a seed-chosen order of company × division slugs ("acme-robotics",
/// "globex-ai", …), suffixed `-2`, `-3`… once all combinations are used.
fn tenant_specs(seed: u64, count: u32) -> Vec<TenantSpec> {
    let combos = COMPANIES.len() * DIVISIONS.len();
    let mut order: Vec<usize> = (0..combos).collect();
    let mut rng = Prng::derive(seed, &[STREAM_TENANT_NAMES]);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    (0..count as usize)
        .map(|i| {
            let combo = order[i % combos];
            let round = i / combos;
            let company = COMPANIES[combo / DIVISIONS.len()];
            let division = DIVISIONS[combo % DIVISIONS.len()];
            let slug = format!("{company}-{division}");
            let name = format!("{} {}", title(company), title(division));
            let (id, name) = if round == 0 {
                (slug, name)
            } else {
                (
                    format!("{slug}-{}", round + 1),
                    format!("{name} {}", round + 1),
                )
            };
            let frameworks = match division {
                "health" => FRAMEWORKS_HEALTH,
                "ai" | "agents" => FRAMEWORKS_AI,
                _ => FRAMEWORKS_GENERAL,
            };
            TenantSpec {
                id,
                name,
                frameworks,
            }
        })
        .collect()
}

/// "massive-dynamic" → "Massive Dynamic", "ai" → "AI".
fn title(slug: &str) -> String {
    slug.split('-')
        .map(|word| {
            if word == "ai" {
                return "AI".to_string();
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Vocabulary of the generated world

#[derive(Clone, Copy, Debug)]
struct ModelProfile {
    provider: &'static str,
    model: &'static str,
    /// List prices in cents per million tokens.
    input_cents_per_mtok: f64,
    output_cents_per_mtok: f64,
    tokens_per_second: f64,
    /// Reasoning models think before the first token.
    reasoning: bool,
}

impl ModelProfile {
    fn cost_cents(&self, input: i64, output: i64) -> i64 {
        ((input as f64 * self.input_cents_per_mtok + output as f64 * self.output_cents_per_mtok)
            / 1e6)
            .round() as i64
    }
}

const fn profile(
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

const MODELS: [(ModelProfile, u32); 7] = [
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

const RUN_STATUS_MIX: [(RunStatus, u32); 5] = [
    (RunStatus::Succeeded, 80),
    (RunStatus::Failed, 7),
    (RunStatus::Blocked, 6),
    (RunStatus::TimedOut, 4),
    (RunStatus::Aborted, 3),
];

const AGENTS: [&str; 5] = [
    "support-triage",
    "research-assistant",
    "code-review",
    "billing-copilot",
    "ops-runbook",
];
const PEOPLE: [&str; 6] = [
    "alice.nguyen",
    "bob.schmidt",
    "carla.diaz",
    "dev.patel",
    "emma.okafor",
    "farid.haddad",
];
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1"];

const LLM_SKILLS: [&str; 4] = ["plan", "call_llm", "summarize", "respond"];
const TOOLS: [&str; 2] = ["tool:web_search", "tool:sql_query"];

fn is_llm(skill: &str) -> bool {
    LLM_SKILLS.contains(&skill)
}

fn is_tool(skill: &str) -> bool {
    skill.starts_with("tool:")
}

fn runtime_version(at_us: i64) -> &'static str {
    if at_us < DEPLOY_US {
        "2.14.2"
    } else {
        "2.14.3"
    }
}

// ---------------------------------------------------------------------------------------------
// Steps

/// A step before it is placed on the timeline.
#[derive(Clone, Debug)]
struct StepDraft {
    skill: &'static str,
    status: StepStatus,
    outcome: &'static str,
    duration_ms: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_cents: i64,
}

/// The agent loop: plan, input guardrail, work (retrieval, LLM calls, tools), summarize,
/// respond; shorter traces keep the ends.
fn skill_sequence(rng: &mut Prng, n: usize) -> Vec<&'static str> {
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

fn llm_token_ranges(skill: &str) -> (i64, i64, i64, i64) {
    match skill {
        "plan" => (800, 3_000, 100, 400),
        "summarize" => (3_000, 16_000, 200, 800),
        "respond" => (1_500, 6_000, 100, 700),
        _ => (2_000, 24_000, 150, 1_500),
    }
}

fn executed_step(
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
fn failing_step(rng: &mut Prng, status: RunStatus, skill: &'static str) -> StepDraft {
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

fn skipped_step(skill: &'static str) -> StepDraft {
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
fn draft_steps(
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
struct StepFacts {
    index: usize,
    skill: &'static str,
    status: StepStatus,
    outcome: &'static str,
    start_us: i64,
    end_us: i64,
}

impl StepFacts {
    fn executed(&self) -> bool {
        self.status != StepStatus::Skipped
    }
}

// ---------------------------------------------------------------------------------------------
// One tenant's world

/// Everything generated for one run.
#[derive(Debug)]
struct GeneratedRun {
    run: llm_runs::Model,
    steps: Vec<trace_steps::Model>,
    governance: Vec<governance_events::Model>,
    system_records: Vec<system_records::Model>,
    telemetry: Vec<telemetry_samples::Model>,
    exports: Vec<log_exports::Model>,
    ledger: Vec<NewEntry>,
}

/// What the per-record generators need to know about the run.
struct RunContext {
    index: u32,
    run_id: String,
    trace_id: String,
    status: RunStatus,
    model: ModelProfile,
    started_us: i64,
    completed_us: i64,
    slot_start_us: i64,
    slot_len_us: i64,
    cost_cents: i64,
}

/// The tenant's API keys as its ledger knows them (seeded history, not usable keys).
#[derive(Clone, Debug)]
struct TenantKeys {
    admin: String,
    viewer: String,
    auditor: String,
    ingest: String,
    viewer_rotated: String,
}

impl TenantKeys {
    fn of(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.admin,
            Role::Viewer => &self.viewer_rotated,
            Role::Auditor => &self.auditor,
            Role::Ingest => &self.ingest,
        }
    }
}

struct TenantGenerator {
    tenant_id: String,
    stream: u64,
    runs: u32,
    steps_per_run: usize,
    /// Probability that a run carries telemetry.
    telemetry_share: f64,
    with_globals: bool,
    region: &'static str,
    /// `people[0]` administers the tenant, `people[1..3]` are its auditors.
    people: Vec<String>,
    keys: TenantKeys,
}

impl TenantGenerator {
    fn new(tenant_id: &str, opts: &SeedOptions, with_globals: bool) -> Self {
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

    fn admin(&self) -> &str {
        &self.people[0]
    }

    fn auditor(&self, rng: &mut Prng) -> String {
        self.people[1 + rng.below(2) as usize].clone()
    }

    fn anyone(&self, rng: &mut Prng) -> String {
        rng.pick(&self.people).clone()
    }

    /// The evidence of runs `range` (and, for the first batch, the tenant's key setup).
    fn batch(&self, range: Range<u32>) -> EvidenceBatch {
        let mut batch = EvidenceBatch::default();
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
            batch.exports.extend(g.exports);
            batch.ledger_entries.extend(g.ledger);
        }
        // Ledger order is seq order; appending in time order keeps it readable.
        batch.ledger_entries.sort_by_key(|e| e.occurred_at);
        batch
    }

    /// Start and length of run `index`'s time slot: runs are spread evenly over the week.
    fn slot(&self, index: u32) -> (i64, i64) {
        let runs = i128::from(self.runs.max(1));
        let start = RUNS_FROM_US + (i128::from(index) * i128::from(RUNS_SPAN_US) / runs) as i64;
        let len = (i128::from(RUNS_SPAN_US) / runs).max(1) as i64;
        (start, len)
    }

    fn generate_run(&self, index: u32) -> GeneratedRun {
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
        let mut run = llm_runs::Model {
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

        // Sealed here exactly as `ingest::store` will seal them, so the export checksums below
        // are those of the stored records.
        ingest::seal_run(&mut run);
        steps.iter_mut().for_each(ingest::seal_step);
        governance.iter_mut().for_each(ingest::seal_governance);

        let mut ledger = Vec::new();
        let exports = if index == 0 || rng.chance(0.05) {
            let export = self.export(&mut rng, &ctx, &run, &steps, &governance, &mut ledger);
            vec![export]
        } else {
            Vec::new()
        };
        self.run_ledger_entries(&mut rng, &ctx, &mut ledger);

        GeneratedRun {
            run,
            steps,
            governance,
            system_records,
            telemetry,
            exports,
            ledger,
        }
    }

    // -- governance ---------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn governance_event(
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
    fn governance_events(
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
    fn cost_event(&self, rng: &mut Prng, ctx: &RunContext) -> governance_events::Model {
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

    // -- system records -------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn system_record(
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

    fn system_records(
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
    fn incident_record(
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
    fn tenant_config_record(&self, rng: &mut Prng, occurred_us: i64) -> system_records::Model {
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
    fn global_records(
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

    fn global_record(
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

    // -- telemetry ------------------------------------------------------------------------------

    /// Latency, throughput and queue depth every 0.5–1 s from start to completion.
    fn telemetry(
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

    // -- exports and the ledger -----------------------------------------------------------------

    /// An export of the run's bundle (the first run always has a completed one), with its
    /// ledger trail.
    fn export(
        &self,
        rng: &mut Prng,
        ctx: &RunContext,
        run: &llm_runs::Model,
        steps: &[trace_steps::Model],
        governance: &[governance_events::Model],
        ledger: &mut Vec<NewEntry>,
    ) -> log_exports::Model {
        let status = if ctx.index == 0 {
            ExportStatus::Completed
        } else {
            rng.weighted(&[
                (ExportStatus::Completed, 80),
                (ExportStatus::Pending, 12),
                (ExportStatus::Failed, 8),
            ])
        };
        let id = format!("exp_{}", rng.hex(32));
        let requested_by = self.auditor(rng);
        let requested_us =
            (ctx.completed_us + rng.range(2 * MINUTE, 3 * HOUR)).min(ANCHOR_US - MINUTE);
        let scope = format!("run:{}", ctx.run_id);
        let format = ExportFormat::Json.as_str();
        let (delivered_us, checksum) = match status {
            ExportStatus::Completed => {
                let bundle = run_bundle_json(run, steps, governance);
                let checksum = sha256_hex(canonical_json(&bundle).as_bytes());
                (
                    Some(requested_us + rng.range(SECOND, 30 * SECOND)),
                    Some(checksum),
                )
            }
            _ => (None, None),
        };

        ledger.push(NewEntry {
            actor_id: Some(requested_by.clone()),
            correlation_id: Some(ctx.run_id.clone()),
            after_state: Some(json!({"scope": scope, "format": format, "status": "PENDING"})),
            ..entry(
                LedgerCategory::Export,
                "EXPORT_REQUESTED",
                ("log_export", &id),
                ActorType::Human,
                requested_us,
            )
        });
        match (status, delivered_us, &checksum) {
            (ExportStatus::Completed, Some(delivered_us), Some(checksum)) => {
                ledger.push(NewEntry {
                    actor_id: Some("runledger-export".to_string()),
                    correlation_id: Some(ctx.run_id.clone()),
                    after_state: Some(json!({"status": "COMPLETED", "checksum": checksum})),
                    ..entry(
                        LedgerCategory::Export,
                        "EXPORT_COMPLETED",
                        ("log_export", &id),
                        ActorType::System,
                        delivered_us,
                    )
                });
                ledger.push(NewEntry {
                    actor_id: Some(requested_by.clone()),
                    correlation_id: Some(id.clone()),
                    after_state: Some(json!({"operation": "llmRun.export", "format": format})),
                    ..entry(
                        LedgerCategory::Access,
                        "LOGS_EXPORTED",
                        ("llm_run", &ctx.run_id),
                        ActorType::Human,
                        delivered_us,
                    )
                });
            }
            (ExportStatus::Failed, _, _) => {
                ledger.push(NewEntry {
                    actor_id: Some("runledger-export".to_string()),
                    action_reason: Some("bundle upload to object storage timed out".to_string()),
                    correlation_id: Some(ctx.run_id.clone()),
                    after_state: Some(json!({"status": "FAILED"})),
                    ..entry(
                        LedgerCategory::Export,
                        "EXPORT_FAILED",
                        ("log_export", &id),
                        ActorType::System,
                        requested_us + rng.range(2 * SECOND, 60 * SECOND),
                    )
                });
            }
            _ => {}
        }

        log_exports::Model {
            tenant_id: self.tenant_id.clone(),
            id,
            run_id: Some(ctx.run_id.clone()),
            scope,
            format: format.to_string(),
            requested_by,
            status: status.as_str().to_string(),
            checksum,
            requested_at: ts(requested_us),
            delivered_at: delivered_us.map(ts),
        }
    }

    /// Producer audit events around a run: views of it, access decisions, failed logins, key
    /// rotations and policy changes, in proportion to the number of runs.
    fn run_ledger_entries(&self, rng: &mut Prng, ctx: &RunContext, ledger: &mut Vec<NewEntry>) {
        let latest_us = ANCHOR_US - SECOND;
        let in_slot = |rng: &mut Prng| ctx.slot_start_us + rng.range(0, ctx.slot_len_us);

        // Each view is an allowed access decision and the read it allowed: failed runs are
        // looked at more often.
        let views = if ctx.status == RunStatus::Succeeded {
            rng.range(1, 3)
        } else {
            rng.range(2, 5)
        };
        for _ in 0..views {
            let occurred_us = (ctx.completed_us + rng.range(MINUTE, 6 * HOUR)).min(latest_us);
            let operation = *rng.pick(&[
                "llmRun.envelope",
                "llmRun.trace",
                "llmRun.governance",
                "llmRun.replay",
                "systemRun.events",
            ]);
            let role = if rng.chance(0.7) {
                Role::Viewer
            } else {
                Role::Auditor
            };
            ledger.push(self.access_decision(
                role,
                "read:evidence",
                operation,
                AccessDecision::Allow,
                occurred_us,
            ));
            ledger.push(NewEntry {
                actor_id: Some(self.anyone(rng)),
                correlation_id: Some(ctx.trace_id.clone()),
                after_state: Some(json!({"operation": operation})),
                ..entry(
                    LedgerCategory::Access,
                    "LOGS_VIEWED",
                    ("llm_run", &ctx.run_id),
                    ActorType::Human,
                    occurred_us,
                )
            });
        }
        if rng.chance(0.05) {
            let (role, permission, operation, decision) = rng.weighted(&[
                (
                    (
                        Role::Viewer,
                        "read:evidence",
                        "llmRuns",
                        AccessDecision::Allow,
                    ),
                    30,
                ),
                (
                    (
                        Role::Viewer,
                        "read:evidence",
                        "systemRecords",
                        AccessDecision::Allow,
                    ),
                    15,
                ),
                (
                    (
                        Role::Auditor,
                        "read:audit",
                        "audit.integrity",
                        AccessDecision::Allow,
                    ),
                    15,
                ),
                (
                    (
                        Role::Auditor,
                        "read:audit",
                        "auditEntries",
                        AccessDecision::Allow,
                    ),
                    15,
                ),
                (
                    (
                        Role::Viewer,
                        "read:audit",
                        "audit.integrity",
                        AccessDecision::Deny,
                    ),
                    12,
                ),
                (
                    (
                        Role::Viewer,
                        "read:audit",
                        "auditEntries",
                        AccessDecision::Deny,
                    ),
                    8,
                ),
                (
                    (
                        Role::Ingest,
                        "read:evidence",
                        "llmRuns",
                        AccessDecision::Deny,
                    ),
                    5,
                ),
            ]);
            let occurred_us = in_slot(rng);
            ledger.push(self.access_decision(role, permission, operation, decision, occurred_us));
        }
        if rng.chance(0.03) {
            let occurred_us = in_slot(rng);
            let failure = self.failed_authentication(rng, occurred_us);
            ledger.push(failure);
        }
        if rng.chance(0.003) {
            let role = *rng.pick(&[Role::Viewer, Role::Auditor, Role::Ingest]);
            let new_key = rng.hex(12);
            let occurred_us = in_slot(rng);
            ledger.extend(self.key_rotation(role, self.keys.of(role), &new_key, occurred_us));
        }
        if rng.chance(0.008) {
            let occurred_us = in_slot(rng);
            let change = *rng.pick(&POLICY_CHANGES);
            ledger.push(self.policy_change(change, occurred_us));
        }
    }

    fn access_decision(
        &self,
        role: Role,
        permission: &str,
        operation: &str,
        decision: AccessDecision,
        occurred_us: i64,
    ) -> NewEntry {
        let verb = match decision {
            AccessDecision::Allow => "grants",
            AccessDecision::Deny => "lacks",
        };
        NewEntry {
            actor_id: Some(format!("key:{}", self.keys.of(role))),
            action_reason: Some(format!(
                "role {} {verb} {permission}",
                role.as_str().to_lowercase()
            )),
            decision: Some(decision),
            after_state: Some(json!({"role": role.as_str(), "permission": permission})),
            ..entry(
                LedgerCategory::Authorization,
                "ACCESS_DECISION",
                ("operation", operation),
                ActorType::Human,
                occurred_us,
            )
        }
    }

    fn failed_authentication(&self, rng: &mut Prng, occurred_us: i64) -> NewEntry {
        let (key, reason) = if rng.chance(0.4) {
            (self.keys.viewer.as_str(), "revoked API key presented")
        } else {
            let key = self
                .keys
                .of(*rng.pick(&[Role::Viewer, Role::Auditor, Role::Ingest]));
            (key, "secret does not match the key")
        };
        NewEntry {
            actor_id: Some(format!("ip:203.0.113.{}", rng.range(2, 254))),
            action_reason: Some(reason.to_string()),
            ..entry(
                LedgerCategory::Identity,
                "AUTHENTICATION_FAILED",
                ("api_key", key),
                ActorType::Human,
                occurred_us,
            )
        }
    }

    /// A rotation: the new key is created, the old one revoked a minute later.
    fn key_rotation(&self, role: Role, old: &str, new: &str, occurred_us: i64) -> Vec<NewEntry> {
        vec![
            NewEntry {
                actor_id: Some(self.admin().to_string()),
                action_reason: Some("scheduled 90-day rotation".to_string()),
                before_state: Some(json!({"key_id": old})),
                after_state: Some(json!({"key_id": new, "role": role.as_str()})),
                ..entry(
                    LedgerCategory::Identity,
                    "KEY_ROTATED",
                    ("api_key", new),
                    ActorType::Human,
                    occurred_us,
                )
            },
            NewEntry {
                actor_id: Some(self.admin().to_string()),
                action_reason: Some(format!("replaced by key {new}")),
                after_state: Some(json!({"revoked": true})),
                ..entry(
                    LedgerCategory::Identity,
                    "KEY_REVOKED",
                    ("api_key", old),
                    ActorType::Human,
                    occurred_us + MINUTE,
                )
            },
        ]
    }

    fn policy_change(&self, change: PolicyChange, occurred_us: i64) -> NewEntry {
        let (policy_id, rule_id, field, before, after, reason) = change;
        NewEntry {
            actor_id: Some(self.admin().to_string()),
            action_reason: Some(reason.to_string()),
            before_state: Some(json!({"rule_id": rule_id, field: before})),
            after_state: Some(json!({"rule_id": rule_id, field: after})),
            ..entry(
                LedgerCategory::Governance,
                "POLICY_RULE_CHANGED",
                ("policy", policy_id),
                ActorType::Human,
                occurred_us,
            )
        }
    }

    /// The tenant's first hour: keys created, a policy tuned, the first decisions and a key
    /// rotation, so that every audit view has something to show even for tiny seeds.
    fn setup_entries(&self) -> Vec<NewEntry> {
        let at = |minutes: i64| PERIOD_START_US + minutes * MINUTE;
        let key_created = |role: Role, key: &str, label: &str, minutes: i64| {
            let bootstrap = role == Role::Admin;
            NewEntry {
                actor_id: Some(if bootstrap {
                    "runledger-cli".to_string()
                } else {
                    self.admin().to_string()
                }),
                after_state: Some(json!({"role": role.as_str(), "label": label})),
                ..entry(
                    LedgerCategory::Identity,
                    "KEY_CREATED",
                    ("api_key", key),
                    if bootstrap {
                        ActorType::System
                    } else {
                        ActorType::Human
                    },
                    at(minutes),
                )
            }
        };
        let mut rng = Prng::derive(self.stream, &[STREAM_TENANT, 1]);
        let mut entries = vec![
            key_created(Role::Admin, &self.keys.admin, "bootstrap", 0),
            key_created(Role::Viewer, &self.keys.viewer, "dashboard", 2),
            key_created(Role::Auditor, &self.keys.auditor, "compliance-team", 3),
            key_created(Role::Ingest, &self.keys.ingest, "agent-runtime", 4),
            self.policy_change(POLICY_CHANGES[0], at(10)),
            self.access_decision(
                Role::Viewer,
                "read:audit",
                "audit.integrity",
                AccessDecision::Deny,
                at(20),
            ),
            self.access_decision(
                Role::Auditor,
                "read:audit",
                "audit.integrity",
                AccessDecision::Allow,
                at(21),
            ),
            self.failed_authentication(&mut rng, at(30)),
        ];
        entries.extend(self.key_rotation(
            Role::Viewer,
            &self.keys.viewer,
            &self.keys.viewer_rotated,
            at(40),
        ));
        entries
    }
}

/// (policy, rule, field, before, after, reason)
type PolicyChange = (
    &'static str,
    &'static str,
    &'static str,
    PolicyValue,
    PolicyValue,
    &'static str,
);

#[derive(Clone, Copy, Debug)]
enum PolicyValue {
    Number(f64),
    Text(&'static str),
    List(&'static [&'static str]),
}

impl serde::Serialize for PolicyValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PolicyValue::Number(n) if n.fract() == 0.0 => s.serialize_i64(*n as i64),
            PolicyValue::Number(n) => s.serialize_f64(*n),
            PolicyValue::Text(t) => s.serialize_str(t),
            PolicyValue::List(items) => serde::Serialize::serialize(items, s),
        }
    }
}

const POLICY_CHANGES: [PolicyChange; 4] = [
    (
        "pol-cost-ceiling",
        "daily-tenant-ceiling",
        "limit_usd",
        PolicyValue::Number(500.0),
        PolicyValue::Number(800.0),
        "raised after the Q4 budget review",
    ),
    (
        "pol-pii-redaction",
        "pii-email",
        "action",
        PolicyValue::Text("MASK"),
        PolicyValue::Text("REDACT"),
        "DPO request: remove addresses instead of masking them",
    ),
    (
        "pol-tool-allowlist",
        "allowlist-v3",
        "tools",
        PolicyValue::List(&["tool:web_search"]),
        PolicyValue::List(&["tool:sql_query", "tool:web_search"]),
        "read-only analytics database approved for agents",
    ),
    (
        "pol-prompt-injection",
        "classifier-threshold",
        "threshold",
        PolicyValue::Number(0.85),
        PolicyValue::Number(0.8),
        "tightened after a red-team exercise",
    ),
];

/// A ledger entry with the fields every entry has; the rest are set with struct update syntax.
fn entry(
    category: LedgerCategory,
    event_type: &str,
    entity: (&str, &str),
    actor_type: ActorType,
    occurred_us: i64,
) -> NewEntry {
    NewEntry {
        id: None,
        category,
        event_type: event_type.to_string(),
        entity_type: entity.0.to_string(),
        entity_id: entity.1.to_string(),
        actor_type,
        actor_id: None,
        action_reason: None,
        decision: None,
        before_state: None,
        after_state: None,
        correlation_id: None,
        occurred_at: ts(occurred_us),
    }
}

/// Which policy looks at a step of this skill, and what it decided.
fn step_policy(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(runs: u32, steps_per_run: u32) -> SeedOptions {
        SeedOptions {
            tenants: 1,
            runs,
            steps_per_run,
            telemetry_percent: 50,
            seed: 7,
        }
    }

    fn parse_status(text: &str) -> StepStatus {
        StepStatus::parse(text).expect("stored step status")
    }

    /// The step statuses a run of `status` may have, in order.
    fn assert_consistent(status: RunStatus, steps: &[StepStatus], context: &str) {
        let turn = steps.iter().position(|s| {
            matches!(
                s,
                StepStatus::Failed | StepStatus::Blocked | StepStatus::Skipped
            )
        });
        let before_ok = |end: usize, allow_retry: bool| {
            steps[..end]
                .iter()
                .all(|s| *s == StepStatus::Succeeded || (allow_retry && *s == StepStatus::Retried))
        };
        let skipped_after = |from: usize| steps[from..].iter().all(|s| *s == StepStatus::Skipped);
        match status {
            RunStatus::Succeeded => assert!(before_ok(steps.len(), true), "{context}: {steps:?}"),
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Blocked => {
                let want = if status == RunStatus::Blocked {
                    StepStatus::Blocked
                } else {
                    StepStatus::Failed
                };
                let t = turn.unwrap_or_else(|| panic!("{context}: no turning step in {steps:?}"));
                assert_eq!(steps[t], want, "{context}: {steps:?}");
                assert!(before_ok(t, false), "{context}: {steps:?}");
                assert!(skipped_after(t + 1), "{context}: {steps:?}");
            }
            RunStatus::Aborted => {
                let t = turn.unwrap_or_else(|| panic!("{context}: no skipped tail in {steps:?}"));
                assert_eq!(steps[t], StepStatus::Skipped, "{context}: {steps:?}");
                assert!(before_ok(t, false), "{context}: {steps:?}");
                assert!(skipped_after(t), "{context}: {steps:?}");
            }
        }
    }

    #[test]
    fn prng_is_deterministic_and_depends_on_the_seed() {
        let draw = |seed: u64| {
            let mut rng = Prng::derive(seed, &[STREAM_RUN, 3]);
            (0..64).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        assert_ne!(
            Prng::derive(42, &[STREAM_RUN, 1]).next_u64(),
            Prng::derive(42, &[STREAM_RUN, 2]).next_u64()
        );

        let mut rng = Prng::new(1);
        for _ in 0..10_000 {
            assert!(rng.below(7) < 7);
            let v = rng.range(-3, 3);
            assert!((-3..=3).contains(&v));
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(rng.hex(32).len(), 32);
        assert!(rng.hex(13).bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn tenant_ids_are_deterministic_unique_and_suffixed_when_exhausted() {
        let a = tenant_specs(42, 300);
        assert_eq!(a, tenant_specs(42, 300));
        assert_ne!(tenant_specs(42, 3), tenant_specs(43, 3));
        let mut ids: Vec<&str> = a.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 300);
        assert!(a[200].id.ends_with("-2"), "{}", a[200].id);
        for t in &a {
            assert!(auth::validate_tenant_id(&t.id).is_ok(), "{}", t.id);
        }
    }

    #[test]
    fn drafted_step_statuses_match_the_run_status() {
        let model = MODELS[0].0;
        for (status, _) in RUN_STATUS_MIX {
            for n in 1..=14 {
                for seed in 0..200 {
                    let mut rng = Prng::new(seed);
                    let drafts = draft_steps(&mut rng, status, n, &model);
                    assert_eq!(drafts.len(), n);
                    let statuses: Vec<StepStatus> = drafts.iter().map(|d| d.status).collect();
                    assert_consistent(status, &statuses, &format!("{status} n={n} seed={seed}"));
                    for d in &drafts {
                        if d.status == StepStatus::Blocked {
                            assert_eq!(d.skill, "guardrail_check");
                            assert_eq!(d.outcome, "POLICY_BLOCK");
                        }
                        if status == RunStatus::TimedOut && d.status == StepStatus::Failed {
                            assert_eq!(d.outcome, "TIMEOUT");
                        }
                        if d.status == StepStatus::Skipped {
                            assert_eq!((d.cost_cents, d.duration_ms), (0, 0));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn generated_runs_are_internally_consistent() {
        let generator = TenantGenerator::new("acme-robotics", &opts(400, 8), true);
        let mut statuses = std::collections::HashSet::new();
        for index in 0..400 {
            let g = generator.generate_run(index);
            let run = &g.run;
            let status = RunStatus::parse(&run.execution_status).expect("run status");
            statuses.insert(status);
            let started = run.started_at;
            let completed = run.completed_at.expect("completed");
            assert!(started >= ts(PERIOD_START_US) && completed < ts(ANCHOR_US));

            let step_statuses: Vec<StepStatus> =
                g.steps.iter().map(|s| parse_status(&s.status)).collect();
            assert_consistent(status, &step_statuses, &run.run_id);
            assert_eq!(
                run.cost_cents,
                g.steps.iter().map(|s| s.cost_cents).sum::<i64>()
            );
            let mut previous = started;
            for (i, s) in g.steps.iter().enumerate() {
                assert_eq!(s.step_index, i as i32);
                assert!(s.occurred_at > previous || (i == 0 && s.occurred_at >= started));
                assert!(s.occurred_at <= completed);
                assert!(s.recorded_at > s.occurred_at);
                previous = s.occurred_at;
            }

            let count = g.governance.len();
            assert!((1..=4).contains(&count), "{count} governance events");
            if status == RunStatus::Blocked {
                let blocked = g
                    .steps
                    .iter()
                    .find(|s| s.status == "BLOCKED")
                    .expect("blocked step");
                let block = g
                    .governance
                    .iter()
                    .find(|e| e.decision == "BLOCK")
                    .expect("BLOCK event");
                assert_eq!(block.occurred_at, blocked.occurred_at);
                assert_eq!(
                    block.entity_id,
                    format!("{}#{}", blocked.trace_id, blocked.step_index)
                );
            } else {
                assert!(g.governance.iter().all(|e| e.decision != "BLOCK"));
            }

            for t in &g.telemetry {
                assert!(t.sampled_at >= started && t.sampled_at <= completed);
            }
            for s in &g.system_records {
                if s.correlation_id.as_deref() == Some(run.run_id.as_str()) {
                    assert!(s.occurred_at >= started && s.occurred_at <= completed);
                    if s.event_type == "ENVIRONMENT_SNAPSHOT" {
                        assert_eq!(s.occurred_at, started);
                    }
                }
                let details = s.details.as_deref().expect("details");
                assert_eq!(
                    crate::canonical::canonicalize_text(details).ok().as_deref(),
                    Some(details)
                );
            }
            for e in &g.exports {
                if e.status == "COMPLETED" {
                    let bundle = run_bundle_json(run, &g.steps, &g.governance);
                    assert_eq!(
                        e.checksum.as_deref(),
                        Some(crate::canonical::hash_json(&bundle).as_str())
                    );
                }
            }
        }
        assert_eq!(
            statuses.len(),
            RunStatus::ALL.len(),
            "every run status occurs"
        );
    }

    #[test]
    fn the_same_options_generate_the_same_evidence() {
        let a = TenantGenerator::new("globex-ai", &opts(50, 6), true).batch(0..50);
        let b = TenantGenerator::new("globex-ai", &opts(50, 6), true).batch(0..50);
        assert_eq!(a.runs, b.runs);
        assert_eq!(a.steps, b.steps);
        assert_eq!(a.governance, b.governance);
        assert_eq!(a.system_records, b.system_records);
        assert_eq!(a.telemetry, b.telemetry);
        assert_eq!(a.exports, b.exports);
        assert_eq!(
            format!("{:?}", a.ledger_entries),
            format!("{:?}", b.ledger_entries)
        );

        // Batching does not change a run.
        let split = TenantGenerator::new("globex-ai", &opts(50, 6), true).batch(25..50);
        assert_eq!(split.runs[..], a.runs[25..]);

        let other = TenantGenerator::new("initech-labs", &opts(50, 6), true).batch(0..50);
        assert_ne!(a.runs[0].run_id, other.runs[0].run_id);
    }

    #[test]
    fn every_producer_ledger_category_is_present() {
        let batch = TenantGenerator::new("stark-agents", &opts(200, 8), false).batch(0..200);
        for category in [
            LedgerCategory::Identity,
            LedgerCategory::Authorization,
            LedgerCategory::Access,
            LedgerCategory::Governance,
            LedgerCategory::Export,
        ] {
            assert!(
                batch.ledger_entries.iter().any(|e| e.category == category),
                "{category} missing"
            );
        }
        assert!(
            batch
                .ledger_entries
                .windows(2)
                .all(|w| w[0].occurred_at <= w[1].occurred_at)
        );
    }
}
