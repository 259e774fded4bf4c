//! Group commit for ledger entries that are not part of an evidence write (verification
//! records now; identity, authorization and access records next): concurrent appends queue
//! here and one task writes everything queued in one transaction and one commit, then answers
//! each caller once that commit is durable.
//!
//! Appends that belong with evidence (anchors, producer events) go through
//! [`super::append`] inside the evidence transaction instead; both paths share the encoding,
//! the per-tenant lock and the seq assignment of [`super::append`].

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

use super::{NewEntry, append};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use entity::audit_ledger;

/// Requests waiting at most; a caller beyond this waits for room (back-pressure).
const QUEUE: usize = 65_536;

/// Most requests written by one transaction.
const MAX_GROUP: usize = 4096;

type Reply = oneshot::Sender<AppResult<Vec<audit_ledger::Model>>>;

struct Request {
    tenant_id: String,
    entries: Vec<NewEntry>,
    reply: Reply,
}

/// Handle to the group-commit task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Appender {
    queue: mpsc::Sender<Request>,
}

impl Appender {
    /// Starts the task that writes queued appends to `db`. It ends when every handle is gone.
    pub fn start(db: Db) -> Appender {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, rx));
        Appender { queue }
    }

    /// Appends entries to a tenant's ledger; returns them as stored once committed.
    pub async fn append(
        &self,
        tenant_id: &str,
        entries: Vec<NewEntry>,
    ) -> AppResult<Vec<audit_ledger::Model>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || AppError::internal("append to the ledger", "the appender has stopped");
        self.queue
            .send(Request {
                tenant_id: tenant_id.to_string(),
                entries,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        // The writer that woke this task is usually the first of many that its last commit
        // released: let the others run and queue their appends before the group is taken.
        tokio::task::yield_now().await;
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        match write(&db, &group).await {
            Ok(mut stored) => {
                for r in group.into_iter().rev() {
                    let mine = stored.pop().unwrap_or_default();
                    let _ = r.reply.send(Ok(mine));
                }
            }
            // One bad request must not fail the others: write each on its own.
            Err(_) if group.len() > 1 => {
                for r in group {
                    let result = write(&db, std::slice::from_ref(&r)).await;
                    let _ = r
                        .reply
                        .send(result.map(|mut v| v.pop().unwrap_or_default()));
                }
            }
            Err(e) => {
                for r in group {
                    let _ = r.reply.send(Err(AppError::internal(
                        "append to the ledger",
                        e.describe(),
                    )));
                }
            }
        }
    }
}

/// Writes a group in one transaction: tenants in sorted order (every process locks tenants in
/// the same order, so two appenders never wait on each other in a cycle), each tenant's
/// requests in arrival order. Returns each request's entries, in request order.
async fn write(db: &Db, group: &[Request]) -> AppResult<Vec<Vec<audit_ledger::Model>>> {
    let mut by_tenant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in group.iter().enumerate() {
        by_tenant.entry(r.tenant_id.as_str()).or_default().push(i);
    }
    let tx = db.begin_write().await?;
    let mut out: Vec<Vec<audit_ledger::Model>> = vec![Vec::new(); group.len()];
    for (tenant, requests) in by_tenant {
        let entries: Vec<NewEntry> = requests
            .iter()
            .flat_map(|i| group[*i].entries.iter().cloned())
            .collect();
        let mut stored = append(&tx.txn, tenant, entries).await?.into_iter();
        for i in requests {
            out[i] = stored.by_ref().take(group[i].entries.len()).collect();
        }
    }
    tx.commit().await?;
    Ok(out)
}
