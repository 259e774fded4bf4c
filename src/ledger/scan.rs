//! Reads a tenant's ledger for verification as fast as the database can hand it out: raw driver
//! rows in bulk (the columns the entry hash needs, borrowed by position, never copied into a
//! model), several ranges of seq read at once on their own pooled connections, and every chunk
//! decoded and hashed on the blocking pool, so that reading, hashing and the chain walk overlap
//! and the hashing uses every core. The async workers only pass chunks along. (These reads go
//! to the driver's pool directly, so SeaORM's statement callback does not see them.)
//!
//! Chunks arrive in seq order (ties by entry id), each entry with its recomputed hash and its
//! stored `entry_hash` and `prev_hash` parsed, ready for [`super::verify::ChainCheck`].

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Row};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{EntryFields, entry_hash_bytes, fields_hash_bytes, merkle};
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

/// One entry as the walk needs it: what it is named by, its hashes, its times.
pub(crate) struct Walked {
    pub seq: i64,
    pub id: String,
    /// The entry's tenant, when it is not the ledger's (a moved entry).
    pub foreign_tenant: Option<String>,
    pub hashed: Hashed,
}

/// Entries of consecutive seqs, in (seq, id) order, with their hashes.
pub(crate) struct Chunk {
    pub entries: Vec<Walked>,
    /// The anchor and export entries among them, whole (the walk reads their claims).
    pub special: Vec<audit_ledger::Model>,
    /// Newest occurred/recorded times among them.
    pub newest: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The stored `entry_hash` of the last one, as text (the report's head).
    pub last_entry_hash: Option<String>,
}

/// The statement of a range: the columns in the order [`fields`] reads them. Literal SQL (the
/// driver's own API takes no other), one per backend and with or without an upper bound.
macro_rules! range_sql {
    ($bounds:literal) => {
        concat!(
            "SELECT tenant_id, seq, id, category, event_type, entity_type, entity_id, ",
            "actor_type, actor_id, action_reason, decision, before_state, after_state, ",
            "correlation_id, occurred_at, recorded_at, prev_hash, entry_hash ",
            "FROM audit_ledger WHERE ",
            $bounds,
            " ORDER BY seq"
        )
    };
}

/// Borrows an entry's fields from a row, by position (no copy of its text).
fn fields<'r, R>(r: &'r R) -> Result<EntryFields<'r>, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(EntryFields {
        tenant_id: r.try_get(0)?,
        seq: r.try_get(1)?,
        id: r.try_get(2)?,
        category: r.try_get(3)?,
        event_type: r.try_get(4)?,
        entity_type: r.try_get(5)?,
        entity_id: r.try_get(6)?,
        actor_type: r.try_get(7)?,
        actor_id: r.try_get(8)?,
        action_reason: r.try_get(9)?,
        decision: r.try_get(10)?,
        before_state: r.try_get(11)?,
        after_state: r.try_get(12)?,
        correlation_id: r.try_get(13)?,
        occurred_at: r.try_get(14)?,
        recorded_at: r.try_get(15)?,
        prev_hash: r.try_get(16)?,
        entry_hash: r.try_get(17)?,
    })
}

/// Decodes and hashes the rows of one range (on a blocking thread).
fn walk_rows<R>(rows: &[R], tenant_id: &str) -> AppResult<Chunk>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let all = rows
        .iter()
        .map(fields)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::internal("decode ledger entries for verification", e))?;
    // The statement orders by seq (the primary key's order, which needs no sort); within one
    // seq (only a tampered table has two), a stable order for the walk.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| (all[a].seq, all[a].id).cmp(&(all[b].seq, all[b].id)));
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = Chunk {
        entries: Vec::with_capacity(all.len()),
        special: Vec::new(),
        newest: None,
        last_entry_hash: order.last().map(|&i| all[i].entry_hash.to_string()),
    };
    for &i in &order {
        let f = &all[i];
        chunk.entries.push(Walked {
            seq: f.seq,
            id: f.id.to_string(),
            foreign_tenant: (f.tenant_id != tenant_id).then(|| f.tenant_id.to_string()),
            hashed: Hashed {
                computed: fields_hash_bytes(f, &mut buffer),
                stored: merkle::parse_hash(f.entry_hash).unwrap_or(UNPARSABLE),
                prev: merkle::parse_hash(f.prev_hash).unwrap_or(UNPARSABLE),
            },
        });
        if f.category == "ANCHOR" || f.category == "EXPORT" {
            chunk.special.push(f.to_model());
        }
        chunk.newest = Some(
            chunk
                .newest
                .map_or((f.occurred_at, f.recorded_at), |(o, r)| {
                    (o.max(f.occurred_at), r.max(f.recorded_at))
                }),
        );
    }
    Ok(chunk)
}

/// Reads the entries with `from <= seq < to` (no upper bound with `to: None`) straight from the
/// driver's pool (rows stay as the driver received them), then decodes and hashes them on the
/// blocking pool.
async fn read_range(
    conn: DatabaseConnection,
    tenant_id: String,
    from: i64,
    to: Option<i64>,
) -> AppResult<Chunk> {
    let context = "read the ledger for verification";
    let hashing = "hash ledger entries for verification";
    match conn.get_database_backend() {
        DbBackend::Postgres => {
            let sql = match to {
                Some(_) => range_sql!("tenant_id = $1 AND seq >= $2 AND seq < $3"),
                None => range_sql!("tenant_id = $1 AND seq >= $2"),
            };
            let mut q = sqlx::query::<sqlx::Postgres>(sql)
                .bind(tenant_id.clone())
                .bind(from);
            if let Some(to) = to {
                q = q.bind(to);
            }
            let rows = q
                .fetch_all(conn.get_postgres_connection_pool())
                .await
                .map_err(|e| AppError::internal(context, e))?;
            tokio::task::spawn_blocking(move || walk_rows(&rows, &tenant_id))
                .await
                .map_err(|e| AppError::internal(hashing, e))?
        }
        DbBackend::Sqlite => {
            let sql = match to {
                Some(_) => range_sql!("tenant_id = ? AND seq >= ? AND seq < ?"),
                None => range_sql!("tenant_id = ? AND seq >= ?"),
            };
            let mut q = sqlx::query::<sqlx::Sqlite>(sql)
                .bind(tenant_id.clone())
                .bind(from);
            if let Some(to) = to {
                q = q.bind(to);
            }
            let rows = q
                .fetch_all(conn.get_sqlite_connection_pool())
                .await
                .map_err(|e| AppError::internal(context, e))?;
            tokio::task::spawn_blocking(move || walk_rows(&rows, &tenant_id))
                .await
                .map_err(|e| AppError::internal(hashing, e))?
        }
        other => Err(AppError::internal(
            context,
            format!("unsupported database backend {other:?}"),
        )),
    }
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
