//! Test harness: starts the real server (`startup::Server`, as `runledger serve` does) on a
//! fresh database — a new SQLite file or a new PostgreSQL database — on an ephemeral port, and
//! talks to it over real HTTP.
//!
//! PostgreSQL variants use `RUNLEDGER_TEST_POSTGRES_URL` (a server URL; each test creates and
//! drops its own database). Without it they are skipped locally, but fail when `CI` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use runledger::db::Db;
use runledger::export::ExportSettings;
use runledger::http::HttpSettings;
use runledger::ledger::checkpoint::{self, LedgerKeys};
use runledger::startup::{Server, ServerConfig};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body against both backends: `both!(name)` where `name` is an
/// `async fn(Backend)` of the calling module.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_some() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        }
    };
}

/// The PostgreSQL server for tests; panics when CI requires one and it is missing.
pub fn postgres_url() -> Option<String> {
    match std::env::var("RUNLEDGER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!(
                    "CI is set but RUNLEDGER_TEST_POSTGRES_URL is not: PostgreSQL tests cannot be skipped in CI"
                );
            }
            eprintln!("RUNLEDGER_TEST_POSTGRES_URL is not set: skipping the PostgreSQL variant");
            None
        }
    }
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", runledger::ids::random_hex(8))
}

/// Replaces the database name (path) of a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh, migrated database, and how to throw it away.
pub struct TestDb {
    pub db: Db,
    /// The database URL, for running the command-line program against it.
    pub url: String,
    /// SQL statements executed through `db`, counted by a SeaORM metric callback.
    pub statements: Arc<AtomicU64>,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    PgDatabase { server: String, name: String },
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let path =
                    std::env::temp_dir().join(format!("{}.db", unique_name("runledger_test")));
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Cleanup::File(path),
                )
            }
            Backend::Postgres => {
                let server = postgres_url().expect("PostgreSQL URL");
                let name = unique_name("runledger_test");
                let admin = Database::connect(&server)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_raw(Statement::from_string(
                        admin.get_database_backend(),
                        format!("CREATE DATABASE {name}"),
                    ))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                (
                    with_database(&server, &name),
                    Cleanup::PgDatabase { server, name },
                )
            }
        };
        let mut db = Db::connect(&url, 8).await.expect("connect test database");
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.conn.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::SeqCst);
            if std::env::var("RUNLEDGER_TEST_LOG_SQL").is_ok() {
                eprintln!(
                    "SQL: {}",
                    info.statement.sql.chars().take(90).collect::<String>()
                );
            }
        });
        // The gate and pool are shared by clones made after the callback is set.
        db.migrate().await.expect("migrate test database");
        TestDb {
            db,
            url,
            statements,
            cleanup,
        }
    }

    /// Runs raw SQL directly (as an attacker or an auditor with database access would).
    pub async fn exec(&self, sql: &str) -> Result<u64, sea_orm::DbErr> {
        self.db
            .conn
            .execute_raw(Statement::from_string(self.db.backend(), sql.to_string()))
            .await
            .map(|r| r.rows_affected())
    }

    /// Runs a raw query and returns the first column of each row.
    pub async fn query_column<T: sea_orm::TryGetable>(&self, sql: &str) -> Vec<T> {
        let rows = self
            .db
            .conn
            .query_all_raw(Statement::from_string(self.db.backend(), sql.to_string()))
            .await
            .expect("raw query");
        rows.iter()
            .map(|r| r.try_get_by_index::<T>(0).expect("first column"))
            .collect()
    }

    /// The first column of each row as i64 (counts, seqs).
    pub async fn query_i64(&self, sql: &str) -> Vec<i64> {
        self.query_column(sql).await
    }

    /// The first column of each row as text.
    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        self.query_column(sql).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::PgDatabase { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                // Dropping runs outside the test's runtime, on a thread of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt {
                        rt.block_on(async {
                            if let Ok(admin) = Database::connect(&server).await {
                                let _ = admin
                                    .execute_raw(Statement::from_string(
                                        admin.get_database_backend(),
                                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                                    ))
                                    .await;
                            }
                        });
                    }
                })
                .join();
            }
        }
    }
}

/// The application running on a fresh database.
pub struct TestApp {
    pub address: String,
    pub store: TestDb,
    pub client: reqwest::Client,
    /// The server's checkpoint signing key (generated per test).
    pub keys: LedgerKeys,
    /// Where the server writes exports (a directory of the test's own).
    pub exports: ExportSettings,
    key_file: KeyFile,
}

/// The server's signing key file, removed with the test.
struct KeyFile(std::path::PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, HttpSettings::default()).await
    }

    /// The application without per-request authorization and access records, for tests that
    /// count exactly the ledger entries other writes make.
    pub async fn spawn_unrecorded(backend: Backend) -> TestApp {
        let settings = HttpSettings {
            record_requests: false,
            ..HttpSettings::default()
        };
        Self::spawn_with(backend, settings).await
    }

    pub async fn spawn_with(backend: Backend, settings: HttpSettings) -> TestApp {
        Self::spawn_exporting(backend, settings, 2).await
    }

    /// The application with `workers` export builders (0: exports stay queued).
    pub async fn spawn_exporting(
        backend: Backend,
        settings: HttpSettings,
        workers: usize,
    ) -> TestApp {
        let store = TestDb::new(backend).await;
        let key_file =
            KeyFile(std::env::temp_dir().join(format!("{}.key", unique_name("runledger_test"))));
        // As `runledger serve` starts, except that checkpoints and full verifications are
        // signed only when a test asks (`TestApp::checkpoint`), so that tests count exactly
        // the entries and checkpoints they cause.
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("a listen address"),
            http: settings,
            signing_key_file: key_file.0.clone(),
            log_name: "runledger".into(),
            trusted_keys: Vec::new(),
            checkpoints: None,
            full_verify_interval: std::time::Duration::ZERO,
            // The workers look at the queue at start and when a request of this process wakes
            // them, never on a timer: tests count the statements their requests cause.
            exports: ExportSettings {
                workers,
                poll: std::time::Duration::from_secs(24 * 3600),
                ..ExportSettings::in_dir(
                    std::env::temp_dir().join(unique_name("runledger_test_exports")),
                )
            },
        };
        let exports = config.exports.clone();
        let server = Server::build(store.db.clone(), config)
            .await
            .expect("start the server");
        let address = format!("http://{}", server.address());
        let keys = server.keys().clone();
        // Without a stop signal: the test's runtime ends it.
        tokio::spawn(server.run_until_stopped(std::future::pending()));
        TestApp {
            address,
            store,
            client: reqwest::Client::new(),
            keys,
            exports,
            key_file,
        }
    }

    /// Starts a second server on the same database, signing key and export directory (as a
    /// restarted or a second process would), with `workers` export builders; returns its
    /// address.
    pub async fn another_server(&self, workers: usize) -> String {
        let config = self.config(HttpSettings::default(), workers);
        let server = Server::build(self.store.db.clone(), config)
            .await
            .expect("start another server");
        let address = format!("http://{}", server.address());
        tokio::spawn(server.run_until_stopped(std::future::pending()));
        address
    }

    /// Starts a second server process's worth of state on the same database: its own
    /// connection pool (so nothing in memory is shared with the first), signing key and
    /// settings; returns its address.
    pub async fn another_instance(&self, settings: HttpSettings) -> String {
        let db = Db::connect(&self.store.url, 8)
            .await
            .expect("connect the second instance");
        let server = Server::build(db, self.config(settings, 0))
            .await
            .expect("start another instance");
        let address = format!("http://{}", server.address());
        tokio::spawn(server.run_until_stopped(std::future::pending()));
        address
    }

    /// Starts another server on the same database that stops when `stop` fires; returns its
    /// address and the task that ends when the server has shut down.
    pub async fn stoppable_server(
        &self,
        settings: HttpSettings,
    ) -> (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let server = Server::build(self.store.db.clone(), self.config(settings, 0))
            .await
            .expect("start a stoppable server");
        let address = format!("http://{}", server.address());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| e.describe())
                .expect("a clean shutdown");
        });
        (address, stop, task)
    }

    fn config(&self, http: HttpSettings, workers: usize) -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:0".parse().expect("a listen address"),
            http,
            signing_key_file: self.key_file.0.clone(),
            log_name: "runledger".into(),
            trusted_keys: Vec::new(),
            checkpoints: None,
            full_verify_interval: std::time::Duration::ZERO,
            exports: ExportSettings {
                workers,
                ..self.exports.clone()
            },
        }
    }

    pub fn db(&self) -> &Db {
        &self.store.db
    }

    /// The server's checkpoint signing key file.
    pub fn key_file(&self) -> &std::path::Path {
        &self.key_file.0
    }

    /// What the seeder needs to build its exports where this server serves them from.
    pub fn seed_exports(&self) -> runledger::seed::SeedExports<'_> {
        runledger::seed::SeedExports {
            keys: &self.keys,
            settings: &self.exports,
        }
    }

    /// Seeds one tenant with `runs` runs of `steps_per_run` steps (`runledger seed`'s
    /// generator) and returns an auditor key of it.
    pub async fn seeded_auditor(
        &self,
        tenant: &str,
        runs: u32,
        steps_per_run: u32,
        telemetry_percent: u32,
        seed: u64,
    ) -> String {
        let opts = runledger::seed::SeedOptions {
            tenants: 1,
            runs,
            steps_per_run,
            telemetry_percent,
            seed,
        };
        runledger::seed::seed_tenant(self.db(), tenant, tenant, &opts, self.seed_exports())
            .await
            .unwrap();
        let role = runledger::domain::Role::Auditor;
        runledger::auth::create_key(self.db(), tenant, role, None, None)
            .await
            .unwrap()
            .0
    }

    /// Signs a checkpoint of the tenant's ledger now, as the server's timer would; returns its
    /// tree size.
    pub async fn checkpoint(&self, tenant: &str) -> i64 {
        checkpoint::checkpoint_tenant(&self.store.db, &self.keys, tenant)
            .await
            .map_err(|e| e.describe())
            .expect("sign a checkpoint")
            .expect("entries to checkpoint")
            .tree_size
    }

    /// POSTs a GraphQL request and returns the status and the JSON body.
    pub async fn post(&self, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.expect("POST /graphql");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Runs a query that must succeed without errors; returns `data`.
    pub async fn query(&self, key: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post(Some(key), &json!({"query": query, "variables": variables}))
            .await;
        assert_eq!(status, 200, "status of {query}: {body}");
        assert!(body.get("errors").is_none(), "errors for {query}: {body}");
        body["data"].clone()
    }

    /// Runs a query that must fail; returns the first error's code and message.
    pub async fn query_error(
        &self,
        key: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (String, String) {
        let (_, body) = self
            .post(key, &json!({"query": query, "variables": variables}))
            .await;
        let error = &body["errors"][0];
        assert!(
            error.is_object(),
            "expected an error for {query}, got {body}"
        );
        (
            error["extensions"]["code"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            error["message"].as_str().unwrap_or("").to_string(),
        )
    }

    /// SQL statements executed so far.
    pub fn statement_count(&self) -> u64 {
        self.store.statements.load(Ordering::SeqCst)
    }
}

/// RFC 6962 Merkle tree hash of leaf hashes, written recursively from the RFC's definition
/// (independently of the server's bottom-up implementation).
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(merkle_root(&leaves[..k]));
            h.update(merkle_root(&leaves[k..]));
            h.finalize().into()
        }
    }
}
