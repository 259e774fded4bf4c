//! Reads a tenant's ledger for verification as fast as the database can hand it out: raw rows
//! in bulk (the columns the entry hash needs, decoded by position, no ORM mapping by name),
//! several ranges of seq read at once on their own pooled connections, and every chunk decoded
//! and hashed on the blocking pool, so that reading, hashing and the chain walk overlap and the
//! hashing uses every core. The async workers only pass chunks along.
//!
//! Chunks arrive in seq order (ties by entry id), each entry with its recomputed hash and its
//! stored `entry_hash` and `prev_hash` parsed, ready for [`super::verify::ChainCheck`].

use std::collections::VecDeque;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{entry_hash_bytes, merkle};
use crate::error::{AppError, AppResult, Context};
use entity::audit_ledger;

/// Seqs per range read (one statement each).
const RANGE: i64 = 8192;

/// An unparsable stored hash is compared as this value, which no SHA-256 produces in practice.
pub(crate) const UNPARSABLE: [u8; 32] = [0xff; 32];

/// One entry's hashes: recomputed from its fields, and as stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hashed {
    pub computed: [u8; 32],
    pub stored: [u8; 32],
    pub prev: [u8; 32],
}

impl Hashed {
    /// Hashes one entry (encoding into `buffer`).
    pub fn of(e: &audit_ledger::Model, buffer: &mut Vec<u8>) -> Hashed {
        Hashed {
            computed: entry_hash_bytes(e, buffer),
            stored: merkle::parse_hash(&e.entry_hash).unwrap_or(UNPARSABLE),
            prev: merkle::parse_hash(&e.prev_hash).unwrap_or(UNPARSABLE),
        }
    }
}

/// Entries of consecutive seqs, in (seq, id) order, with their hashes.
pub(crate) struct Chunk {
    pub entries: Vec<audit_ledger::Model>,
    pub hashes: Vec<Hashed>,
}

/// The columns, in the order [`decode`] reads them.
const COLUMNS: &str = "tenant_id, seq, id, category, event_type, entity_type, entity_id, \
     actor_type, actor_id, action_reason, decision, before_state, after_state, correlation_id, \
     occurred_at, recorded_at, prev_hash, entry_hash";

fn decode_row(r: &QueryResult) -> Result<audit_ledger::Model, sea_orm::DbErr> {
    Ok(audit_ledger::Model {
        tenant_id: r.try_get_by_index(0)?,
        seq: r.try_get_by_index(1)?,
        id: r.try_get_by_index(2)?,
        category: r.try_get_by_index(3)?,
        event_type: r.try_get_by_index(4)?,
        entity_type: r.try_get_by_index(5)?,
        entity_id: r.try_get_by_index(6)?,
        actor_type: r.try_get_by_index(7)?,
        actor_id: r.try_get_by_index(8)?,
        action_reason: r.try_get_by_index(9)?,
        decision: r.try_get_by_index(10)?,
        before_state: r.try_get_by_index(11)?,
        after_state: r.try_get_by_index(12)?,
        correlation_id: r.try_get_by_index(13)?,
        occurred_at: r.try_get_by_index(14)?,
        recorded_at: r.try_get_by_index(15)?,
        prev_hash: r.try_get_by_index(16)?,
        entry_hash: r.try_get_by_index(17)?,
    })
}

/// Decodes and hashes the rows of one range (on a blocking thread).
fn decode(rows: Vec<QueryResult>) -> AppResult<Chunk> {
    let mut entries = rows
        .iter()
        .map(decode_row)
        .collect::<Result<Vec<_>, _>>()
        .context("decode ledger entries for verification")?;
    drop(rows);
    // The statement orders by seq (the primary key's order, which needs no sort); within one
    // seq (only a tampered table has two), a stable order for the walk.
    entries.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
    let mut buffer = Vec::with_capacity(1024);
    let hashes = entries.iter().map(|e| Hashed::of(e, &mut buffer)).collect();
    Ok(Chunk { entries, hashes })
}

/// Reads the entries with `from <= seq < to` (no upper bound with `to: None`), decodes and
/// hashes them on the blocking pool.
async fn read_range(
    conn: DatabaseConnection,
    tenant_id: String,
    from: i64,
    to: Option<i64>,
) -> AppResult<Chunk> {
    let backend = conn.get_database_backend();
    let p = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    };
    let mut values: Vec<sea_orm::Value> = vec![tenant_id.into(), from.into()];
    let mut sql = format!(
        "SELECT {COLUMNS} FROM audit_ledger WHERE tenant_id = {} AND seq >= {}",
        p(1),
        p(2)
    );
    if let Some(to) = to {
        sql.push_str(&format!(" AND seq < {}", p(3)));
        values.push(to.into());
    }
    sql.push_str(" ORDER BY seq");
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .context("read the ledger for verification")?;
    tokio::task::spawn_blocking(move || decode(rows))
        .await
        .map_err(|e| AppError::internal("hash ledger entries for verification", e))?
}

/// The smallest seq at or after `from` (`None` when there is none).
async fn next_seq(conn: &DatabaseConnection, tenant_id: &str, from: i64) -> AppResult<Option<i64>> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT MIN(seq) FROM audit_ledger WHERE tenant_id = $1 AND seq >= $2"
        }
        _ => "SELECT MIN(seq) FROM audit_ledger WHERE tenant_id = ? AND seq >= ?",
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant_id.into(), from.into()],
        ))
        .await
        .context("read the ledger for verification")?;
    match row {
        Some(r) => r
            .try_get_by_index::<Option<i64>>(0)
            .context("read the ledger for verification"),
        None => Ok(None),
    }
}

/// Starts reading the tenant's entries from `from_seq` on; chunks arrive in order on the
/// returned channel (an error ends it). `parallel` ranges are read and hashed at once.
///
/// The ranges are fixed seq intervals up to the head read at the start; the last is open, so
/// entries appended meanwhile are read too. A range that comes back empty before the head
/// (seqs removed or renumbered far away: a tampered ledger) makes the reader jump to the next
/// seq that exists instead of walking every interval in between.
pub(crate) fn read(
    conn: &DatabaseConnection,
    tenant_id: &str,
    from_seq: i64,
    parallel: usize,
) -> (mpsc::Receiver<AppResult<Chunk>>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<AppResult<Chunk>>(1);
    let conn = conn.clone();
    let tenant = tenant_id.to_string();
    let depth = parallel.max(1) + 1;
    let driver = tokio::spawn(async move {
        let mut head = match next_head(&conn, &tenant).await {
            Ok(h) => h,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut next = from_seq;
        let mut issued_last = false;
        let mut in_flight: VecDeque<(Option<i64>, JoinHandle<AppResult<Chunk>>)> = VecDeque::new();
        loop {
            while !issued_last && in_flight.len() < depth {
                let to = (next.saturating_add(RANGE) <= head).then(|| next + RANGE);
                let job = tokio::spawn(read_range(conn.clone(), tenant.clone(), next, to));
                in_flight.push_back((to, job));
                match to {
                    Some(to) => next = to,
                    None => issued_last = true,
                }
            }
            let Some((to, job)) = in_flight.pop_front() else {
                return;
            };
            let chunk = match job.await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    abort(&mut in_flight);
                    return;
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(AppError::internal(
                            "read the ledger for verification",
                            e,
                        )))
                        .await;
                    abort(&mut in_flight);
                    return;
                }
            };
            if chunk.entries.is_empty()
                && let Some(to) = to
            {
                // Nothing in this interval: skip to the next seq that exists, if any; the read
                // after it is open-ended when nothing is left below the head.
                abort(&mut in_flight);
                issued_last = false;
                match next_seq(&conn, &tenant, to).await {
                    Ok(Some(seq)) => next = seq,
                    Ok(None) => {
                        next = to;
                        head = to - 1;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                continue;
            }
            if tx.send(Ok(chunk)).await.is_err() {
                abort(&mut in_flight);
                return;
            }
        }
    });
    (rx, driver)
}

fn abort(in_flight: &mut VecDeque<(Option<i64>, JoinHandle<AppResult<Chunk>>)>) {
    for (_, job) in in_flight.drain(..) {
        job.abort();
    }
}

/// The tenant's highest seq now (0 for an empty ledger).
async fn next_head(conn: &DatabaseConnection, tenant_id: &str) -> AppResult<i64> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT MAX(seq) FROM audit_ledger WHERE tenant_id = $1",
        _ => "SELECT MAX(seq) FROM audit_ledger WHERE tenant_id = ?",
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant_id.into()],
        ))
        .await
        .context("read the ledger head for verification")?;
    Ok(match row {
        Some(r) => r
            .try_get_by_index::<Option<i64>>(0)
            .context("read the ledger head for verification")?
            .unwrap_or(0),
        None => 0,
    })
}
