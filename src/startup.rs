//! The one start-up of the server, used by `runledger serve`, the black-box tests and the
//! benchmark alike (in the manner of zero2prod's `Application::build` / `run_until_stopped`):
//!
//! 1. [`Server::build`] migrates the database, loads the checkpoint signing key and checks it
//!    against every ledger, subscribes the API key cache to key changes (PostgreSQL), and binds
//!    the listening socket;
//! 2. [`Server::run_until_stopped`] serves the HTTP application with the background work
//!    beside it (periodic checkpoints, periodic full verification, the export workers) until
//!    the stop signal, then drains in-flight requests, stops the background work (unfinished
//!    export builds go back to the queue), checks once more that no other
//!    process took the ledgers over with another key, and signs a final checkpoint of every
//!    ledger, so that a quiet ledger is fully covered.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::cache::{self, KeyCache};
use crate::db::Db;
use crate::error::{AppResult, Context};
use crate::export::{self, ExportSettings};
use crate::http::{self, AppState, HttpSettings};
use crate::ledger::background;
use crate::ledger::checkpoint::{self, CheckpointPolicy, LedgerKeys};
use crate::ledger::note::NoteVerifier;
use crate::ledger::signing;

/// Everything `serve` is configured with, once flags and environment are read
/// (`config::ServeArgs::server_config`).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub http: HttpSettings,
    /// The checkpoint signing key (created owner-only on a fresh database).
    pub signing_key_file: PathBuf,
    /// The key's name and the prefix of every checkpoint origin.
    pub log_name: String,
    /// Earlier signing keys whose checkpoints are still trusted.
    pub trusted_keys: Vec<NoteVerifier>,
    /// When to sign checkpoints while serving; `None` signs only the final one.
    pub checkpoints: Option<CheckpointPolicy>,
    /// How often every ledger is verified in full in the background; zero for never.
    pub full_verify_interval: Duration,
    /// Where export files live and how many are built at once.
    pub exports: ExportSettings,
}

/// A server that is ready to serve: database migrated, signing key checked, socket bound.
pub struct Server {
    db: Db,
    keys: LedgerKeys,
    key_cache: Option<Arc<KeyCache>>,
    listener: TcpListener,
    address: SocketAddr,
    config: ServerConfig,
}

impl Server {
    /// Prepares the server on `db` (a connected pool; see [`Db::connect`]).
    pub async fn build(db: Db, config: ServerConfig) -> AppResult<Server> {
        db.migrate().await?;
        let keys = signing::open_identity(
            &db,
            &config.signing_key_file,
            &config.log_name,
            config.trusted_keys.clone(),
        )
        .await?;
        let key_cache = KeyCache::for_db(&db).map(Arc::new);
        if let Some(cache) = &key_cache {
            cache::watch(cache.clone()).await;
        }
        let listener =
            listen(config.listen).with_context(|| format!("listen on {}", config.listen))?;
        let address = listener
            .local_addr()
            .context("read the listening address")?;
        Ok(Server {
            db,
            keys,
            key_cache,
            listener,
            address,
            config,
        })
    }

    /// The address the server listens on (the real port when it was asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The checkpoint signing key and the keys verification trusts.
    pub fn keys(&self) -> &LedgerKeys {
        &self.keys
    }

    /// The key GraphiQL opens with (`serve --demo` only).
    pub fn set_graphiql_bearer(&mut self, key: Option<String>) {
        self.config.http.graphiql_bearer = key;
    }

    /// Serves until `stop` resolves, then shuts down gracefully (see the module doc).
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()>) -> AppResult<()> {
        let Server {
            db,
            keys,
            key_cache,
            listener,
            config,
            ..
        } = self;
        let header_read_timeout = config.http.header_read_timeout;
        let queue = export::Queue::default();
        let state = AppState::new(db.clone(), keys.clone(), key_cache, config.http)
            .with_exports(config.exports.clone(), queue.clone());
        let live = state.live.clone();
        let router = http::router(state);
        let (stop_exports, exports_stopped) = tokio::sync::oneshot::channel::<()>();
        let exporter = tokio::spawn(export::worker::run(
            db.clone(),
            keys.clone(),
            config.exports.clone(),
            queue,
            async move {
                let _ = exports_stopped.await;
            },
        ));
        let (stop_checkpoints, checkpoints_stopped) = tokio::sync::oneshot::channel::<()>();
        let checkpointer = config.checkpoints.map(|policy| {
            tokio::spawn(checkpoint::run_periodically(
                db.clone(),
                keys.clone(),
                policy,
                async move {
                    let _ = checkpoints_stopped.await;
                },
            ))
        });
        let (stop_verifier, verifier_stopped) = tokio::sync::oneshot::channel::<()>();
        let verifier = tokio::spawn(background::run_full_verification_periodically(
            db.clone(),
            keys.clone(),
            config.full_verify_interval,
            async move {
                let _ = verifier_stopped.await;
            },
        ));
        // Subscriptions end first (SHUTTING_DOWN, websockets closed with 1001), so that the
        // drain does not wait on streams that never finish.
        let stop = {
            let live = live.clone();
            async move {
                stop.await;
                live.shut_down();
            }
        };
        http::connections::serve(listener, router, header_read_timeout, stop).await;
        live.wait_closed(Duration::from_secs(10)).await;
        let _ = stop_checkpoints.send(());
        let _ = stop_verifier.send(());
        let _ = stop_exports.send(());
        let _ = exporter.await;
        if let Some(checkpointer) = checkpointer {
            let _ = checkpointer.await;
        }
        let _ = verifier.await;
        // Another process may have signed with another key meanwhile: check before signing.
        signing::check_identity(&db, &keys, &config.signing_key_file).await?;
        let signed = checkpoint::checkpoint_all(&db, &keys, None).await?;
        tracing::info!(checkpoints = signed, "shut down");
        Ok(())
    }
}

/// Binds the listening socket with a backlog deep enough for a burst of reconnecting clients
/// (every dashboard's websocket after a restart), where tokio's default of 1,024 overflows.
fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    const BACKLOG: u32 = 4096;
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}
