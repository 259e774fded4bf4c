//! One ledger's feed: what was committed to it since a seq, read once per server and shared by
//! every subscription of that ledger. A [`Batch`] holds a contiguous range of seqs with the
//! ledger entries in it and the evidence records their anchor entries cover, each record
//! tagged with its anchor's seq, in commit order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{broadcast, watch};

use crate::db::Db;
use crate::domain::LedgerCategory;
use crate::error::{AppResult, Context};
use crate::ledger::PLATFORM_LEDGER;
use crate::ledger::vocabulary::EventType;
use crate::locked;
use entity::{audit_ledger, llm_runs, system_records, trace_steps};

/// Most ledger entries one batch reads.
const BATCH_ENTRIES: u64 = 500;

/// What a batch reads besides the anchors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wants {
    /// Every ledger entry (the audit tail), not only the anchors.
    pub entries: bool,
    pub runs: bool,
    pub steps: bool,
    pub system: bool,
}

impl Wants {
    pub const ALL: Wants = Wants {
        entries: true,
        runs: true,
        steps: true,
        system: true,
    };

    fn kinds(self) -> [bool; 4] {
        [self.entries, self.runs, self.steps, self.system]
    }

    /// Whether a batch read for `self` holds everything `other` wants.
    fn covers(self, other: Wants) -> bool {
        self.kinds()
            .iter()
            .zip(other.kinds())
            .all(|(have, want)| *have || !want)
    }
}

/// The seqs `after + 1 ..= last` of one ledger: its entries (every one, or the anchors only)
/// and the records those anchors cover, each with its anchor's seq, in commit order.
#[derive(Debug, Default)]
pub struct Batch {
    pub after: i64,
    pub last: i64,
    pub entries: Vec<audit_ledger::Model>,
    pub runs: Vec<(i64, llm_runs::Model)>,
    pub steps: Vec<(i64, trace_steps::Model)>,
    pub system: Vec<(i64, system_records::Model)>,
}

/// Reads what `ledger` committed after seq `after`, up to seq `upto` (or fewer seqs, when they
/// hold more than a batch of entries).
pub async fn read_batch(
    db: &Db,
    ledger: &str,
    after: i64,
    upto: i64,
    wants: Wants,
) -> AppResult<Batch> {
    use audit_ledger::Column as L;
    let mut select = audit_ledger::Entity::find()
        .filter(L::TenantId.eq(ledger))
        .filter(L::Seq.gt(after))
        .filter(L::Seq.lte(upto));
    if !wants.entries {
        select = select.filter(L::Category.eq(LedgerCategory::Anchor.as_str()));
    }
    let entries = select
        .order_by_asc(L::Seq)
        .limit(BATCH_ENTRIES)
        .all(&db.conn)
        .await
        .with_context(|| format!("read ledger {ledger} after seq {after} for subscriptions"))?;
    let last = match entries.last() {
        Some(e) if entries.len() as u64 == BATCH_ENTRIES => e.seq,
        _ => upto,
    };
    // Which anchors cover records of each kind (an anchor's commitment counts them).
    let mut anchors: [HashMap<String, i64>; 3] = Default::default();
    for e in &entries {
        if e.event_type != EventType::EvidenceBatchAnchored.as_str() {
            continue;
        }
        let counts = e
            .after_state
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        let has = |table: &str| {
            counts
                .as_ref()
                .and_then(|c| c["counts"][table].as_u64())
                .is_none_or(|n| n > 0)
        };
        for (i, table) in ["llm_runs", "trace_steps", "system_records"]
            .iter()
            .enumerate()
        {
            if has(table) {
                anchors[i].insert(e.entity_id.clone(), e.seq);
            }
        }
    }
    let [run_anchors, step_anchors, system_anchors] = anchors;
    let platform = ledger == PLATFORM_LEDGER;
    let mut batch = Batch {
        after,
        last,
        entries: if wants.entries { entries } else { Vec::new() },
        ..Batch::default()
    };
    if wants.runs && !platform && !run_anchors.is_empty() {
        use llm_runs::Column as C;
        let rows = llm_runs::Entity::find()
            .filter(C::TenantId.eq(ledger))
            .filter(C::AnchorId.is_in(run_anchors.keys().cloned()))
            .all(&db.conn)
            .await
            .context("read the runs of new anchors")?;
        batch.runs = tag(rows, &run_anchors, |r| r.anchor_id.as_deref());
        batch
            .runs
            .sort_by(|a, b| (a.0, &a.1.run_id).cmp(&(b.0, &b.1.run_id)));
    }
    if wants.steps && !platform && !step_anchors.is_empty() {
        use trace_steps::Column as C;
        let rows = trace_steps::Entity::find()
            .filter(C::TenantId.eq(ledger))
            .filter(C::AnchorId.is_in(step_anchors.keys().cloned()))
            .all(&db.conn)
            .await
            .context("read the steps of new anchors")?;
        batch.steps = tag(rows, &step_anchors, |s| s.anchor_id.as_deref());
        batch.steps.sort_by(|a, b| {
            (a.0, &a.1.trace_id, a.1.step_index).cmp(&(b.0, &b.1.trace_id, b.1.step_index))
        });
    }
    if wants.system && !system_anchors.is_empty() {
        use system_records::Column as C;
        let owner = if platform {
            C::TenantId.is_null()
        } else {
            C::TenantId.eq(ledger)
        };
        let rows = system_records::Entity::find()
            .filter(owner)
            .filter(C::AnchorId.is_in(system_anchors.keys().cloned()))
            .all(&db.conn)
            .await
            .context("read the system records of new anchors")?;
        batch.system = tag(rows, &system_anchors, |s| s.anchor_id.as_deref());
        batch
            .system
            .sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    }
    Ok(batch)
}

fn tag<M>(
    rows: Vec<M>,
    anchors: &HashMap<String, i64>,
    anchor_of: impl Fn(&M) -> Option<&str>,
) -> Vec<(i64, M)> {
    rows.into_iter()
        .filter_map(|r| {
            let seq = anchor_of(&r).and_then(|a| anchors.get(a)).copied()?;
            Some((seq, r))
        })
        .collect()
}

/// One ledger's shared reader: the highest seq known committed (`head`), and the batches read
/// up to `position`, broadcast to the subscriptions of the ledger.
pub struct Feed {
    pub ledger: String,
    head: watch::Sender<i64>,
    state: Mutex<FeedState>,
    /// Subscriptions wanting each kind (entries, runs, steps, system): the feed reads only
    /// those, and broadcasts only batches that hold some.
    interest: [AtomicUsize; 4],
}

/// A subscription's interest in a feed's kinds of records, counted until dropped.
pub struct Interest {
    feed: Arc<Feed>,
    wants: Wants,
}

impl Drop for Interest {
    fn drop(&mut self) {
        for (count, wanted) in self.feed.interest.iter().zip(self.wants.kinds()) {
            if wanted {
                count.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

struct FeedState {
    /// Every seq up to here was read and broadcast.
    position: i64,
    tx: broadcast::Sender<Arc<Batch>>,
}

impl Feed {
    /// A feed of `ledger` that starts after seq `position`, buffering `capacity` batches.
    pub fn new(ledger: &str, position: i64, capacity: usize) -> Feed {
        Feed {
            ledger: ledger.to_string(),
            head: watch::channel(position).0,
            state: Mutex::new(FeedState {
                position,
                tx: broadcast::channel(capacity.max(1)).0,
            }),
            interest: Default::default(),
        }
    }

    /// What this feed's subscriptions want now.
    pub fn wanted(&self) -> Wants {
        let [entries, runs, steps, system] = self
            .interest
            .each_ref()
            .map(|c| c.load(Ordering::SeqCst) > 0);
        Wants {
            entries,
            runs,
            steps,
            system,
        }
    }

    /// Notes that the ledger reached `seq` (from a notification or a poll).
    pub fn advance(&self, seq: i64) {
        self.head.send_if_modified(|head| {
            let grew = seq > *head;
            if grew {
                *head = seq;
            }
            grew
        });
    }

    pub fn watch_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    pub fn position(&self) -> i64 {
        locked(&self.state).position
    }

    /// A receiver of the batches after the position returned with it, for a subscription
    /// that wants `wants`: replaying up to that position from the database, then the
    /// receiver, misses nothing and repeats nothing. The interest is counted before the
    /// position is taken, so a batch read without it is never published to this receiver
    /// (see [`Feed::publish`]).
    pub fn subscribe(
        self: &Arc<Self>,
        wants: Wants,
    ) -> (broadcast::Receiver<Arc<Batch>>, i64, Interest) {
        for (count, wanted) in self.interest.iter().zip(wants.kinds()) {
            if wanted {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
        let interest = Interest {
            feed: self.clone(),
            wants,
        };
        let state = locked(&self.state);
        (state.tx.subscribe(), state.position, interest)
    }

    pub fn receivers(&self) -> usize {
        locked(&self.state).tx.receiver_count()
    }

    /// Broadcasts a batch read from the position on for `read_for`, unless a subscription
    /// came that wants more than it holds (the range is read again); a batch that holds
    /// nothing anyone wants only moves the position.
    pub fn publish(&self, batch: Batch, read_for: Wants) {
        let mut state = locked(&self.state);
        if batch.after != state.position || batch.last <= state.position {
            return;
        }
        if !read_for.covers(self.wanted()) {
            return;
        }
        state.position = batch.last;
        let empty = batch.entries.is_empty()
            && batch.runs.is_empty()
            && batch.steps.is_empty()
            && batch.system.is_empty();
        if !empty {
            let _ = state.tx.send(Arc::new(batch));
        }
    }
}
