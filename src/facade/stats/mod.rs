//! Aggregates for dashboards: counts, sums and exact percentiles of runs (`runs`), and counts
//! of system records and ledger entries (`counts`), per group and per time bucket (`axis`),
//! each answer stamped with the ledger state it reflects ([`AsOf`]).
//!
//! Answers are bounded: at most [`axis::MAX_BUCKETS`] buckets, and at most `groupLimit` (≤
//! [`MAX_GROUPS`]) groups, the groups with the most rows first; the rest are folded into one
//! `other` group that says how many it holds. Counts and sums are exact. Every figure is read
//! in one snapshot of the database together with the ledger's size, so it can be reproduced
//! from the evidence of that ledger state.

pub mod axis;
mod counts;
mod runs;

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};

pub use axis::{Bucket, BucketUnit, TimeAxis};
pub use counts::{AuditDimension, CountMeasures, CountStats, SystemDimension};
pub use runs::{PercentilesAsked, RunDimension, RunMeasures, RunStats, RunStatsAsked};

use crate::domain::Timestamp;
use crate::error::{AppError, AppResult, Context};
use entity::ledger_checkpoints;

/// At most this many groups per answer (besides `other`).
pub const MAX_GROUPS: usize = 100;
/// Groups per answer when the caller does not say.
pub const DEFAULT_GROUPS: usize = 10;

/// The window, buckets and group bound a stats query asks for.
#[derive(Clone, Debug)]
pub struct StatsRequest {
    pub from: Timestamp,
    pub to: Timestamp,
    pub bucket: Option<BucketUnit>,
    pub time_zone: String,
    pub group_limit: Option<i32>,
}

impl StatsRequest {
    fn axis(&self) -> AppResult<TimeAxis> {
        TimeAxis::new(self.from.0, self.to.0, self.bucket, &self.time_zone)
    }

    fn group_limit(&self) -> AppResult<usize> {
        match self.group_limit {
            None => Ok(DEFAULT_GROUPS),
            Some(n) if (1..=MAX_GROUPS as i32).contains(&n) => Ok(n as usize),
            Some(n) => Err(AppError::bad_input(format!(
                "groupLimit must be 1 to {MAX_GROUPS}, got {n}"
            ))),
        }
    }
}

/// Which ledger state an answer reflects: the tenant's tree size when it was read, and the
/// newest signed checkpoint at or before it.
#[derive(Clone, Debug)]
pub struct AsOf {
    pub tree_size: i64,
    pub checkpoint: Option<ledger_checkpoints::Model>,
}

/// A group's key: one value per grouped dimension (`None`: the row has no value there).
pub type GroupKey = Vec<Option<String>>;

/// Groups with their per-bucket values, the largest `limit` kept and the rest folded.
pub struct Grouped<M> {
    /// Kept groups, largest first: key, total and one value per bucket.
    pub groups: Vec<(GroupKey, M, Vec<M>)>,
    /// The folded groups' total and per-bucket values, and how many groups they are.
    pub other: Option<(M, Vec<M>, usize)>,
}

/// What per-bucket values of a group add up to.
pub trait Measure: Clone + Default {
    fn merge(&mut self, other: &Self);
    /// Rows counted (ranks groups).
    fn rows(&self) -> i64;
}

/// Folds cells `(group, bucket index) → value` into ranked groups.
fn group<M: Measure>(
    cells: HashMap<(GroupKey, usize), M>,
    buckets: usize,
    limit: usize,
) -> Grouped<M> {
    let mut by_group: BTreeMap<GroupKey, (M, Vec<M>)> = BTreeMap::new();
    for ((key, bucket), m) in cells {
        let g = by_group
            .entry(key)
            .or_insert_with(|| (M::default(), vec![M::default(); buckets]));
        g.0.merge(&m);
        if let Some(slot) = g.1.get_mut(bucket) {
            slot.merge(&m);
        }
    }
    let mut all: Vec<(GroupKey, M, Vec<M>)> =
        by_group.into_iter().map(|(k, (t, s))| (k, t, s)).collect();
    // Largest first; ties in key order (the sort is stable over the key-ordered map).
    all.sort_by_key(|(_, t, _)| std::cmp::Reverse(t.rows()));
    let rest = all.split_off(all.len().min(limit));
    let other = (!rest.is_empty()).then(|| {
        let mut total = M::default();
        let mut series = vec![M::default(); buckets];
        for (_, t, s) in &rest {
            total.merge(t);
            for (slot, v) in series.iter_mut().zip(s) {
                slot.merge(v);
            }
        }
        (total, series, rest.len())
    });
    Grouped { groups: all, other }
}

/// Reads the ledger state of the tenant inside the snapshot `txn`.
async fn as_of(txn: &DatabaseTransaction, tenant_id: &str) -> AppResult<AsOf> {
    // Seqs start at 1: the newest seq is the number of entries.
    let tree_size = crate::ledger::head_seq(txn, tenant_id).await?.unwrap_or(0);
    use sea_orm::ColumnTrait;
    let checkpoint = ledger_checkpoints::Entity::find()
        .filter(ledger_checkpoints::Column::TenantId.eq(tenant_id))
        .filter(ledger_checkpoints::Column::TreeSize.lte(tree_size))
        .order_by_desc(ledger_checkpoints::Column::TreeSize)
        .one(txn)
        .await
        .context("read the checkpoint of a stats answer")?;
    Ok(AsOf {
        tree_size,
        checkpoint,
    })
}

/// Reads the rows of a built statement.
async fn query<C: ConnectionTrait>(
    conn: &C,
    statement: sea_orm::Statement,
    what: &str,
) -> AppResult<Vec<sea_orm::QueryResult>> {
    conn.query_all_raw(statement)
        .await
        .with_context(|| what.to_string())
}
