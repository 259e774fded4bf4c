//! Command line and configuration: every option is a flag and a `RUNLEDGER_*` environment
//! variable, documented here where it is declared. Database URLs are never logged with their
//! password (see `db::redact_url`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::Role;
use crate::error::AppResult;
use crate::export::ExportSettings;
use crate::graphql::Limits;
use crate::http::HttpSettings;
use crate::ledger::checkpoint::CheckpointPolicy;
use crate::ledger::note::NoteVerifier;
use crate::startup::ServerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "runledger",
    version,
    about = "Append-only, tamper-evident evidence logs for LLM agent platforms, over GraphQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve GraphQL (POST/GET /graphql), GraphiQL (/graphiql) and health checks.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Fill the database with deterministic, realistic evidence; prints the tenant ids.
    Seed(SeedArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Write evidence as an operator (global system records, which no tenant key may write).
    Ingest {
        #[command(subcommand)]
        command: IngestCommand,
    },
    /// Verify tenants' ledgers (chain, signed checkpoints, anchored records) and print the
    /// report as JSON. Exit codes: 0 verified and fully covered by signed checkpoints; 3
    /// verified but with entries no checkpoint covers yet (an unanchored tail); 1 an anomaly
    /// was found; 2 the verification could not run (bad arguments, database unreachable).
    Verify(VerifyArgs),
    /// Verify an export bundle offline (no database): re-hash every record, recompute the
    /// anchor roots and inclusion proofs, check the checkpoint signature (and, given a kept
    /// checkpoint, the consistency between them) and print the report as JSON. Exit codes: 0
    /// verified under --public-key; 3 verified, but only under the key the bundle itself
    /// carries (no --public-key); 1 a problem was found; 2 the check could not run.
    VerifyBundle(VerifyBundleArgs),
    /// Export a tenant's evidence as an operator (recorded as `runledger-cli`): requests the
    /// export, builds it at once and copies the file to --out; prints the export's id, checksum,
    /// records and size as JSON.
    Export(ExportCommandArgs),
    /// Tenants.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// The run rollups the stats read (derived data, never evidence).
    Rollups {
        #[command(subcommand)]
        command: RollupsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RollupsCommand {
    /// Replace tenants' rollups by those recomputed from their evidence (each tenant in one
    /// transaction holding its writes); prints `tenant rows` per tenant.
    Rebuild {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Compare tenants' rollups with their evidence, changing nothing; prints each difference
    /// and exits non-zero when there is one.
    Check {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (recorded as TENANT_CREATED in its ledger).
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Tenant id: 1-64 of letters, digits, '-', '_', '.', not starting with '_'.
        #[arg(long)]
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// Compliance frameworks the tenant reports against (comma-separated, e.g. SOC2,HIPAA).
        #[arg(long, value_delimiter = ',')]
        frameworks: Vec<String>,
    },
}

/// Where the checkpoint signing key lives and how checkpoints are named and scheduled.
#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// Ed25519 key that signs checkpoints (C2SP note private key). Created with owner-only
    /// permissions on first start when absent; keep it where database credentials cannot reach.
    #[arg(
        long,
        env = "RUNLEDGER_SIGNING_KEY_FILE",
        default_value = "runledger-signing.key"
    )]
    pub signing_key_file: std::path::PathBuf,
    /// Log name: the key's name and the prefix of every checkpoint origin (`<name>/<tenant>`).
    #[arg(long, env = "RUNLEDGER_LOG_NAME", default_value = "runledger")]
    pub log_name: String,
    /// Further trusted verifier keys (earlier signing keys), comma-separated.
    #[arg(long, env = "RUNLEDGER_TRUSTED_KEYS", value_delimiter = ',')]
    pub trusted_keys: Vec<String>,
}

impl LedgerArgs {
    /// The trusted verifier keys, parsed (an unreadable one is refused, naming it).
    pub fn trusted_verifiers(&self) -> AppResult<Vec<NoteVerifier>> {
        self.trusted_keys
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(NoteVerifier::parse)
            .collect()
    }
}

/// When the server signs checkpoints.
#[derive(Debug, Clone, Args)]
pub struct CheckpointArgs {
    /// Sign a checkpoint once this many entries of a ledger are not covered.
    #[arg(long, env = "RUNLEDGER_CHECKPOINT_EVERY_ENTRIES", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every_entries: u64,
    /// Sign a checkpoint once the oldest uncovered entry is this many seconds old.
    #[arg(long, env = "RUNLEDGER_CHECKPOINT_INTERVAL_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_interval_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Verify only this tenant (default: every tenant and the platform ledger).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A signed checkpoint you kept earlier (a file with the note): the ledger must still
    /// contain exactly that tree, which detects a rollback to an older state.
    #[arg(long)]
    pub trusted_checkpoint: Option<std::path::PathBuf>,
    /// The verifier key to trust (`<name>+<id>+<key>`, or a file holding it). Default: the
    /// public half of --signing-key-file.
    #[arg(long, env = "RUNLEDGER_VERIFIER_KEY")]
    pub public_key: Option<String>,
    /// Signing key file whose public half is trusted when --public-key is absent (never
    /// created by `verify`).
    #[arg(
        long,
        env = "RUNLEDGER_SIGNING_KEY_FILE",
        default_value = "runledger-signing.key"
    )]
    pub signing_key_file: std::path::PathBuf,
    /// Log name (prefix of checkpoint origins).
    #[arg(long, env = "RUNLEDGER_LOG_NAME", default_value = "runledger")]
    pub log_name: String,
    /// Start from the newest good checkpoint instead of walking every entry.
    #[arg(long)]
    pub incremental: bool,
    /// Skip re-hashing the evidence records of every anchor (faster; chain and checkpoints only).
    #[arg(long)]
    pub skip_records: bool,
    /// Record each completed verification in the verified ledger (needs write access).
    #[arg(long)]
    pub record: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportCommandArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The tenant whose evidence is exported.
    #[arg(long)]
    pub tenant: String,
    /// What to export, as the export record's scope reads: `run:<runId>`, or `runs:`,
    /// `ledger:`, `system:` followed by the filter as JSON (docs/exports.md, "The scope"), e.g.
    /// `runs:{"model":"gpt-4o"}` or `ledger:{"from_seq":1,"to_seq":100}`.
    #[arg(long)]
    pub scope: String,
    /// The export format.
    #[arg(long, default_value = "BUNDLE")]
    pub format: String,
    /// Where to write the finished file.
    #[arg(long)]
    pub out: std::path::PathBuf,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub exports: ExportArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyBundleArgs {
    /// The bundle file (`GET /exports/{id}`).
    pub file: std::path::PathBuf,
    /// The verifier key to trust (`<name>+<id>+<key>`, or a file holding it), e.g. from
    /// `GET /.well-known/runledger/checkpoint-key`. Without it only the bundle's own key is used.
    #[arg(long, env = "RUNLEDGER_VERIFIER_KEY")]
    pub public_key: Option<String>,
    /// A signed checkpoint of the same ledger you kept (a file with the note): the bundle's
    /// checkpoint must be consistent with it.
    #[arg(long)]
    pub trusted_checkpoint: Option<std::path::PathBuf>,
    /// The consistency proof between the two checkpoints when their sizes differ: a file with a
    /// JSON array of hex hashes, or `audit { consistencyProof { proof } }`'s answer.
    #[arg(long)]
    pub consistency_proof: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: a SQLite file path or `sqlite://…`, or `postgres://user:pass@host/db`.
    #[arg(long, env = "RUNLEDGER_DATABASE_URL", default_value = "runledger.db")]
    pub database_url: String,
    /// Maximum pooled database connections. Default for PostgreSQL: twice the cores plus one,
    /// from 4 to 16 (the PostgreSQL wiki's starting point: connections beyond what the database's
    /// cores can run at once only make its backends take turns; set it for a database on a
    /// larger machine). For SQLite twice the cores, from 4 to 16: it has one writer, its reads
    /// are bound by the cores, and every connection keeps its own page cache.
    #[arg(long, env = "RUNLEDGER_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
}

impl DatabaseArgs {
    /// The pool size: the flag, or the backend's default.
    pub fn max_connections(&self) -> u32 {
        if let Some(n) = self.db_max_connections {
            return n;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        if crate::db::is_postgres_url(&self.database_url) {
            (2 * cores + 1).clamp(4, 16)
        } else {
            (2 * cores).clamp(4, 16)
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on (`IP:PORT`, or `localhost:PORT` for 127.0.0.1).
    #[arg(long, env = "RUNLEDGER_LISTEN", default_value = "127.0.0.1:8080",
          value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Seed a demo tenant when the database is empty, print a demo key and open GraphiQL with
    /// it. Only on a loopback listen address, and only on a database without other tenants.
    #[arg(long, env = "RUNLEDGER_DEMO")]
    pub demo: bool,
    /// Where `--demo` keeps its auditor key (owner-only), so that restarts reuse it.
    #[arg(
        long,
        env = "RUNLEDGER_DEMO_KEY_FILE",
        default_value = "runledger-demo.key"
    )]
    pub demo_key_file: std::path::PathBuf,
    /// Maximum nesting depth of a query.
    #[arg(long, env = "RUNLEDGER_MAX_DEPTH", default_value_t = 15)]
    pub max_depth: usize,
    /// Maximum complexity (fields weighted) of a query.
    #[arg(long, env = "RUNLEDGER_MAX_COMPLEXITY", default_value_t = 5000)]
    pub max_complexity: usize,
    /// Maximum operations in one batched request.
    #[arg(long, env = "RUNLEDGER_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,
    /// Maximum request body size in bytes.
    #[arg(long, env = "RUNLEDGER_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    pub max_body_bytes: usize,
    /// Per-request time limit in seconds.
    #[arg(long, env = "RUNLEDGER_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Turn schema introspection off (GraphiQL then cannot load the schema).
    #[arg(long, env = "RUNLEDGER_DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,
    /// Most aliased fields one operation may hold (alias fan-out).
    #[arg(long, env = "RUNLEDGER_MAX_ALIASES", default_value_t = 50)]
    pub max_aliases: usize,
    /// Most bytes of GraphQL query text per operation (longer documents are refused unparsed).
    #[arg(long, env = "RUNLEDGER_MAX_DOCUMENT_BYTES", default_value_t = 100_000)]
    pub max_document_bytes: usize,
    /// Most field selections in a document once its fragments are expanded.
    #[arg(long, env = "RUNLEDGER_MAX_SELECTIONS", default_value_t = 5_000)]
    pub max_selections: usize,
    /// Seconds a connection may take to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, env = "RUNLEDGER_HEADER_READ_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,
    /// Requests per second each API key may make on average (0 turns rate limiting off).
    #[arg(long, env = "RUNLEDGER_RATE_LIMIT_PER_SECOND", default_value_t = 50.0)]
    pub rate_limit_per_second: f64,
    /// Requests a key may make at once before the average applies.
    #[arg(long, env = "RUNLEDGER_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Origins allowed to call the API from a browser (comma-separated, `*` for any); none by
    /// default.
    #[arg(long, env = "RUNLEDGER_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Record every request's authorization decisions and evidence reads in the ledger.
    #[arg(long, env = "RUNLEDGER_RECORD_REQUESTS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub record_requests: bool,
    /// Re-verify every ledger in full (from seq 1, records and exports included) every this
    /// many seconds in the background, recording each result in the ledger; 0 turns it off.
    #[arg(
        long,
        env = "RUNLEDGER_FULL_VERIFY_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub full_verify_interval_secs: u64,
    /// Serve request and SQL statement counters at `/metrics` (Prometheus text format).
    #[arg(long, env = "RUNLEDGER_METRICS")]
    pub metrics: bool,
    /// Log format on stderr.
    #[arg(long, env = "RUNLEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    #[command(flatten)]
    pub exports: ExportArgs,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Where exports are written and how many are built at once.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Directory of finished export files (`<dir>/<tenant>/<export id>.jsonl`), created when
    /// missing. Servers sharing one database must share this directory.
    #[arg(
        long,
        env = "RUNLEDGER_EXPORT_DIR",
        default_value = "runledger-exports"
    )]
    pub export_dir: std::path::PathBuf,
    /// Export builds this process runs at once (0: build none; jobs wait for another process).
    #[arg(long, env = "RUNLEDGER_EXPORT_WORKERS", default_value_t = 2)]
    pub export_workers: usize,
    /// Export builds of one tenant running at once, across all processes.
    #[arg(long, env = "RUNLEDGER_EXPORT_PER_TENANT", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub export_per_tenant: u64,
    /// Exports one tenant may have queued or building; more requests are refused (RATE_LIMITED).
    #[arg(long, env = "RUNLEDGER_EXPORT_MAX_PENDING", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub export_max_pending: u64,
}

/// Bounds of live subscriptions (docs/live.md).
#[derive(Clone, Debug, clap::Args)]
pub struct LiveArgs {
    /// Open subscriptions allowed per API key; more are refused (TOO_MANY_SUBSCRIPTIONS).
    #[arg(long, env = "RUNLEDGER_MAX_SUBSCRIPTIONS_PER_KEY", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_subscriptions_per_key: u64,
    /// Open subscriptions allowed on this server.
    #[arg(long, env = "RUNLEDGER_MAX_SUBSCRIPTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_subscriptions: u64,
    /// Batches of new ledger entries kept for the slowest subscriber of a ledger; one further
    /// behind ends with SLOW_CONSUMER (and the cursor to resume from).
    #[arg(long, env = "RUNLEDGER_SUBSCRIPTION_BUFFER", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub subscription_buffer: u64,
    /// Events a subscription may have waiting for its client; a client that leaves the queue
    /// full for 5 seconds is cut off with SLOW_CONSUMER (and the cursor to resume from).
    #[arg(long, env = "RUNLEDGER_SUBSCRIPTION_QUEUE", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub subscription_queue: u64,
    /// How often (seconds) a subscription's deliveries are recorded in the ledger.
    #[arg(long, env = "RUNLEDGER_SUBSCRIPTION_RECORD_INTERVAL_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub subscription_record_interval_secs: u64,
}

impl LiveArgs {
    pub fn settings(&self) -> crate::facade::live::LiveSettings {
        crate::facade::live::LiveSettings {
            buffer: self.subscription_buffer as usize,
            queue: self.subscription_queue as usize,
            stall: Duration::from_secs(5),
            max_per_key: self.max_subscriptions_per_key as usize,
            max_total: self.max_subscriptions as usize,
            record_interval: Duration::from_secs(self.subscription_record_interval_secs),
        }
    }
}

impl ExportArgs {
    /// The export settings these flags give.
    pub fn settings(&self) -> ExportSettings {
        ExportSettings {
            workers: self.export_workers,
            per_tenant: self.export_per_tenant as usize,
            max_pending_per_tenant: self.export_max_pending,
            ..ExportSettings::in_dir(self.export_dir.clone())
        }
    }
}

impl ServeArgs {
    /// What the server runs with: the one mapping from flags to settings.
    pub fn server_config(&self) -> AppResult<ServerConfig> {
        let http = HttpSettings {
            max_batch: self.max_batch,
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            limits: Limits {
                max_depth: self.max_depth,
                max_complexity: self.max_complexity,
                introspection: !self.disable_introspection,
            },
            graphiql_bearer: None,
            record_requests: self.record_requests,
            max_aliases: self.max_aliases,
            max_document_bytes: self.max_document_bytes,
            max_selections: self.max_selections,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            rate_limit: (self.rate_limit_per_second > 0.0)
                .then_some((self.rate_limit_per_second, self.rate_limit_burst)),
            cors_allowed_origins: self.cors_allowed_origins.clone(),
            metrics: self.metrics,
            live: self.live.settings(),
        };
        Ok(ServerConfig {
            listen: self.listen,
            http,
            signing_key_file: self.ledger.signing_key_file.clone(),
            log_name: self.ledger.log_name.clone(),
            trusted_keys: self.ledger.trusted_verifiers()?,
            checkpoints: Some(CheckpointPolicy {
                every_entries: self.checkpoints.checkpoint_every_entries,
                interval: Duration::from_secs(self.checkpoints.checkpoint_interval_secs),
            }),
            full_verify_interval: Duration::from_secs(self.full_verify_interval_secs),
            exports: self.exports.settings(),
        })
    }
}

/// A listen address: `IP:PORT`, or `localhost:PORT` (taken as 127.0.0.1, never resolved).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Some(port) = text.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` is not a port number"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("`{text}` is not IP:PORT (e.g. 127.0.0.1:8080) or localhost:PORT"))
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Number of tenants to create.
    #[arg(long, default_value_t = 3)]
    pub tenants: u32,
    /// Runs per tenant.
    #[arg(long, default_value_t = 200)]
    pub runs: u32,
    /// Trace steps per run.
    #[arg(long, default_value_t = 8)]
    pub steps_per_run: u32,
    /// Percent of runs that carry telemetry samples (about 120 rows per minute of run time).
    #[arg(long, default_value_t = 50)]
    pub telemetry_percent: u32,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Where the seeded exports are built (serve with the same `--export-dir` to download them).
    #[command(flatten)]
    pub exports: ExportArgs,
}

/// Role names as typed on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Auditor,
    Ingest,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Ingest => Role::Ingest,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Store system records from a JSON file: an array of objects shaped like GraphQL's
    /// `SystemRecordInput`. Prints what was stored and what was already there.
    SystemRecords {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The JSON file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Store them as global records, visible to every tenant.
        #[arg(long, conflicts_with = "tenant", required_unless_present = "tenant")]
        global: bool,
        /// Store them as records of this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for an existing tenant (see `tenants create`); prints the key alone on
    /// stdout.
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Tenant id (it must exist).
        #[arg(long)]
        tenant: String,
        /// Role of the key.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Free-text label to recognise the key by.
        #[arg(long)]
        label: Option<String>,
    },
    /// Replace a key: prints the new key; the old one stops working.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        tenant: String,
        /// The public id of the key (the `<id>` of `rl_<id>_<secret>`).
        #[arg(long)]
        key_id: String,
    },
    /// Revoke a key: it authenticates nothing from now on.
    Revoke {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        key_id: String,
    },
    /// Print the verifier key of the checkpoint signing key (creating the key when absent).
    Public {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Replace the checkpoint signing key: with the current key (--signing-key-file), create a
    /// new one in --new-key-file and record the handover, signed by both keys, in the platform
    /// ledger (SIGNING_KEY_ROTATED). Servers then start with the new key and trust the old
    /// key's checkpoints; the old key may not sign again. Prints the new verifier key.
    RotateSigning {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
        /// Where to create the new key (owner-only); it must not exist.
        #[arg(long)]
        new_key_file: std::path::PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["runledger", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Serve(args),
                ..
            }) => args,
            Ok(_) => panic!("not the serve command"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn serve_defaults_map_to_the_shipped_settings() {
        let config = serve(&[]).server_config().unwrap();
        let defaults = HttpSettings::default();
        assert_eq!(
            config.listen,
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(config.http.max_batch, defaults.max_batch);
        assert_eq!(config.http.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(config.http.request_timeout, defaults.request_timeout);
        assert_eq!(config.http.max_aliases, defaults.max_aliases);
        assert_eq!(config.http.max_document_bytes, defaults.max_document_bytes);
        assert_eq!(config.http.max_selections, defaults.max_selections);
        assert_eq!(
            config.http.header_read_timeout,
            defaults.header_read_timeout
        );
        assert_eq!(config.http.limits.max_depth, Limits::default().max_depth);
        assert_eq!(
            config.http.limits.max_complexity,
            Limits::default().max_complexity
        );
        assert!(config.http.limits.introspection);
        assert!(config.http.record_requests);
        assert!(!config.http.metrics);
        assert!(config.http.cors_allowed_origins.is_empty());
        assert_eq!(config.http.graphiql_bearer, None);
        // Rate limiting is on by default for `serve` (the library default is off).
        assert_eq!(config.http.rate_limit, Some((50.0, 100)));
        let policy = config.checkpoints.unwrap();
        assert_eq!(policy.every_entries, 1000);
        assert_eq!(policy.interval, Duration::from_secs(10));
        assert_eq!(config.full_verify_interval, Duration::from_secs(3600));
        assert_eq!(
            config.signing_key_file,
            std::path::PathBuf::from("runledger-signing.key")
        );
        assert_eq!(config.log_name, "runledger");
        assert!(config.trusted_keys.is_empty());
    }

    #[test]
    fn serve_flags_map_to_settings() {
        let config = serve(&[
            "--listen",
            "localhost:9000",
            "--max-batch",
            "3",
            "--max-body-bytes",
            "1000",
            "--request-timeout-secs",
            "7",
            "--max-depth",
            "9",
            "--max-complexity",
            "99",
            "--disable-introspection",
            "--max-aliases",
            "5",
            "--max-document-bytes",
            "512",
            "--max-selections",
            "77",
            "--header-read-timeout-secs",
            "4",
            "--rate-limit-per-second",
            "0",
            "--cors-allowed-origins",
            "https://a.example, https://b.example",
            "--record-requests",
            "false",
            "--full-verify-interval-secs",
            "0",
            "--metrics",
            "--checkpoint-every-entries",
            "12",
            "--checkpoint-interval-secs",
            "3",
            "--log-name",
            "acme",
            "--signing-key-file",
            "/tmp/k.key",
        ])
        .server_config()
        .unwrap();
        assert_eq!(
            config.listen,
            "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(config.http.max_batch, 3);
        assert_eq!(config.http.max_body_bytes, 1000);
        assert_eq!(config.http.request_timeout, Duration::from_secs(7));
        assert_eq!(config.http.limits.max_depth, 9);
        assert_eq!(config.http.limits.max_complexity, 99);
        assert!(!config.http.limits.introspection);
        assert_eq!(config.http.max_aliases, 5);
        assert_eq!(config.http.max_document_bytes, 512);
        assert_eq!(config.http.max_selections, 77);
        assert_eq!(config.http.header_read_timeout, Duration::from_secs(4));
        assert_eq!(config.http.rate_limit, None);
        assert_eq!(
            config.http.cors_allowed_origins,
            vec![
                "https://a.example".to_string(),
                " https://b.example".to_string()
            ]
        );
        assert!(!config.http.record_requests);
        assert!(config.http.metrics);
        assert_eq!(config.full_verify_interval, Duration::ZERO);
        let policy = config.checkpoints.unwrap();
        assert_eq!(policy.every_entries, 12);
        assert_eq!(policy.interval, Duration::from_secs(3));
        assert_eq!(config.log_name, "acme");
        assert_eq!(
            config.signing_key_file,
            std::path::PathBuf::from("/tmp/k.key")
        );
    }

    #[test]
    fn an_unreadable_trusted_key_is_refused() {
        let args = serve(&["--trusted-keys", "not-a-key"]);
        assert!(args.server_config().is_err());
    }
}
