//! The seeder's own checks: determinism, consistency of generated runs, and the ledger
//! entries it writes.

use super::*;
use crate::domain::LedgerCategory;
use crate::ledger::vocabulary::{EntityType, EventType};

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
        if let Some(plan) = &g.export {
            assert_eq!(
                plan.spec,
                crate::export::ExportSpec::Run {
                    run_id: run.run_id.clone()
                }
            );
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
    let (a, a_exports) = TenantGenerator::new("globex-ai", &opts(50, 6), true).batch(0..50);
    let (b, b_exports) = TenantGenerator::new("globex-ai", &opts(50, 6), true).batch(0..50);
    assert_eq!(a.runs, b.runs);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.governance, b.governance);
    assert_eq!(a.system_records, b.system_records);
    assert_eq!(a.telemetry, b.telemetry);
    assert_eq!(a_exports, b_exports);
    assert_eq!(a_exports[0].outcome, ExportOutcome::Built);
    assert_eq!(
        format!("{:?}", a.ledger_entries),
        format!("{:?}", b.ledger_entries)
    );

    // Batching does not change a run.
    let split = TenantGenerator::new("globex-ai", &opts(50, 6), true)
        .batch(25..50)
        .0;
    assert_eq!(split.runs[..], a.runs[25..]);

    let other = TenantGenerator::new("initech-labs", &opts(50, 6), true)
        .batch(0..50)
        .0;
    assert_ne!(a.runs[0].run_id, other.runs[0].run_id);
}

#[test]
/// (EXPORT entries come from the export path the seeder calls once the evidence is stored:
/// `tests/api/vocabulary.rs` finds them in a seeded ledger.)
fn every_producer_ledger_category_is_present() {
    let batch = TenantGenerator::new("stark-agents", &opts(200, 8), false)
        .batch(0..200)
        .0;
    for category in [
        LedgerCategory::Identity,
        LedgerCategory::Authorization,
        LedgerCategory::Access,
        LedgerCategory::Governance,
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

#[test]
fn product_entries_are_of_the_vocabulary_and_governance_ones_are_producer_events() {
    let batch = TenantGenerator::new("stark-agents", &opts(300, 4), false)
        .batch(0..300)
        .0;
    for e in &batch.ledger_entries {
        if e.category == LedgerCategory::Governance {
            // What a producer reports through ingest: its id derived from its event id.
            assert!(
                e.id.as_deref().is_some_and(|id| id.starts_with("le_")),
                "{e:?}"
            );
            continue;
        }
        let event = EventType::parse(&e.event_type);
        assert_eq!(event.map(EventType::category), Some(e.category), "{e:?}");
        assert!(EntityType::parse(&e.entity_type).is_some(), "{e:?}");
        assert!(e.id.is_none(), "the appender names product entries: {e:?}");
    }
}
