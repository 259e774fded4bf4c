//! The records an export's scope holds, read one chunk at a time (keyset on the scope's key) so
//! that a build of millions of records holds one chunk in memory. Only records anchored by an
//! entry before the export's request are taken: the export is the evidence as it stood when it
//! was asked for, whatever is ingested while it builds.

use std::collections::HashMap;

use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::Value;

use super::spec::{ExportSpec, LedgerSelection, RunSelection, SystemSelection, parse_time};
use crate::canonical::{
    canonical_json, governance_json, run_json, step_json, system_json, telemetry_json,
};
use crate::error::{AppResult, Context};
use entity::{
    audit_ledger, governance_events, llm_runs, system_records, telemetry_samples, trace_steps,
};

/// Runs (or system records, or entries) read per chunk.
const CHUNK: u64 = 500;

/// One evidence record in canonical form, with the anchor that commits to it.
#[derive(Clone, Debug)]
pub struct Record {
    /// Its table (one of [`crate::ledger::anchor::LEAF_ORDER`]).
    pub table: &'static str,
    /// How the bundle's report names it: `<table>:<key>`.
    pub name: String,
    /// The canonical JSON text (RFC 8785), whose SHA-256 is the record hash.
    pub canonical: String,
    pub anchor_id: String,
}

/// A chunk of what a scope holds.
pub enum Chunk {
    Records(Vec<Record>),
    Entries(Vec<audit_ledger::Model>),
}

/// Anchors usable by an export: `anchor id → seq` of the `EVIDENCE_BATCH_ANCHORED` entries
/// before the request.
pub type Anchors = HashMap<String, i64>;

fn record(
    table: &'static str,
    key: String,
    json: &Value,
    anchor: &Option<String>,
    anchors: &Anchors,
) -> Option<Record> {
    let anchor_id = anchor.as_ref()?;
    anchors.contains_key(anchor_id).then(|| Record {
        table,
        name: format!("{table}:{key}"),
        canonical: canonical_json(json),
        anchor_id: anchor_id.clone(),
    })
}

/// The runs a selection names. In anchor order the tenant is compared through an expression no
/// index serves, so that both planners walk the anchor index (a tenant's anchors are its own);
/// an equality on `tenant_id` would have SQLite scan the tenant's runs and sort them per chunk.
fn run_condition(tenant_id: &str, f: &RunSelection, order: WalkOrder) -> AppResult<Condition> {
    use llm_runs::Column as C;
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    let tenant = match order {
        WalkOrder::Key => C::TenantId.eq(tenant_id),
        WalkOrder::Anchor => ExprTrait::eq(
            Expr::expr(Func::coalesce([Expr::col(C::TenantId), Expr::val("")])),
            tenant_id,
        ),
    };
    let mut c = Condition::all().add(tenant);
    for (col, v) in [
        (C::RunId, &f.run_id),
        (C::TraceId, &f.trace_id),
        (C::Provider, &f.provider),
        (C::Model, &f.model),
        (C::Source, &f.source),
        (C::AgentId, &f.agent_id),
        (C::HumanActorId, &f.human_actor_id),
    ] {
        if let Some(v) = v {
            c = c.add(col.eq(v.clone()));
        }
    }
    if let Some(statuses) = &f.execution_status {
        c = c.add(C::ExecutionStatus.is_in(statuses.iter().cloned()));
    }
    if let Some(s) = f.is_synthetic {
        c = c.add(C::IsSynthetic.eq(s));
    }
    if let Some(t) = &f.started_after {
        c = c.add(C::StartedAt.gte(parse_time("startedAfter", t)?));
    }
    if let Some(t) = &f.started_before {
        c = c.add(C::StartedAt.lte(parse_time("startedBefore", t)?));
    }
    Ok(c)
}

fn system_condition(tenant_id: &str, s: &SystemSelection) -> AppResult<Condition> {
    use system_records::Column as C;
    let mut c = Condition::all().add(C::TenantId.eq(tenant_id));
    if let Some(v) = &s.component {
        c = c.add(C::Component.eq(v.clone()));
    }
    if let Some(v) = &s.correlation_id {
        c = c.add(C::CorrelationId.eq(v.clone()));
    }
    if let Some(v) = &s.severities {
        c = c.add(C::Severity.is_in(v.iter().cloned()));
    }
    if let Some(t) = &s.occurred_after {
        c = c.add(C::OccurredAt.gte(parse_time("occurredAfter", t)?));
    }
    if let Some(t) = &s.occurred_before {
        c = c.add(C::OccurredAt.lte(parse_time("occurredBefore", t)?));
    }
    Ok(c)
}

fn ledger_condition(tenant_id: &str, l: &LedgerSelection, up_to: i64) -> AppResult<Condition> {
    use audit_ledger::Column as C;
    let mut c = Condition::all()
        .add(C::TenantId.eq(tenant_id))
        .add(C::Seq.lte(up_to));
    if let Some(s) = l.from_seq {
        c = c.add(C::Seq.gte(s));
    }
    if let Some(s) = l.to_seq {
        c = c.add(C::Seq.lte(s));
    }
    if let Some(v) = &l.categories {
        c = c.add(C::Category.is_in(v.iter().cloned()));
    }
    if let Some(t) = &l.occurred_after {
        c = c.add(C::OccurredAt.gte(parse_time("occurredAfter", t)?));
    }
    if let Some(t) = &l.occurred_before {
        c = c.add(C::OccurredAt.lte(parse_time("occurredBefore", t)?));
    }
    Ok(c)
}

/// In which order a walk of a runs scope takes its runs (other scopes always walk by key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkOrder {
    /// By run id: the order of CSV and OTLP_JSON files.
    Key,
    /// By anchor, then key: the records of one anchored batch come together, so a bundle's
    /// builder holds the trees of a few batches at a time, not of every batch the scope touches.
    /// (A run's steps that came in other batches, as OTLP spans do, follow their run.)
    Anchor,
}

/// Walks a scope chunk by chunk.
pub struct Walk {
    tenant_id: String,
    spec: ExportSpec,
    anchors: Anchors,
    /// Entries up to the request are exported by a ledger scope.
    request_seq: i64,
    order: WalkOrder,
    /// The key (and, in anchor order, the anchor) the next chunk starts after.
    after: Option<String>,
    after_anchor: Option<String>,
    done: bool,
}

/// A [`Walk`] reading ahead ([`Walk::ahead`]).
pub struct Ahead {
    chunks: tokio::sync::mpsc::Receiver<AppResult<Chunk>>,
    task: tokio::task::JoinHandle<()>,
}

impl Ahead {
    /// The next chunk; `None` once the scope is walked.
    pub async fn next(&mut self) -> AppResult<Option<Chunk>> {
        self.chunks.recv().await.transpose()
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Rows after (`anchor`, `key`) in the walk's order.
fn after<C: ColumnTrait>(
    order: WalkOrder,
    anchor_column: C,
    key_column: C,
    anchor: &Option<String>,
    key: &str,
) -> Condition {
    match (order, anchor) {
        // `anchor >= a` first: a range both planners start the anchor index at.
        (WalkOrder::Anchor, Some(a)) => Condition::all().add(anchor_column.gte(a.clone())).add(
            Condition::any()
                .add(anchor_column.gt(a.clone()))
                .add(key_column.gt(key.to_string())),
        ),
        _ => Condition::all().add(key_column.gt(key.to_string())),
    }
}

impl Walk {
    pub fn new(
        tenant_id: &str,
        spec: ExportSpec,
        anchors: Anchors,
        request_seq: i64,
        order: WalkOrder,
    ) -> Walk {
        let order = match spec {
            ExportSpec::Runs { .. } => order,
            _ => WalkOrder::Key,
        };
        Walk {
            tenant_id: tenant_id.to_string(),
            spec,
            anchors,
            request_seq,
            order,
            after: None,
            after_anchor: None,
            done: false,
        }
    }

    /// How many records (or entries) the scope holds, for progress (counted before the walk;
    /// records anchored after the request are not subtracted, so it is an upper bound).
    pub async fn count<C: ConnectionTrait>(&self, db: &C) -> AppResult<u64> {
        let t = self.tenant_id.as_str();
        match &self.spec {
            ExportSpec::Ledger(l) => audit_ledger::Entity::find()
                .filter(ledger_condition(t, l, self.request_seq)?)
                .count(db)
                .await
                .context("count the entries of an export"),
            ExportSpec::System(s) => system_records::Entity::find()
                .filter(system_condition(t, s)?)
                .count(db)
                .await
                .context("count the system records of an export"),
            ExportSpec::Run { run_id } => {
                let f = RunSelection {
                    run_id: Some(run_id.clone()),
                    ..RunSelection::default()
                };
                count_runs(db, t, &run_condition(t, &f, WalkOrder::Key)?).await
            }
            ExportSpec::Runs { filter } => {
                count_runs(db, t, &run_condition(t, filter, WalkOrder::Key)?).await
            }
        }
    }

    /// The walk run ahead in a task of its own: the next chunk is read (and decoded) from the
    /// database while the caller writes the last one. A channel of one chunk keeps memory
    /// bounded; dropping the [`Ahead`] stops the task.
    pub fn ahead(mut self, db: DatabaseConnection) -> Ahead {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(async move {
            loop {
                let (chunk, last) = match self.next(&db).await {
                    Ok(Some(chunk)) => (Ok(chunk), false),
                    Ok(None) => break,
                    Err(e) => (Err(e), true),
                };
                if tx.send(chunk).await.is_err() || last {
                    break;
                }
            }
        });
        Ahead { chunks: rx, task }
    }

    /// The next chunk; `None` once the scope is walked.
    pub async fn next<C: ConnectionTrait>(&mut self, db: &C) -> AppResult<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let t = self.tenant_id.clone();
        let chunk = match self.spec.clone() {
            ExportSpec::Run { run_id } => {
                let f = RunSelection {
                    run_id: Some(run_id),
                    ..RunSelection::default()
                };
                self.runs_chunk(db, &run_condition(&t, &f, self.order)?)
                    .await?
            }
            ExportSpec::Runs { filter } => {
                self.runs_chunk(db, &run_condition(&t, &filter, self.order)?)
                    .await?
            }
            ExportSpec::System(s) => {
                let mut select = system_records::Entity::find()
                    .filter(system_condition(&t, &s)?)
                    .order_by_asc(system_records::Column::Id)
                    .limit(CHUNK);
                if let Some(after) = &self.after {
                    select = select.filter(system_records::Column::Id.gt(after.clone()));
                }
                let rows = select
                    .all(db)
                    .await
                    .context("read system records to export")?;
                self.note_end(rows.len(), rows.last().map(|r| (None, r.id.clone())));
                Chunk::Records(
                    rows.iter()
                        .filter_map(|s| {
                            record(
                                "system_records",
                                s.id.clone(),
                                &system_json(s),
                                &s.anchor_id,
                                &self.anchors,
                            )
                        })
                        .collect(),
                )
            }
            ExportSpec::Ledger(l) => {
                let mut select = audit_ledger::Entity::find()
                    .filter(ledger_condition(&t, &l, self.request_seq)?)
                    .order_by_asc(audit_ledger::Column::Seq)
                    .limit(CHUNK);
                if let Some(after) = &self.after {
                    let after: i64 = after.parse().unwrap_or(i64::MAX);
                    select = select.filter(audit_ledger::Column::Seq.gt(after));
                }
                let rows = select
                    .all(db)
                    .await
                    .context("read ledger entries to export")?;
                self.note_end(rows.len(), rows.last().map(|e| (None, e.seq.to_string())));
                Chunk::Entries(rows)
            }
        };
        Ok(Some(chunk))
    }

    /// Notes where the next chunk starts: after the last row read, (its anchor, its key).
    fn note_end(&mut self, read: usize, last: Option<(Option<String>, String)>) {
        if (read as u64) < CHUNK {
            self.done = true;
        }
        if let Some((anchor, key)) = last {
            self.after_anchor = anchor;
            self.after = Some(key);
        }
    }

    /// A chunk of runs (keyset on run id) with their steps, policy events, correlated system
    /// records and telemetry, run by run.
    async fn runs_chunk<C: ConnectionTrait>(
        &mut self,
        db: &C,
        cond: &Condition,
    ) -> AppResult<Chunk> {
        let t = self.tenant_id.clone();
        use llm_runs::Column as C;
        let mut select = llm_runs::Entity::find().filter(cond.clone());
        select = match self.order {
            WalkOrder::Key => select.order_by_asc(C::RunId),
            WalkOrder::Anchor => select
                .filter(C::AnchorId.is_not_null())
                .order_by_asc(C::AnchorId)
                .order_by_asc(C::RunId),
        };
        if let Some(key) = &self.after {
            select = select.filter(after(
                self.order,
                C::AnchorId,
                C::RunId,
                &self.after_anchor,
                key,
            ));
        }
        let runs = select
            .limit(CHUNK)
            .all(db)
            .await
            .context("read runs to export")?;
        let last = runs.last().map(|r| (r.anchor_id.clone(), r.run_id.clone()));
        self.note_end(runs.len(), last);
        let run_ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
        let traces: Vec<String> = runs.iter().filter_map(|r| r.trace_id.clone()).collect();
        // The four reads go out at once, each on a connection of its own: on PostgreSQL the
        // server works on them in parallel instead of waiting for one round trip at a time.
        let steps = async {
            trace_steps::Entity::find()
                .filter(trace_steps::Column::TenantId.eq(&t))
                .filter(trace_steps::Column::TraceId.is_in(traces))
                .order_by_asc(trace_steps::Column::TraceId)
                .order_by_asc(trace_steps::Column::StepIndex)
                .all(db)
                .await
                .context("read steps to export")
        };
        let governance = async {
            governance_events::Entity::find()
                .filter(governance_events::Column::TenantId.eq(&t))
                .filter(governance_events::Column::RunId.is_in(run_ids.clone()))
                .all(db)
                .await
                .context("read policy events to export")
        };
        // By correlation alone, which its index serves (SQLite would otherwise take the
        // tenant's time index and scan every record of the tenant); other owners' records
        // are dropped here.
        let system = async {
            system_records::Entity::find()
                .filter(system_records::Column::CorrelationId.is_in(run_ids.clone()))
                .all(db)
                .await
                .context("read correlated system records to export")
        };
        let telemetry = async {
            telemetry_samples::Entity::find()
                .filter(telemetry_samples::Column::TenantId.eq(&t))
                .filter(telemetry_samples::Column::RunId.is_in(run_ids.clone()))
                .all(db)
                .await
                .context("read telemetry to export")
        };
        let (steps, governance, mut system, telemetry) =
            tokio::try_join!(steps, governance, system, telemetry)?;
        system.retain(|s| s.tenant_id.as_deref() == Some(t.as_str()));
        // Read through the run and correlation indexes (an ORDER BY id would have the planner
        // walk the tenant's whole table in id order instead) and grouped per run here, each
        // group in id order.
        let mut governance_by_run: HashMap<&str, Vec<&governance_events::Model>> = HashMap::new();
        for g in &governance {
            governance_by_run
                .entry(g.run_id.as_str())
                .or_default()
                .push(g);
        }
        let mut system_by_run: HashMap<&str, Vec<&system_records::Model>> = HashMap::new();
        for s in &system {
            if let Some(run) = s.correlation_id.as_deref() {
                system_by_run.entry(run).or_default().push(s);
            }
        }
        let mut telemetry_by_run: HashMap<&str, Vec<&telemetry_samples::Model>> = HashMap::new();
        for x in &telemetry {
            telemetry_by_run
                .entry(x.run_id.as_str())
                .or_default()
                .push(x);
        }
        let mut by_run = |rid: &str| {
            let mut g = governance_by_run.remove(rid).unwrap_or_default();
            let mut s = system_by_run.remove(rid).unwrap_or_default();
            let mut x = telemetry_by_run.remove(rid).unwrap_or_default();
            g.sort_by(|a, b| a.id.cmp(&b.id));
            s.sort_by(|a, b| a.id.cmp(&b.id));
            x.sort_by(|a, b| a.id.cmp(&b.id));
            (g, s, x)
        };
        let a = &self.anchors;
        let mut out = Vec::new();
        let mut steps_by_trace: HashMap<&str, Vec<&trace_steps::Model>> = HashMap::new();
        for s in &steps {
            steps_by_trace
                .entry(s.trace_id.as_str())
                .or_default()
                .push(s);
        }
        for r in &runs {
            out.extend(record(
                "llm_runs",
                r.run_id.clone(),
                &run_json(r),
                &r.anchor_id,
                a,
            ));
            if let Some(trace) = &r.trace_id {
                for s in steps_by_trace.remove(trace.as_str()).unwrap_or_default() {
                    let key = format!("{}#{}", s.trace_id, s.step_index);
                    out.extend(record("trace_steps", key, &step_json(s), &s.anchor_id, a));
                }
            }
            let (g, s, x) = by_run(&r.run_id);
            for g in g {
                out.extend(record(
                    "governance_events",
                    g.id.clone(),
                    &governance_json(g),
                    &g.anchor_id,
                    a,
                ));
            }
            for s in s {
                out.extend(record(
                    "system_records",
                    s.id.clone(),
                    &system_json(s),
                    &s.anchor_id,
                    a,
                ));
            }
            for x in x {
                out.extend(record(
                    "telemetry_samples",
                    x.id.clone(),
                    &telemetry_json(x),
                    &x.anchor_id,
                    a,
                ));
            }
        }
        Ok(Chunk::Records(out))
    }
}

/// Runs the condition selects plus their steps, policy events, correlated system records and
/// telemetry.
async fn count_runs<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    cond: &Condition,
) -> AppResult<u64> {
    let runs = || llm_runs::Entity::find().filter(cond.clone());
    let run_ids = || {
        runs()
            .select_only()
            .column(llm_runs::Column::RunId)
            .into_query()
    };
    let n_runs = runs().count(db).await.context("count runs to export")?;
    let n_steps = trace_steps::Entity::find()
        .filter(trace_steps::Column::TenantId.eq(tenant_id))
        .filter(
            trace_steps::Column::TraceId.in_subquery(
                runs()
                    .select_only()
                    .column(llm_runs::Column::TraceId)
                    .into_query(),
            ),
        )
        .count(db)
        .await
        .context("count steps to export")?;
    let n_gov = governance_events::Entity::find()
        .filter(governance_events::Column::TenantId.eq(tenant_id))
        .filter(governance_events::Column::RunId.in_subquery(run_ids()))
        .count(db)
        .await
        .context("count policy events to export")?;
    let n_sys = system_records::Entity::find()
        .filter(system_records::Column::TenantId.eq(tenant_id))
        .filter(system_records::Column::CorrelationId.in_subquery(run_ids()))
        .count(db)
        .await
        .context("count system records to export")?;
    let n_tel = telemetry_samples::Entity::find()
        .filter(telemetry_samples::Column::TenantId.eq(tenant_id))
        .filter(telemetry_samples::Column::RunId.in_subquery(run_ids()))
        .count(db)
        .await
        .context("count telemetry to export")?;
    Ok(n_runs + n_steps + n_gov + n_sys + n_tel)
}
