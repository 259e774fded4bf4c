//! Operational counters, served at `GET /metrics` in the Prometheus text format when
//! `serve --metrics` turns them on: HTTP requests answered and SQL statements executed on
//! behalf of requests (reads, evidence writes and the request records the appender writes).
//! Background work (checkpoints) uses its own connection handle and is not counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::Db;

/// Counters shared by the router and the database callback.
#[derive(Debug, Default)]
pub struct Metrics {
    http_requests: AtomicU64,
    sql_statements: AtomicU64,
}

impl Metrics {
    /// New counters that count every statement run through `db` (and its later clones).
    pub fn counting(db: &mut Db) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::default());
        let counter = metrics.clone();
        db.conn.set_metric_callback(move |_| {
            counter.sql_statements.fetch_add(1, Ordering::Relaxed);
        });
        metrics
    }

    pub fn count_request(&self) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "runledger_http_requests_total",
                "HTTP requests answered.",
                self.http_requests.load(Ordering::Relaxed),
            ),
            (
                "runledger_sql_statements_total",
                "SQL statements executed on behalf of requests.",
                self.sql_statements.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        out
    }
}
