//! API keys kept in memory between requests, on PostgreSQL only, so a request usually costs no
//! statement to authenticate. A stored key changes only when it is revoked (or changed or
//! deleted by hand); a trigger then sends its id on the `runledger_api_keys` channel
//! (migration 4), and every instance listening there forgets it.
//!
//! The cache serves only while its subscription is known to work: from a `LISTEN` whose first
//! ping came back, until the connection is lost or a ping (sent whenever the channel was quiet
//! for [`HEARTBEAT`]) does not come back within [`PING_WAIT`]; in between, keys are read on
//! every request. Every change bumps a generation, and a key read from the database is kept
//! only if no change arrived since the read began, so a read that raced a revocation cannot put
//! the old row back. A revocation made by this instance is forgotten as soon as it commits; one
//! made elsewhere as soon as PostgreSQL delivers the notification. Whatever happens, a key is
//! read again once [`MAX_AGE`] has passed since it was read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgListener;

use entity::api_keys;

/// The notification channel that migration 4's trigger sends key ids on.
const CHANNEL: &str = "runledger_api_keys";
/// The payload that means "every key" (a truncated table).
const EVERY_KEY: &str = "*";
/// How long a key is served from memory before it is read again.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// At most this many keys are kept; a full cache starts over.
const CAPACITY: usize = 4096;
/// Longest wait between attempts to subscribe again.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Keys by id, plus whether notifications are being received.
pub struct KeyCache {
    url: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Subscribed to the channel: only then are keys served or kept.
    live: bool,
    /// Bumped by every change and by every loss of the subscription.
    generation: u64,
    keys: HashMap<String, (Arc<api_keys::Model>, Instant)>,
}

/// What the cache knows about a key id.
pub enum Cached {
    Hit(Arc<api_keys::Model>),
    /// Not known: read it, then offer it with [`KeyCache::keep`] and this ticket (`None` when
    /// the cache is not serving).
    Miss(Option<Ticket>),
}

/// When a read of a key began: the generation then, and the time its age counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
    read_at: Instant,
}

impl KeyCache {
    /// The cache a server keeps for `db`: PostgreSQL only (it announces key changes; SQLite
    /// keys are read on every request). Not serving until [`watch`] subscribes.
    pub fn for_db(db: &crate::db::Db) -> Option<KeyCache> {
        (db.backend() == sea_orm::DbBackend::Postgres).then(|| KeyCache::new(db.url()))
    }

    /// A cache for the database at `url` (PostgreSQL), not serving until [`watch`] subscribes.
    pub fn new(url: &str) -> KeyCache {
        KeyCache {
            url: url.to_string(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is valid after any panic (every update is a single assignment or insert).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Cached {
        let state = self.state();
        if !state.live {
            return Cached::Miss(None);
        }
        match state.keys.get(id) {
            Some((key, at)) if at.elapsed() < MAX_AGE => Cached::Hit(key.clone()),
            _ => Cached::Miss(Some(Ticket {
                generation: state.generation,
                read_at: Instant::now(),
            })),
        }
    }

    /// Keeps a key read after [`KeyCache::get`] gave `ticket`, unless anything changed since.
    pub fn keep(&self, ticket: Option<Ticket>, key: Arc<api_keys::Model>) {
        let mut state = self.state();
        let Some(ticket) = ticket.filter(|t| state.live && t.generation == state.generation) else {
            return;
        };
        if state.keys.len() >= CAPACITY {
            state.keys.clear();
        }
        state.keys.insert(key.id.clone(), (key, ticket.read_at));
    }

    /// Forgets one key (or every key, for `*`).
    pub fn forget(&self, id: &str) {
        let mut state = self.state();
        state.generation += 1;
        if id == EVERY_KEY {
            state.keys.clear();
        } else {
            state.keys.remove(id);
        }
    }

    /// Forgets every key and serves from now on only if `live`.
    fn restart(&self, live: bool) {
        let mut state = self.state();
        state.generation += 1;
        state.keys.clear();
        state.live = live;
    }

    /// Subscribes, and checks the subscription with a first ping, before serving.
    async fn subscribe(&self) -> Result<PgListener, String> {
        let mut listener = PgListener::connect(&self.url)
            .await
            .map_err(|e| e.to_string())?;
        // A lost connection is reported (`Ok(None)`) before any reconnection, so nothing is
        // served from memory while notifications cannot arrive.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await.map_err(|e| e.to_string())?;
        let nonce = ping(&mut listener).await?;
        // Everything sent on the channel before the ping is delivered before it.
        loop {
            match tokio::time::timeout(PING_WAIT, listener.try_recv()).await {
                Ok(Ok(Some(n))) if n.payload() == nonce => break,
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => return Err("the connection was lost".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("the first ping did not come back".into()),
            }
        }
        self.restart(true);
        Ok(listener)
    }
}

/// The payload prefix of the subscription's own pings (key ids are hex, so never collide).
const PING: &str = "ping:";
/// How long a quiet subscription waits before it checks itself with a ping.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a ping may take to come back before the subscription counts as lost.
const PING_WAIT: Duration = Duration::from_secs(2);

/// Sends a ping on the channel over the listener's own connection; returns its payload.
async fn ping(listener: &mut PgListener) -> Result<String, String> {
    static PINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let payload = format!("{PING}{}:{n}", std::process::id());
    sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(&payload)
        .execute(listener)
        .await
        .map_err(|e| e.to_string())?;
    Ok(payload)
}

/// Applies key changes as they arrive, and pings the channel whenever it has been quiet for
/// [`HEARTBEAT`]; returns why the subscription ended (a lost connection, or a ping that did
/// not come back within [`PING_WAIT`], as when a connection died without a word).
async fn follow(cache: &KeyCache, mut listener: PgListener) -> String {
    let mut pending: Option<String> = None;
    loop {
        let wait = if pending.is_some() {
            PING_WAIT
        } else {
            HEARTBEAT
        };
        // Waiting for a notification is cancel-safe: no message is lost to the timeout.
        match tokio::time::timeout(wait, listener.try_recv()).await {
            Ok(Ok(Some(n))) => {
                let payload = n.payload();
                if pending.as_deref() == Some(payload) {
                    pending = None;
                } else if !payload.starts_with(PING) {
                    cache.forget(payload);
                }
            }
            Ok(Ok(None)) => return "the connection was lost".into(),
            Ok(Err(e)) => return e.to_string(),
            Err(_) if pending.is_some() => return "a ping did not come back".into(),
            Err(_) => match ping(&mut listener).await {
                Ok(nonce) => pending = Some(nonce),
                Err(e) => return e,
            },
        }
    }
}

/// Subscribes `cache` to key changes and keeps it subscribed in a background task. Returns once
/// the first subscription succeeded (the cache then serves) or failed (it is retried in the
/// background, and keys are read on every request meanwhile).
pub async fn watch(cache: Arc<KeyCache>) {
    let first = cache.subscribe().await;
    tokio::spawn(async move {
        let mut attempt = first;
        let mut retry = Duration::from_secs(1);
        loop {
            match attempt {
                Ok(listener) => {
                    retry = Duration::from_secs(1);
                    let why = follow(&cache, listener).await;
                    cache.restart(false);
                    tracing::warn!(reason = %why, "lost the API key change subscription; reading keys on every request until it is back");
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_secs = retry.as_secs(), "cannot subscribe to API key changes; reading keys on every request");
                }
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
            attempt = cache.subscribe().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Arc<api_keys::Model> {
        Arc::new(api_keys::Model {
            id: id.into(),
            tenant_id: "t".into(),
            role: "auditor".into(),
            secret_hash: "h".into(),
            label: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            revoked_at: None,
        })
    }

    fn hit(cache: &KeyCache, id: &str) -> bool {
        matches!(cache.get(id), Cached::Hit(_))
    }

    fn ticket(cache: &KeyCache, id: &str) -> Option<Ticket> {
        match cache.get(id) {
            Cached::Miss(t) => t,
            Cached::Hit(_) => panic!("{id} is cached"),
        }
    }

    #[test]
    fn serves_only_while_subscribed() {
        let cache = KeyCache::new("postgres://unused");
        assert_eq!(ticket(&cache, "a"), None);
        cache.keep(None, key("a"));
        assert!(!hit(&cache, "a"));
        cache.restart(true);
        let t = ticket(&cache, "a");
        cache.keep(t, key("a"));
        assert!(hit(&cache, "a"));
        cache.restart(false);
        assert!(!hit(&cache, "a"));
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = KeyCache::new("postgres://unused");
        cache.restart(true);
        let t = ticket(&cache, "a");
        // A revocation of any key commits between the read and the keep.
        cache.forget("b");
        cache.keep(t, key("a"));
        assert!(!hit(&cache, "a"));
        let t = ticket(&cache, "a");
        cache.keep(t, key("a"));
        assert!(hit(&cache, "a"));
        cache.forget("a");
        assert!(!hit(&cache, "a"));
        let t = ticket(&cache, "a");
        cache.keep(t, key("a"));
        cache.forget(EVERY_KEY);
        assert!(!hit(&cache, "a"));
    }
}
