//! A small, hand-made evidence set with known answers, written through the ingest path, for
//! two tenants (`alpha`, `beta`) plus global system records. Tests compute what they expect
//! from these values, never by calling the facade.

use chrono::{DateTime, Duration, TimeZone, Utc};
use runledger::auth;
use runledger::auth::Permission;
use runledger::domain::{ActorType, Role};
use runledger::ingest::{self, EvidenceBatch};
use runledger::ledger::vocabulary::{
    self, EntityType, EvidenceRead, PermissionDecision, ProducerEvent, producer_entry_id,
};
use runledger::ledger::{self, NewEntry};
use serde_json::json;

use entity::{
    governance_events, llm_runs, log_exports, system_records, telemetry_samples, trace_steps,
};

use crate::helpers::TestApp;

/// Fixed origin of the fixture's timeline.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// `t0 + seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// RFC 3339 as the API prints it (async-graphql's chrono scalar).
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Keys of the fixture's tenants.
pub struct Keys {
    pub alpha_viewer: String,
    pub alpha_auditor: String,
    pub alpha_ingest: String,
    pub beta_auditor: String,
}

pub struct RunSpec {
    pub run_id: &'static str,
    pub provider: &'static str,
    pub model: &'static str,
    pub status: &'static str,
    pub started: i64,
    pub completed: Option<i64>,
    pub trace: Option<&'static str>,
    pub human: Option<&'static str>,
    pub agent: Option<&'static str>,
    pub synthetic: bool,
    pub origin: &'static str,
    pub source: &'static str,
    pub tokens: (i64, i64),
    pub cost: i64,
}

/// The alpha tenant's runs, in the order they are written.
pub fn alpha_runs() -> Vec<RunSpec> {
    let base = |run_id, provider, model, status, started, completed, trace| RunSpec {
        run_id,
        provider,
        model,
        status,
        started,
        completed,
        trace,
        human: None,
        agent: Some("agent-1"),
        synthetic: false,
        origin: "AGENT",
        source: "sdk",
        tokens: (100, 50),
        cost: 12,
    };
    vec![
        base(
            "r1",
            "openai",
            "gpt-4o",
            "SUCCEEDED",
            0,
            Some(10),
            Some("tr1"),
        ),
        RunSpec {
            human: Some("h-1"),
            origin: "HUMAN",
            tokens: (400, 120),
            cost: 40,
            ..base(
                "r2",
                "anthropic",
                "claude-sonnet-4",
                "FAILED",
                60,
                Some(90),
                Some("tr2"),
            )
        },
        base(
            "r3",
            "openai",
            "gpt-4o-mini",
            "BLOCKED",
            300,
            Some(303),
            Some("tr3"),
        ),
        RunSpec {
            source: "otel",
            ..base(
                "r4",
                "google",
                "gemini-2.0-flash",
                "SUCCEEDED",
                600,
                Some(620),
                None,
            )
        },
        RunSpec {
            synthetic: true,
            origin: "REPLAY",
            agent: None,
            ..base(
                "r5",
                "mistral",
                "mistral-large",
                "TIMED_OUT",
                900,
                None,
                None,
            )
        },
        base(
            "r6",
            "openai",
            "gpt-4o",
            "SUCCEEDED",
            1200,
            Some(1205),
            None,
        ),
    ]
}

pub fn run_model(tenant: &str, s: &RunSpec) -> llm_runs::Model {
    llm_runs::Model {
        anchor_id: None,
        tenant_id: tenant.into(),
        run_id: s.run_id.into(),
        trace_id: s.trace.map(Into::into),
        provider: s.provider.into(),
        model: s.model.into(),
        input_tokens: s.tokens.0,
        output_tokens: s.tokens.1,
        cost_cents: s.cost,
        execution_status: s.status.into(),
        started_at: at(s.started),
        completed_at: s.completed.map(at),
        source: s.source.into(),
        is_synthetic: s.synthetic,
        human_actor_id: s.human.map(Into::into),
        agent_id: s.agent.map(Into::into),
        system_id: Some("agent-runtime".into()),
        origin: s.origin.into(),
        recorded_at: at(s.started + 20),
        record_hash: String::new(),
        session_id: None,
        cache_read_tokens: None,
        cache_creation_tokens: None,
        attributes: None,
        content: None,
        content_sha256: None,
    }
}

/// (trace, index, seconds, skill, status)
pub fn alpha_steps() -> Vec<(&'static str, i32, i64, &'static str, &'static str)> {
    vec![
        ("tr1", 0, 1, "plan", "SUCCEEDED"),
        ("tr1", 1, 3, "call_llm", "SUCCEEDED"),
        ("tr1", 2, 6, "respond", "SUCCEEDED"),
        ("tr2", 0, 61, "plan", "SUCCEEDED"),
        ("tr2", 1, 70, "tool:sql_query", "FAILED"),
        ("tr2", 2, 71, "respond", "SKIPPED"),
        ("tr3", 0, 301, "plan", "SUCCEEDED"),
        ("tr3", 1, 302, "guardrail_check", "BLOCKED"),
    ]
}

pub fn step_model(tenant: &str, s: &(&str, i32, i64, &str, &str)) -> trace_steps::Model {
    trace_steps::Model {
        anchor_id: None,
        tenant_id: tenant.into(),
        trace_id: s.0.into(),
        step_index: s.1,
        occurred_at: at(s.2),
        skill_name: s.3.into(),
        status: s.4.into(),
        outcome_category: if s.4 == "SUCCEEDED" {
            "SUCCESS".into()
        } else {
            "ERROR".into()
        },
        cost_cents: 3 + s.1 as i64,
        duration_ms: 250 * (s.1 as i64 + 1),
        span_id: None,
        recorded_at: at(s.2 + 1),
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
    }
}

/// (id, run, seconds, policy, decision)
pub fn alpha_governance() -> Vec<(&'static str, &'static str, i64, &'static str, &'static str)> {
    vec![
        ("g1", "r1", 2, "pol-a", "ALLOW"),
        ("g2", "r2", 65, "pol-b", "WARN"),
        ("g3", "r3", 302, "pol-c", "BLOCK"),
        ("g4", "r3", 301, "pol-a", "ALLOW"),
        ("g5", "r4", 610, "pol-b", "WARN"),
    ]
}

pub fn governance_model(
    tenant: &str,
    g: &(&str, &str, i64, &str, &str),
) -> governance_events::Model {
    governance_events::Model {
        anchor_id: None,
        tenant_id: tenant.into(),
        id: g.0.into(),
        run_id: g.1.into(),
        occurred_at: at(g.2),
        event_type: "POLICY_EVALUATED".into(),
        policy_id: Some(g.3.into()),
        rule_id: Some(format!("{}-rule-1", g.3)),
        decision: g.4.into(),
        entity_type: "run".into(),
        entity_id: g.1.into(),
        reason: Some(format!("{} decided {}", g.3, g.4)),
        recorded_at: at(g.2 + 1),
        record_hash: String::new(),
    }
}

/// (id, tenant or global, seconds, component, event type, severity, correlation, caused_by)
pub type SystemSpec = (
    &'static str,
    Option<&'static str>,
    i64,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// A predicate over fixture rows, for tables of filter cases.
pub type Keep<T> = Box<dyn Fn(&T) -> bool>;

pub fn system_specs() -> Vec<SystemSpec> {
    vec![
        (
            "s0",
            Some("alpha"),
            60,
            "worker-pool",
            "ENVIRONMENT_SNAPSHOT",
            "INFO",
            Some("r2"),
            None,
        ),
        (
            "s1",
            Some("alpha"),
            69,
            "worker-pool",
            "WORKER_RESTART",
            "ERROR",
            Some("r2"),
            Some("deploy:v1"),
        ),
        (
            "s2",
            Some("alpha"),
            5000,
            "auth",
            "AUTH_CONFIG_CHANGED",
            "WARNING",
            None,
            Some("operator:ops-1"),
        ),
        (
            "g-sys1",
            None,
            75,
            "gateway",
            "HEALTH_TRANSITION",
            "WARNING",
            None,
            Some("autoscaler"),
        ),
        (
            "g-sys2",
            None,
            200,
            "db",
            "MIGRATION_APPLIED",
            "INFO",
            None,
            Some("deploy:v2"),
        ),
        (
            "sb1",
            Some("beta"),
            70,
            "worker-pool",
            "WORKER_RESTART",
            "CRITICAL",
            Some("rb1"),
            Some("deploy:beta"),
        ),
    ]
}

#[allow(clippy::type_complexity)]
pub fn system_model(
    s: &(
        &str,
        Option<&str>,
        i64,
        &str,
        &str,
        &str,
        Option<&str>,
        Option<&str>,
    ),
) -> system_records::Model {
    system_records::Model {
        anchor_id: None,
        id: s.0.into(),
        tenant_id: s.1.map(Into::into),
        component: s.3.into(),
        event_type: s.4.into(),
        severity: s.5.into(),
        summary: format!("{} on {}", s.4, s.3),
        details: (s.4 == "ENVIRONMENT_SNAPSHOT")
            .then(|| r#"{"region":"eu-west-1","worker":"w-7"}"#.to_string()),
        caused_by: s.7.map(Into::into),
        correlation_id: s.6.map(Into::into),
        origin: "SYSTEM".into(),
        occurred_at: at(s.2),
        recorded_at: at(s.2 + 1),
        record_hash: String::new(),
    }
}

/// Telemetry of r4: latency 100, 200, 300 ms.
pub fn alpha_telemetry() -> Vec<telemetry_samples::Model> {
    [(601, 100.0), (602, 200.0), (603, 300.0)]
        .iter()
        .enumerate()
        .map(|(i, (t, v))| telemetry_samples::Model {
            anchor_id: None,
            tenant_id: "alpha".into(),
            id: format!("tel{i}"),
            run_id: "r4".into(),
            sampled_at: at(*t),
            metric: "latency_ms".into(),
            value: *v,
            unit: Some("ms".into()),
            recorded_at: at(*t + 1),
            record_hash: String::new(),
        })
        .collect()
}

/// A stale export of r6 (its checksum does not match the bundle) and a pending one of r1.
pub fn alpha_exports() -> Vec<log_exports::Model> {
    vec![
        log_exports::Model {
            tenant_id: "alpha".into(),
            id: "exp1".into(),
            run_id: Some("r6".into()),
            scope: "run:r6".into(),
            format: "JSON".into(),
            requested_by: "h-1".into(),
            status: "COMPLETED".into(),
            checksum: Some("0".repeat(64)),
            requested_at: at(1300),
            delivered_at: Some(at(1301)),
        },
        log_exports::Model {
            tenant_id: "alpha".into(),
            id: "exp2".into(),
            run_id: Some("r1".into()),
            scope: "run:r1".into(),
            format: "JSON".into(),
            requested_by: "h-1".into(),
            status: "PENDING".into(),
            checksum: None,
            requested_at: at(1400),
            delivered_at: None,
        },
    ]
}

/// The public id of an API key's text (`rl_<id>_<secret>`).
pub fn key_id(key: &str) -> &str {
    &key[3..15]
}

/// A request's permission decision, as the server records it.
fn decision(
    key: &str,
    role: Role,
    permission: Permission,
    operation: &str,
    seconds: i64,
) -> NewEntry {
    let allowed = auth::role_grants(role, permission);
    vocabulary::permission_decided(
        PermissionDecision {
            key_id: key_id(key),
            role,
            permission: permission.as_str(),
            allowed,
            reason: auth::decision_reason(role, permission, allowed),
            operation,
            checks: 1,
        },
        at(seconds),
    )
}

/// A request's read of one run, as the server records it.
fn run_read(
    key: &str,
    run_id: &str,
    view: &'static str,
    operation: &str,
    seconds: i64,
) -> NewEntry {
    vocabulary::evidence_read(
        EvidenceRead {
            key_id: key_id(key),
            operation,
            topic: "runs",
            entity_type: EntityType::LlmRun,
            entity_id: run_id.into(),
            views: vec![view],
            filters: None,
            rows: 1,
            ids: vec![run_id.into()],
        },
        at(seconds),
    )
}

/// Alpha's ledger entries of requests and producers (`viewer` is alpha's viewer key): 2
/// authorization (viewer allowed to read evidence, refused the audit views), 2 access (runs r1
/// and r6 read), 1 governance (a producer's policy change).
pub fn alpha_ledger(viewer: &str) -> Vec<NewEntry> {
    let policy_change = ProducerEvent {
        entry_id: producer_entry_id("alpha", "chg-1"),
        event_type: "POLICY_RULE_CHANGED".into(),
        entity_type: "policy".into(),
        entity_id: "pol-b".into(),
        actor_type: ActorType::Human,
        actor_id: Some("h-1".into()),
        action_reason: Some("POLICY_RULE_CHANGED in fixture".into()),
        before_state: Some(json!({"limit": 500})),
        after_state: Some(json!({"limit": 800})),
        correlation_id: None,
        occurred_at: at(14),
    };
    vec![
        decision(viewer, Role::Viewer, Permission::ReadEvidence, "Runs", 10),
        decision(viewer, Role::Viewer, Permission::ReadAudit, "Integrity", 11),
        run_read(viewer, "r1", "run", "Run", 12),
        run_read(viewer, "r6", "export", "RunExport", 13),
        policy_change.into_entry(),
    ]
}

/// The chained EXPORT entries of an export record, as the server's export path writes them
/// (docs/ledger.md, "Export records"): requested, then completed with its checksum or failed.
pub fn export_entries(e: &log_exports::Model) -> Vec<NewEntry> {
    let run_id = e.run_id.as_deref();
    let requested = vocabulary::export_requested(
        &e.id,
        &e.requested_by,
        &e.scope,
        &e.format,
        run_id,
        None,
        e.requested_at,
    );
    let mut out = vec![requested];
    match e.status.as_str() {
        "COMPLETED" => out.push(vocabulary::export_completed(
            &e.id,
            run_id,
            e.checksum.as_deref().unwrap(),
            None,
            e.delivered_at.unwrap(),
        )),
        "FAILED" => out.push(vocabulary::export_failed(
            &e.id,
            run_id,
            None,
            e.requested_at + Duration::seconds(1),
        )),
        _ => {}
    }
    out
}

/// Writes export records as a database of an earlier runledger holds them (run bundles in the
/// JSON format, whose EXPORT entries [`export_entries`] builds): the server writes export rows
/// only through its export path, which the export tests drive; these fixed ones let the view
/// and verification tests name their ids and checksums.
pub async fn insert_export_rows(db: &runledger::db::Db, rows: Vec<log_exports::Model>) {
    use sea_orm::{EntityTrait, IntoActiveModel};
    log_exports::Entity::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
        .exec_without_returning(&db.conn)
        .await
        .expect("insert export rows");
}

/// EXPORT entries of alpha's exports: exp1 requested and completed, exp2 requested.
pub const ALPHA_EXPORT_ENTRIES: usize = 3;

/// Number of alpha keys created (each adds a KEY_CREATED identity entry).
pub const ALPHA_KEYS: usize = 3;

/// Writes the fixture and returns keys of both tenants.
pub async fn load(app: &TestApp) -> Keys {
    let db = app.db();
    auth::ensure_tenant(db, "alpha", "Alpha Corp", &["SOC2"])
        .await
        .unwrap();
    auth::ensure_tenant(db, "beta", "Beta GmbH", &["HIPAA"])
        .await
        .unwrap();
    let key = |tenant: &'static str, role: Role| async move {
        auth::create_key(db, tenant, role, None, None)
            .await
            .unwrap()
            .0
    };
    let keys = Keys {
        alpha_viewer: key("alpha", Role::Viewer).await,
        alpha_auditor: key("alpha", Role::Auditor).await,
        alpha_ingest: key("alpha", Role::Ingest).await,
        beta_auditor: key("beta", Role::Auditor).await,
    };
    let systems = system_specs();
    let alpha = EvidenceBatch {
        runs: alpha_runs().iter().map(|r| run_model("alpha", r)).collect(),
        steps: alpha_steps()
            .iter()
            .map(|s| step_model("alpha", s))
            .collect(),
        governance: alpha_governance()
            .iter()
            .map(|g| governance_model("alpha", g))
            .collect(),
        system_records: systems
            .iter()
            .filter(|s| s.1 == Some("alpha"))
            .map(system_model)
            .collect(),
        telemetry: alpha_telemetry(),
        ledger_entries: alpha_ledger(&keys.alpha_viewer)
            .into_iter()
            .chain(alpha_exports().iter().flat_map(export_entries))
            .collect(),
        ..Default::default()
    };
    ingest::store(db, "alpha", alpha).await.unwrap();
    insert_export_rows(db, alpha_exports()).await;
    // Global records are anchored in the platform ledger, in a batch of their own.
    let global = EvidenceBatch {
        system_records: systems
            .iter()
            .filter(|s| s.1.is_none())
            .map(system_model)
            .collect(),
        ..Default::default()
    };
    ingest::store(db, ledger::PLATFORM_LEDGER, global)
        .await
        .unwrap();
    let beta_run = RunSpec {
        run_id: "rb1",
        ..alpha_runs().remove(0)
    };
    // Beta also has a run called r1, with other values: lookups must never cross tenants.
    let beta_r1 = RunSpec {
        provider: "beta-provider",
        trace: Some("tr1"),
        ..alpha_runs().remove(0)
    };
    let beta_export = log_exports::Model {
        tenant_id: "beta".into(),
        id: "expb1".into(),
        run_id: Some("rb1".into()),
        scope: "run:rb1".into(),
        format: "JSON".into(),
        requested_by: "hb".into(),
        status: "FAILED".into(),
        checksum: None,
        requested_at: at(100),
        delivered_at: None,
    };
    let beta = EvidenceBatch {
        runs: vec![run_model("beta", &beta_run), run_model("beta", &beta_r1)],
        steps: vec![step_model(
            "beta",
            &("tr1", 0, 1, "beta-skill", "SUCCEEDED"),
        )],
        governance: vec![governance_model(
            "beta",
            &("gb1", "rb1", 2, "pol-beta", "BLOCK"),
        )],
        system_records: systems
            .iter()
            .filter(|s| s.1 == Some("beta"))
            .map(system_model)
            .collect(),
        telemetry: vec![],
        ledger_entries: std::iter::once(run_read(&keys.beta_auditor, "rb1", "run", "Run", 3))
            .chain(export_entries(&beta_export))
            .collect(),
        ..Default::default()
    };
    ingest::store(db, "beta", beta).await.unwrap();
    insert_export_rows(db, vec![beta_export]).await;
    keys
}
