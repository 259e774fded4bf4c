//! `systemRecordStats` and `auditStats`: rows counted per group and time bucket, with one
//! flagged count beside (incidents among system records, denials among ledger entries). Read
//! from the records themselves, with the list's filter.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    Select,
};

use super::{AsOf, GroupKey, Grouped, Measure, StatsRequest, TimeAxis, as_of, group, query};
use crate::auth::Permission;
use crate::error::{AppError, AppResult, Context};
use crate::facade::Facade;
use crate::facade::audit::AuditFilter;
use crate::facade::system::SystemFilter;
use crate::ledger::vocabulary::EntityType;
use entity::{audit_ledger, system_records};
use migration::rollups::epoch_seconds;

/// What system records are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "SystemRecordDimension")]
pub enum SystemDimension {
    Severity,
    Component,
    EventType,
}

impl SystemDimension {
    fn name(self) -> &'static str {
        match self {
            SystemDimension::Severity => "severity",
            SystemDimension::Component => "component",
            SystemDimension::EventType => "event_type",
        }
    }
}

/// What ledger entries are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "AuditDimension")]
pub enum AuditDimension {
    Category,
    EventType,
    /// ALLOW or DENY (authorization entries only).
    Decision,
    ActorType,
    ActorId,
    EntityType,
}

impl AuditDimension {
    fn name(self) -> &'static str {
        match self {
            AuditDimension::Category => "category",
            AuditDimension::EventType => "event_type",
            AuditDimension::Decision => "decision",
            AuditDimension::ActorType => "actor_type",
            AuditDimension::ActorId => "actor_id",
            AuditDimension::EntityType => "entity_type",
        }
    }
}

/// Rows and flagged rows of one group in one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountMeasures {
    pub rows: i64,
    pub flagged: i64,
}

impl Measure for CountMeasures {
    fn merge(&mut self, o: &Self) {
        self.rows += o.rows;
        self.flagged += o.flagged;
    }

    fn rows(&self) -> i64 {
        self.rows
    }
}

/// An answer of `systemRecordStats` or `auditStats`.
pub struct CountStats {
    pub axis: TimeAxis,
    /// Names of the grouped dimensions (GraphQL enum values).
    pub dimensions: Vec<String>,
    pub total: CountMeasures,
    pub series: Vec<CountMeasures>,
    pub grouped: Grouped<CountMeasures>,
    pub as_of: AsOf,
}

/// What one count query reads: the filtered rows, their time column and the flag.
struct CountQuery<'a, E: EntityTrait> {
    select: Select<E>,
    table: &'static str,
    time: &'static str,
    dims: &'a [&'static str],
    flag: &'static str,
}

fn check_dims(names: &[&str]) -> AppResult<()> {
    if names.len() > 3 {
        return Err(AppError::bad_input("groupBy takes at most 3 dimensions"));
    }
    for (i, d) in names.iter().enumerate() {
        if names[..i].contains(d) {
            return Err(AppError::bad_input(format!(
                "groupBy names {} twice",
                d.to_uppercase()
            )));
        }
    }
    Ok(())
}

async fn count_cells<E: EntityTrait>(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    axis: &TimeAxis,
    q: CountQuery<'_, E>,
) -> AppResult<HashMap<(GroupKey, usize), CountMeasures>> {
    let keys = axis.index_by_key();
    let t = format!("{}.{}", q.table, q.time);
    let mut select = q.select.select_only();
    for (i, d) in q.dims.iter().enumerate() {
        select = select.column_as(Expr::cust(format!("{}.{d}", q.table)), format!("rl_d{i}"));
    }
    select = select
        .column_as(
            Expr::cust(axis.key_sql(&epoch_seconds(backend, &t))),
            "rl_k",
        )
        .column_as(Expr::cust("COUNT(*)"), "rl_rows")
        .column_as(
            Expr::cust(format!(
                "CAST(SUM(CASE WHEN {} THEN 1 ELSE 0 END) AS BIGINT)",
                q.flag
            )),
            "rl_flagged",
        );
    for i in 0..q.dims.len() {
        select = select.group_by(Expr::cust(format!("rl_d{i}")));
    }
    select = select.group_by(Expr::cust("rl_k"));
    let rows = query(txn, select.build(backend), "count records for stats").await?;
    let mut out: HashMap<(GroupKey, usize), CountMeasures> = HashMap::new();
    for row in &rows {
        let n = q.dims.len();
        let key: GroupKey = (0..n)
            .map(|i| row.try_get_by_index::<Option<String>>(i))
            .collect::<Result<_, _>>()
            .context("read a stats group")?;
        let k: i64 = row.try_get_by_index(n).context("read a stats bucket")?;
        let m = CountMeasures {
            rows: row.try_get_by_index(n + 1).context("read a stats count")?,
            flagged: row
                .try_get_by_index::<Option<i64>>(n + 2)
                .context("read a stats count")?
                .unwrap_or(0),
        };
        let bucket = keys.get(&k).copied().ok_or_else(|| {
            AppError::internal(
                "place a stats row",
                format!("bucket key {k} outside the axis"),
            )
        })?;
        out.entry((key, bucket)).or_default().merge(&m);
    }
    Ok(out)
}

fn finish(
    axis: TimeAxis,
    dimensions: Vec<String>,
    cells: HashMap<(GroupKey, usize), CountMeasures>,
    limit: usize,
    as_of: AsOf,
) -> CountStats {
    let buckets = axis.buckets.len();
    let mut total = CountMeasures::default();
    let mut series = vec![CountMeasures::default(); buckets];
    for ((_, b), m) in &cells {
        total.merge(m);
        if let Some(s) = series.get_mut(*b) {
            s.merge(m);
        }
    }
    let grouped = if dimensions.is_empty() {
        Grouped {
            groups: Vec::new(),
            other: None,
        }
    } else {
        group(cells, buckets, limit)
    };
    CountStats {
        axis,
        dimensions,
        total,
        series,
        grouped,
        as_of,
    }
}

fn applied(filters: serde_json::Value, axis: &TimeAxis, dims: &[&str]) -> serde_json::Value {
    let mut v = filters;
    if let Some(m) = v.as_object_mut() {
        m.insert("window".into(), axis.describe());
        m.insert("groupBy".into(), dims.to_vec().into());
    }
    v
}

/// Builds the filtered rows of a window, given the tenant, the ledger state and the axis.
type SelectFor<'a, E> = Box<dyn FnOnce(&str, &AsOf, &TimeAxis) -> Select<E> + Send + 'a>;

/// What one count question is: its permission, rows, flag and how its read is recorded.
struct CountSpec<'a, E: EntityTrait> {
    permission: Permission,
    /// The filter's validation, reported after the permission check.
    valid: AppResult<()>,
    request: StatsRequest,
    dims: Vec<&'static str>,
    /// The filter as the client sees it (for the access record).
    filters: serde_json::Value,
    /// The filtered rows of the window, given the tenant, the ledger state and the axis.
    select: SelectFor<'a, E>,
    table: &'static str,
    flag: &'static str,
    record: (&'static str, EntityType, &'static str),
}

impl Facade {
    /// Answers a count question in one snapshot and records the read.
    async fn count_stats<E: EntityTrait>(&self, spec: CountSpec<'_, E>) -> AppResult<CountStats> {
        let scope = self.scope(spec.permission)?;
        spec.valid?;
        let axis = spec.request.axis()?;
        let limit = spec.request.group_limit()?;
        check_dims(&spec.dims)?;
        let txn = scope.db.begin_snapshot().await?;
        let as_of = as_of(&txn, scope.tenant_id).await?;
        let select = (spec.select)(scope.tenant_id, &as_of, &axis);
        let query = CountQuery {
            select,
            table: spec.table,
            time: "occurred_at",
            dims: &spec.dims,
            flag: spec.flag,
        };
        let cells = count_cells(&txn, scope.db.backend(), &axis, query).await?;
        drop(txn);
        let (topic, entity_type, field) = spec.record;
        self.note_list(
            topic,
            entity_type,
            field,
            applied(spec.filters, &axis, &spec.dims),
            Vec::new(),
        );
        let names = spec.dims.iter().map(|d| d.to_uppercase()).collect();
        Ok(finish(axis, names, cells, limit, as_of))
    }

    /// Counts of the system records the tenant sees (its own and global ones, as the list).
    pub async fn system_record_stats(
        &self,
        filter: SystemFilter,
        group_by: Vec<SystemDimension>,
        request: StatsRequest,
    ) -> AppResult<CountStats> {
        let filters = filter.applied();
        self.count_stats(CountSpec {
            permission: Permission::ReadEvidence,
            valid: filter.validate(),
            request,
            dims: group_by.iter().map(|d| d.name()).collect(),
            filters,
            select: Box::new(move |tenant, _, axis| {
                system_records::Entity::find()
                    .filter(filter.condition(tenant))
                    .filter(system_records::Column::OccurredAt.gte(axis.from))
                    .filter(system_records::Column::OccurredAt.lt(axis.to))
            }),
            table: "system_records",
            flag: "system_records.severity IN ('ERROR', 'CRITICAL')",
            record: ("system", EntityType::SystemRecordStats, "systemRecordStats"),
        })
        .await
    }

    /// Counts of the tenant's ledger entries, of the ledger state the answer names.
    pub async fn audit_stats(
        &self,
        filter: AuditFilter,
        group_by: Vec<AuditDimension>,
        request: StatsRequest,
    ) -> AppResult<CountStats> {
        let filters = filter.applied();
        self.count_stats(CountSpec {
            permission: Permission::ReadAudit,
            valid: filter.validate(),
            request,
            dims: group_by.iter().map(|d| d.name()).collect(),
            filters,
            select: Box::new(move |tenant, as_of, axis| {
                audit_ledger::Entity::find()
                    .filter(filter.condition(tenant))
                    .filter(audit_ledger::Column::Seq.lte(as_of.tree_size))
                    .filter(audit_ledger::Column::OccurredAt.gte(axis.from))
                    .filter(audit_ledger::Column::OccurredAt.lt(axis.to))
            }),
            table: "audit_ledger",
            flag: "audit_ledger.decision = 'DENY'",
            record: ("audit", EntityType::AuditStats, "auditStats"),
        })
        .await
    }
}
