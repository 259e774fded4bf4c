//! What every handler of the HTTP edge shares: the settings an operator chose and the state
//! built from them once at start-up (database, schema, ledger keys, appender, caches, rate
//! limiter, counters), and the one constructor of a request's facade.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Caller;
use crate::auth::cache::KeyCache;
use crate::db::Db;
use crate::export::{ExportSettings, Queue};
use crate::facade::live::{Hub, LiveSettings};
use crate::facade::{Facade, TenantCache};
use crate::graphql::{AppSchema, Limits, build_schema};
use crate::ledger::appender::Appender;
use crate::ledger::checkpoint::LedgerKeys;

use super::documents::DocumentCache;
use super::metrics::Metrics;
use super::ratelimit::RateLimiter;

/// HTTP-level settings.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub limits: Limits,
    /// Key GraphiQL opens with (demo mode only).
    pub graphiql_bearer: Option<String>,
    /// Record every request's authorization decisions and evidence reads in the ledger (off
    /// only to measure what recording costs).
    pub record_requests: bool,
    /// Most aliased fields in one operation.
    pub max_aliases: usize,
    /// Most bytes of GraphQL query text in one operation.
    pub max_document_bytes: usize,
    /// Most field selections in one document once its fragments are expanded.
    pub max_selections: usize,
    /// How long a connection may take to send a request's headers (slow clients are cut off).
    pub header_read_timeout: Duration,
    /// Requests per second and burst allowed to each API key, and to each client address for
    /// requests without a key; `None` for no limit.
    pub rate_limit: Option<(f64, u32)>,
    /// Browser origins allowed by CORS (`*` for any); empty for no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// Serve request and SQL statement counters at `/metrics`.
    pub metrics: bool,
    /// Bounds of live subscriptions.
    pub live: LiveSettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_batch: 10,
            max_body_bytes: 4 << 20,
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            graphiql_bearer: None,
            record_requests: true,
            max_aliases: 50,
            max_document_bytes: 100_000,
            max_selections: 5_000,
            header_read_timeout: Duration::from_secs(30),
            rate_limit: None,
            cors_allowed_origins: Vec::new(),
            metrics: false,
            live: LiveSettings::default(),
        }
    }
}

impl HttpSettings {
    /// The bounds every GraphQL document is checked against before it runs.
    pub fn document_bounds(&self) -> crate::graphql::bounds::DocumentBounds {
        crate::graphql::bounds::DocumentBounds {
            max_bytes: self.max_document_bytes,
            max_selections: self.max_selections,
            max_aliases: self.max_aliases,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub schema: AppSchema,
    pub settings: Arc<HttpSettings>,
    /// The key that signs checkpoints, and the keys verification trusts.
    pub ledger: LedgerKeys,
    /// Group commit for ledger entries written outside evidence batches.
    pub appender: Appender,
    /// Per-key token buckets, when rate limiting is on.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Counters for `/metrics`, when it is served.
    pub metrics: Option<Arc<Metrics>>,
    /// Parsed documents of the queries the server has seen.
    pub documents: Arc<DocumentCache>,
    /// Tenant records the server has read.
    pub tenants: Arc<TenantCache>,
    /// API keys kept between requests (PostgreSQL only: it announces key changes; see
    /// `auth::cache`).
    pub key_cache: Option<Arc<KeyCache>>,
    /// Where exports live, and the queue that wakes this process's export workers.
    pub exports: Option<(Arc<ExportSettings>, Queue)>,
    /// Live subscriptions: ledger feeds, limits, shutdown.
    pub live: Arc<Hub>,
}

impl AppState {
    /// The state of a server on `db`; `key_cache` is the API key cache start-up subscribed to
    /// key changes (PostgreSQL), if any.
    pub fn new(
        mut db: Db,
        ledger: LedgerKeys,
        key_cache: Option<Arc<KeyCache>>,
        settings: HttpSettings,
    ) -> Self {
        // Counting starts before the appender takes its copy of the connection.
        let metrics = settings.metrics.then(|| Metrics::counting(&mut db));
        AppState {
            metrics,
            key_cache,
            documents: Arc::default(),
            tenants: Arc::default(),
            schema: build_schema(&settings.limits),
            live: Hub::start(db.clone(), settings.live.clone()),
            appender: Appender::start(db.clone()),
            rate_limiter: settings
                .rate_limit
                .and_then(|(rate, burst)| RateLimiter::new(rate, burst))
                .map(Arc::new),
            db,
            settings: Arc::new(settings),
            ledger,
            exports: None,
        }
    }

    /// Serves and requests exports with these settings, waking `queue`'s workers.
    pub fn with_exports(mut self, settings: ExportSettings, queue: Queue) -> Self {
        self.exports = Some((Arc::new(settings), queue));
        self
    }
}

impl AppState {
    /// The facade one request runs with: the caller's view of the data, recording what it is
    /// allowed and what it reads. The only place a request's facade is made.
    pub fn request_facade(&self, caller: Option<Caller>, operation: Option<String>) -> Arc<Facade> {
        let facade = Facade::for_request(
            self.db.clone(),
            self.ledger.clone(),
            self.appender.clone(),
            caller,
        )
        .with_tenant_cache(self.tenants.clone())
        .with_key_cache(self.key_cache.clone())
        .with_recording(self.settings.record_requests)
        .with_exports(self.exports.clone());
        facade.set_operation(operation);
        Arc::new(facade)
    }

    /// The facade of one live subscription (or an operation sent over a subscription
    /// transport): a request's facade that also reaches the live hub, and lives as long as it.
    pub fn subscription_facade(&self, caller: Caller, operation: Option<String>) -> Arc<Facade> {
        let facade = Facade::for_request(
            self.db.clone(),
            self.ledger.clone(),
            self.appender.clone(),
            Some(caller),
        )
        .with_tenant_cache(self.tenants.clone())
        .with_key_cache(self.key_cache.clone())
        .with_recording(self.settings.record_requests)
        .with_exports(self.exports.clone())
        .with_live(self.live.clone());
        facade.set_operation(operation);
        Arc::new(facade)
    }
}
