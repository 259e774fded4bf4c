//! Database access: connecting to SQLite or PostgreSQL, running migrations, and the write
//! transaction every write path uses.
//!
//! SQLite has a single writer; a deferred transaction that reads and then writes can fail with
//! "database is locked" when another writer got there first. Every write transaction therefore
//! takes an in-process gate first (on SQLite only), so writes queue instead of failing.

use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::error::{AppError, AppResult, Context};

/// A connection pool plus the write gate.
#[derive(Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    write_gate: Option<Arc<Mutex<()>>>,
    /// The URL connected to (for connections of their own, e.g. PostgreSQL `LISTEN`).
    url: Arc<str>,
    /// Counts this process's committed write transactions: what wakes live subscriptions on
    /// SQLite, which has no notifications (`facade::live`).
    commits: Arc<watch::Sender<u64>>,
}

/// An open write transaction. Dropping it without [`WriteTx::commit`] rolls back.
pub struct WriteTx {
    pub txn: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
    commits: Arc<watch::Sender<u64>>,
}

impl WriteTx {
    pub async fn commit(self) -> AppResult<()> {
        self.txn
            .commit()
            .await
            .context("commit a write transaction")?;
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

/// Whether a database URL names PostgreSQL (anything else is SQLite).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Turns a bare path or `sqlite:` URL into a SQLite URL that creates the file when missing.
pub fn normalize_url(url: &str) -> String {
    if is_postgres_url(url) {
        return url.to_string();
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.contains('?') {
        format!("sqlite://{path}")
    } else {
        format!("sqlite://{path}?mode=rwc")
    }
}

/// Hides the password of a database URL for logs and messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl Db {
    /// Connects (creating a SQLite file when missing). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> AppResult<Db> {
        let url = normalize_url(url);
        let mut opts = ConnectOptions::new(url.clone());
        opts.max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        // WAL lets readers run while the one writer commits; FULL sync makes an acknowledged
        // write survive power loss, which an evidence store promises.
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
        });
        let conn = Database::connect(opts)
            .await
            .map_err(|e| AppError::internal(format!("connect to {}", redact_url(&url)), e))?;
        let write_gate = match conn.get_database_backend() {
            DbBackend::Sqlite => Some(Arc::new(Mutex::new(()))),
            _ => None,
        };
        Ok(Db {
            conn,
            write_gate,
            url: url.into(),
            commits: Arc::new(watch::channel(0).0),
        })
    }

    /// The URL this pool connects to (credentials included: never log it unredacted).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> AppResult<()> {
        Migrator::up(&self.conn, None)
            .await
            .context("apply database migrations")
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Starts a write transaction (queued behind other writers on SQLite).
    pub async fn begin_write(&self) -> AppResult<WriteTx> {
        let gate = match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        // IMMEDIATE takes SQLite's write lock at BEGIN, so a transaction that reads before it
        // writes waits (busy_timeout) for another process's writer instead of failing.
        let options = sea_orm::TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite)
                .then_some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = self
            .conn
            .begin_with_options(options)
            .await
            .context("begin a write transaction")?;
        Ok(WriteTx {
            txn,
            _gate: gate,
            commits: self.commits.clone(),
        })
    }

    /// Starts a read-only transaction that sees one snapshot of the database throughout
    /// (REPEATABLE READ on PostgreSQL; on SQLite in WAL mode every read transaction does).
    pub async fn begin_snapshot(&self) -> AppResult<DatabaseTransaction> {
        let txn = match self.backend() {
            DbBackend::Postgres => {
                self.conn
                    .begin_with_config(
                        Some(sea_orm::IsolationLevel::RepeatableRead),
                        Some(sea_orm::AccessMode::ReadOnly),
                    )
                    .await
            }
            _ => self.conn.begin().await,
        };
        txn.context("begin a read snapshot")
    }

    /// Wakes whenever a write transaction of this process commits.
    pub fn watch_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> AppResult<()> {
        self.conn.ping().await.context("ping the database")
    }
}

/// A SQL statement written as text with values bound in place: `?` on SQLite, `$n` on
/// PostgreSQL.
pub struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<sea_orm::Value>,
}

impl Sql {
    pub fn new(backend: DbBackend) -> Sql {
        Sql {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<sea_orm::Value>) -> &mut Sql {
        self.values.push(value.into());
        if self.backend == DbBackend::Postgres {
            self.text.push('$');
            self.text.push_str(&self.values.len().to_string());
        } else {
            self.text.push('?');
        }
        self
    }

    /// Appends `(v1, v2, …)` with every value bound.
    pub fn bind_list<V: Into<sea_orm::Value>>(&mut self, values: impl IntoIterator<Item = V>) {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.push(")");
    }

    pub fn statement(self) -> sea_orm::Statement {
        sea_orm::Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}
