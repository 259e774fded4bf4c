//! Live subscriptions' read side (docs/live.md): what a subscription delivers, in commit
//! order, without a gap or a repeat, however often its client reconnects.
//!
//! - **Order**: a tenant's ledger numbers its entries in commit order, and every evidence
//!   record is anchored by one entry; an item's place is its anchor's seq, then its key
//!   ([`cursor`]). A subscription's cursor is a [`cursor::Mark`] in that order.
//! - **Signals**: on PostgreSQL a trigger notifies `runledger_ledger` with a tenant and its new
//!   head seq when a transaction that appended to its ledger commits (any instance, the CLI,
//!   plain SQL); on SQLite this process's commits wake the [`Hub`], which also polls for other
//!   processes' every second. Either way a signal only says "read from the ledger": the rows
//!   are read from the database, so a lost signal delays an event and never loses one.
//! - **Sharing**: one [`feed::Feed`] per ledger with subscribers reads each new range once and
//!   broadcasts it; subscriptions filter it in memory. The broadcast keeps
//!   [`LiveSettings::buffer`] batches: a subscription that falls further behind (a consumer
//!   slower than the ledger) ends with SLOW_CONSUMER and the cursor to resume from, so memory
//!   stays bounded whatever clients do.
//! - **Resume**: a subscription started after a cursor reads the ledger from the database up
//!   to the feed's position, then takes the feed's batches after that position.
//! - **Keys**: the hub counts open subscriptions per key and in all, and re-reads the keys of
//!   open subscriptions every second: a revoked or deleted key's subscriptions are told at once.

pub mod cursor;
pub mod feed;
pub mod streams;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::BoxStream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::{broadcast, watch};

use crate::db::Db;
use crate::error::{AppError, AppResult, Context, Interruption};
use crate::locked;
use cursor::Mark;
use entity::{api_keys, audit_ledger};
use feed::{Batch, Feed, Wants};

pub use streams::{LiveEvent, LiveExport};

/// The notification channel of migration 11's trigger.
const CHANNEL: &str = "runledger_ledger";
/// How often SQLite ledgers are polled for other processes' commits, and PostgreSQL ones
/// re-read in case a notification was lost.
const SQLITE_POLL: Duration = Duration::from_secs(1);
const POSTGRES_POLL: Duration = Duration::from_secs(5);
/// How often the keys of open subscriptions are read again.
const KEY_CHECK: Duration = Duration::from_secs(1);
/// How long a feed without subscribers lives on.
const FEED_IDLE: Duration = Duration::from_secs(10);
/// Consecutive overflows a subscription may catch up from before it counts as slow.
const CATCH_UPS: u32 = 2;

/// Bounds of live subscriptions.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// Batches a ledger's feed keeps for its slowest subscriber.
    pub buffer: usize,
    /// Events a subscription may have waiting for its client.
    pub queue: usize,
    /// How long a subscription waits for room in its queue before its client counts as
    /// stopped and is cut off with SLOW_CONSUMER and the cursor to resume from.
    pub stall: Duration,
    /// Open subscriptions allowed per API key.
    pub max_per_key: usize,
    /// Open subscriptions allowed on this server.
    pub max_total: usize,
    /// How often a subscription's deliveries are recorded in the ledger.
    pub record_interval: Duration,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            buffer: 256,
            queue: 64,
            stall: Duration::from_secs(5),
            max_per_key: 100,
            max_total: 10_000,
            record_interval: Duration::from_secs(10),
        }
    }
}

/// The server's live subscriptions: feeds by ledger, open subscriptions by key, shutdown.
pub struct Hub {
    db: Db,
    settings: LiveSettings,
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    keys: Mutex<HashMap<String, KeyEntry>>,
    open: AtomicUsize,
    shutdown: watch::Sender<bool>,
    /// Told whenever a subscription closes.
    closed: tokio::sync::Notify,
}

struct KeyEntry {
    open: usize,
    revoked: watch::Sender<bool>,
}

/// One open subscription, counted against its key and the server until dropped.
pub struct OpenSubscription {
    hub: Arc<Hub>,
    key_id: String,
    revoked: watch::Receiver<bool>,
}

impl OpenSubscription {
    /// Resolves when the subscription's key is revoked or deleted.
    pub async fn revoked(&mut self) {
        let _ = self.revoked.wait_for(|r| *r).await;
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::SeqCst);
        self.hub.closed.notify_waiters();
        let mut keys = locked(&self.hub.keys);
        if let Some(entry) = keys.get_mut(&self.key_id) {
            entry.open -= 1;
            if entry.open == 0 {
                keys.remove(&self.key_id);
            }
        }
    }
}

impl Hub {
    /// The hub of a server on `db`, with its signal source and key checker running.
    pub fn start(db: Db, settings: LiveSettings) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            db,
            settings,
            feeds: Mutex::default(),
            keys: Mutex::default(),
            open: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
            closed: tokio::sync::Notify::new(),
        });
        match hub.db.backend() {
            DbBackend::Postgres => tokio::spawn(listen(hub.clone())),
            _ => tokio::spawn(poll_commits(hub.clone())),
        };
        tokio::spawn(check_keys(hub.clone()));
        hub
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Subscriptions open now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Ends every subscription (the server is stopping) and the hub's tasks.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits (at most `limit`) until every subscription has closed and recorded its end.
    pub async fn wait_closed(&self, limit: Duration) {
        let waiting = async {
            loop {
                let closed = self.closed.notified();
                if self.open_count() == 0 {
                    return;
                }
                closed.await;
            }
        };
        let _ = tokio::time::timeout(limit, waiting).await;
    }

    /// Resolves when the server begins to stop.
    pub fn watch_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Counts a new subscription of `key_id`; TOO_MANY_SUBSCRIPTIONS over a limit.
    pub fn open(self: &Arc<Self>, key_id: &str) -> AppResult<OpenSubscription> {
        let mut keys = locked(&self.keys);
        let entry = keys.entry(key_id.to_string()).or_insert_with(|| KeyEntry {
            open: 0,
            revoked: watch::channel(false).0,
        });
        if entry.open >= self.settings.max_per_key {
            return Err(AppError::TooManySubscriptions(format!(
                "this API key has {} subscriptions open, the most allowed; complete one first",
                entry.open
            )));
        }
        if self.open.load(Ordering::SeqCst) >= self.settings.max_total {
            return Err(AppError::TooManySubscriptions(format!(
                "the server has {} subscriptions open, the most it allows; retry later",
                self.settings.max_total
            )));
        }
        entry.open += 1;
        self.open.fetch_add(1, Ordering::SeqCst);
        Ok(OpenSubscription {
            hub: self.clone(),
            key_id: key_id.to_string(),
            revoked: entry.revoked.subscribe(),
        })
    }

    /// The highest seq of a ledger (0 when empty).
    async fn head(&self, ledger: &str) -> AppResult<i64> {
        Ok(crate::ledger::head_seq(&self.db.conn, ledger)
            .await?
            .unwrap_or(0))
    }

    /// A receiver of `ledger`'s batches after the position returned with it, for a
    /// subscription wanting `wants` (the feed is made on first use).
    async fn subscribe(self: &Arc<Self>, ledger: &str, wants: Wants) -> AppResult<Subscribed> {
        if let Some(feed) = locked(&self.feeds).get(ledger) {
            return Ok(feed.subscribe(wants));
        }
        let head = self.head(ledger).await?;
        let mut feeds = locked(&self.feeds);
        if let Some(feed) = feeds.get(ledger) {
            return Ok(feed.subscribe(wants));
        }
        let feed = Arc::new(Feed::new(ledger, head, self.settings.buffer));
        let subscribed = feed.subscribe(wants);
        feeds.insert(ledger.to_string(), feed.clone());
        tokio::spawn(run_feed(self.clone(), feed));
        Ok(subscribed)
    }

    /// Removes `feed` if nobody receives from it; whether it did.
    fn retire(&self, feed: &Arc<Feed>) -> bool {
        let mut feeds = locked(&self.feeds);
        if feed.receivers() > 0 {
            return false;
        }
        if feeds
            .get(&feed.ledger)
            .is_some_and(|f| Arc::ptr_eq(f, feed))
        {
            feeds.remove(&feed.ledger);
        }
        true
    }

    fn feed(&self, ledger: &str) -> Option<Arc<Feed>> {
        locked(&self.feeds).get(ledger).cloned()
    }

    /// Reads the head of every fed ledger (after a lost notification, or on SQLite).
    async fn refresh_heads(&self) -> AppResult<()> {
        let ledgers: Vec<String> = locked(&self.feeds).keys().cloned().collect();
        if ledgers.is_empty() {
            return Ok(());
        }
        use audit_ledger::Column as L;
        let heads: Vec<(String, Option<i64>)> = audit_ledger::Entity::find()
            .select_only()
            .column(L::TenantId)
            .column_as(L::Seq.max(), "head")
            .filter(L::TenantId.is_in(ledgers))
            .group_by(L::TenantId)
            .into_tuple()
            .all(&self.db.conn)
            .await
            .context("read the ledger heads of live feeds")?;
        for (ledger, head) in heads {
            if let (Some(feed), Some(head)) = (self.feed(&ledger), head) {
                feed.advance(head);
            }
        }
        Ok(())
    }
}

/// A feed's receiver, the position it starts after, and the interest that keeps the feed
/// reading what the subscription wants.
type Subscribed = (broadcast::Receiver<Arc<Batch>>, i64, feed::Interest);

/// Reads a ledger's new ranges as its head grows and broadcasts them, until nobody listens.
async fn run_feed(hub: Arc<Hub>, feed: Arc<Feed>) {
    let mut head = feed.watch_head();
    let mut shutdown = hub.watch_shutdown();
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            hub.retire(&feed);
            return;
        }
        let target = *head.borrow_and_update();
        let position = feed.position();
        if target > position {
            let wants = feed.wanted();
            match feed::read_batch(&hub.db, &feed.ledger, position, target, wants).await {
                Ok(batch) => {
                    failures = 0;
                    feed.publish(batch, wants);
                }
                Err(e) => {
                    e.log();
                    failures = (failures + 1).min(5);
                    tokio::time::sleep(Duration::from_millis(200 << failures)).await;
                }
            }
            continue;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(FEED_IDLE) => if hub.retire(&feed) { return },
        }
    }
}

/// SQLite: wakes the feeds on this process's commits, and polls for other processes'.
async fn poll_commits(hub: Arc<Hub>) {
    let mut commits = hub.db.watch_commits();
    let mut shutdown = hub.watch_shutdown();
    loop {
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(SQLITE_POLL) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = hub.refresh_heads().await {
            e.log();
        }
    }
}

/// PostgreSQL: follows the ledger notifications of every instance; re-reads the heads after
/// (re)subscribing and every few seconds, in case one was lost.
async fn listen(hub: Arc<Hub>) {
    let mut shutdown = hub.watch_shutdown();
    let mut retry = Duration::from_secs(1);
    loop {
        let why = match subscribe_ledgers(&hub).await {
            Ok(mut listener) => {
                retry = Duration::from_secs(1);
                loop {
                    let _ = hub.refresh_heads().await.map_err(|e| e.log());
                    tokio::select! {
                        n = listener.try_recv() => match n {
                            Ok(Some(n)) => note(&hub, n.payload()),
                            Ok(None) => break "the connection was lost".to_string(),
                            Err(e) => break e.to_string(),
                        },
                        _ = tokio::time::sleep(POSTGRES_POLL) => {}
                        _ = shutdown.changed() => return,
                    }
                    // Drain what else arrived before reading heads again.
                    while let Some(n) = listener.next_buffered() {
                        note(&hub, n.payload());
                    }
                }
            }
            Err(e) => e,
        };
        tracing::warn!(reason = %why, retry_secs = retry.as_secs(), "lost the ledger notifications; live subscriptions poll until they are back");
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = shutdown.changed() => return,
        }
        let _ = hub.refresh_heads().await.map_err(|e| e.log());
        retry = (retry * 2).min(Duration::from_secs(30));
    }
}

async fn subscribe_ledgers(_hub: &Hub) -> Result<PgListener, String> {
    let mut listener = PgListener::connect(_hub.db.url())
        .await
        .map_err(|e| e.to_string())?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await.map_err(|e| e.to_string())?;
    Ok(listener)
}

/// Applies one notification: `<ledger> <seq>`.
fn note(hub: &Hub, payload: &str) {
    let Some((ledger, seq)) = payload.rsplit_once(' ') else {
        return;
    };
    if let (Some(feed), Ok(seq)) = (hub.feed(ledger), seq.parse::<i64>()) {
        feed.advance(seq);
    }
}

/// Re-reads the keys of open subscriptions; tells the subscriptions of a revoked or deleted
/// key.
async fn check_keys(hub: Arc<Hub>) {
    let mut shutdown = hub.watch_shutdown();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEY_CHECK) => {}
            _ = shutdown.changed() => return,
        }
        let ids: Vec<String> = locked(&hub.keys).keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        let found = api_keys::Entity::find()
            .filter(api_keys::Column::Id.is_in(ids.clone()))
            .all(&hub.db.conn)
            .await;
        let found = match found {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the keys of open subscriptions");
                continue;
            }
        };
        let live: std::collections::HashSet<&str> = found
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| k.id.as_str())
            .collect();
        let keys = locked(&hub.keys);
        for id in ids.iter().filter(|id| !live.contains(id.as_str())) {
            if let Some(entry) = keys.get(id) {
                entry.revoked.send_replace(true);
            }
        }
    }
}

/// Picks a subscription's items out of a batch: `(seq, key, item)` in commit order.
pub(crate) type Extract<T> = Arc<dyn Fn(&Batch) -> Vec<(i64, String, T)> + Send + Sync>;

/// An item of a tail, or why it ended (with the mark it had reached).
pub(crate) type TailItem<T> = Result<(Mark, T), (AppError, Mark)>;

/// One ledger's items for a subscription: replayed from the database after `after` (or from
/// now), then live; ends with SLOW_CONSUMER when it falls behind the feed's buffer.
pub(crate) async fn tail<T: Send + 'static>(
    hub: &Arc<Hub>,
    ledger: &str,
    wants: Wants,
    after: Option<Mark>,
    extract: Extract<T>,
) -> AppResult<(Mark, BoxStream<'static, TailItem<T>>)> {
    let (rx, position, interest) = hub.subscribe(ledger, wants).await?;
    let mark = after.unwrap_or(Mark::through(position));
    let start = mark.clone();
    let state = Tail {
        hub: hub.clone(),
        ledger: ledger.to_string(),
        wants,
        extract,
        mark,
        target: position,
        rx: Some(rx),
        interest: Some(interest),
        catch_ups: 0,
        pending: VecDeque::new(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(state, |mut t| async move {
        t.next().await.map(|item| (item, t))
    });
    Ok((start, Box::pin(stream)))
}

struct Tail<T> {
    hub: Arc<Hub>,
    ledger: String,
    wants: Wants,
    extract: Extract<T>,
    mark: Mark,
    /// Replay from the database up to here before taking the receiver's batches.
    target: i64,
    rx: Option<broadcast::Receiver<Arc<Batch>>>,
    /// Keeps the feed reading what this tail wants.
    interest: Option<feed::Interest>,
    catch_ups: u32,
    pending: VecDeque<(Mark, T)>,
    ended: bool,
}

impl<T> Tail<T> {
    async fn next(&mut self) -> Option<TailItem<T>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.ended {
                return None;
            }
            if let Err(e) = self.fill().await {
                self.ended = true;
                return Some(Err((e, self.mark.clone())));
            }
        }
    }

    fn absorb(&mut self, batch: &Batch) {
        if batch.last <= self.mark.done() {
            return;
        }
        for (seq, key, item) in (self.extract)(batch) {
            if self.mark.precedes(seq, &key) {
                self.pending.push_back((
                    Mark {
                        seq,
                        key: Some(key),
                    },
                    item,
                ));
            }
        }
        self.mark = Mark::through(batch.last);
    }

    async fn fill(&mut self) -> AppResult<()> {
        if self.rx.is_none() {
            // Database futures are boxed: a tail waiting for its next batch holds only this.
            let (rx, position, interest) =
                Box::pin(self.hub.subscribe(&self.ledger, self.wants)).await?;
            self.rx = Some(rx);
            self.interest = Some(interest);
            self.target = position;
        }
        if self.mark.done() < self.target {
            let batch = Box::pin(feed::read_batch(
                &self.hub.db,
                &self.ledger,
                self.mark.done(),
                self.target,
                self.wants,
            ))
            .await?;
            self.absorb(&batch);
            return Ok(());
        }
        let Some(rx) = self.rx.as_mut() else {
            return Ok(());
        };
        match rx.recv().await {
            Ok(batch) => {
                self.catch_ups = 0;
                self.absorb(&batch);
            }
            Err(broadcast::error::RecvError::Lagged(_)) if self.catch_ups < CATCH_UPS => {
                // Fell behind while replaying: catch up from the database again.
                self.catch_ups += 1;
                self.rx = None;
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                return Err(AppError::Interrupted {
                    reason: Interruption::SlowConsumer,
                    message: format!(
                        "this subscription fell {missed} batches behind the ledger, more than \
                         the server buffers; subscribe again with `after` set to the last \
                         cursor received (extensions.resumeAfter) to go on without a gap"
                    ),
                    resume_after: None,
                });
            }
            Err(broadcast::error::RecvError::Closed) => {
                // The feed stopped: the server is shutting down.
                self.ended = true;
            }
        }
        Ok(())
    }
}
