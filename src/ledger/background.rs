//! Full verification in the background: the server re-verifies every ledger from seq 1 on a
//! schedule (`serve --full-verify-interval-secs`), so that what a dashboard shows is what a full
//! check found, not only what the newest checkpoint vouches for. Each result is recorded in the
//! verified ledger as a `LEDGER_VERIFIED` entry (mode FULL, its first anomalies included), which
//! `audit { integrity { latestFullVerification } }` reads back.
//!
//! It must not take the request cores' time: it reads and hashes one range at a time on the
//! blocking pool (`parallel: 1`), and the async task that walks the chain yields between
//! chunks.

use std::time::Duration;

use super::checkpoint::{LedgerKeys, ledger_names};
use super::verify::{self, Report, Verdict, VerificationMode, VerifyOptions};
use crate::db::Db;
use crate::error::AppResult;

/// Who the background verifier's entries name as their actor.
pub const ACTOR: &str = "runledger-full-verifier";

/// Runs until `stop` resolves: every `interval` (the first time one interval after the start),
/// verifies every ledger in full and records each result in its ledger. An interval of zero
/// turns it off (it then only waits for `stop`). A ledger that cannot be verified is logged and
/// the round goes on with the next.
pub async fn run_full_verification_periodically(
    db: Db,
    keys: LedgerKeys,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    if interval.is_zero() {
        stop.await;
        return;
    }
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = timer.tick() => {
                tokio::select! {
                    _ = &mut stop => return,
                    () = verify_all(&db, &keys) => {}
                }
            }
        }
    }
}

/// One round: every ledger, one after the other.
async fn verify_all(db: &Db, keys: &LedgerKeys) {
    let names = match ledger_names(db).await {
        Ok(n) => n,
        Err(e) => {
            e.log();
            return;
        }
    };
    for tenant in names {
        match verify_and_record(db, keys, &tenant).await {
            Ok(report) if report.status == Verdict::Broken => tracing::warn!(
                tenant = %tenant,
                anomalies = report.anomalies.len(),
                first_broken_seq = ?report.first_broken_seq,
                first = ?report.anomalies.first().map(|a| a.kind),
                "background full verification found anomalies"
            ),
            Ok(report) => tracing::info!(
                tenant = %tenant,
                status = ?report.status,
                entries = report.entries_checked,
                "background full verification"
            ),
            Err(e) => e.log(),
        }
    }
}

/// Verifies one ledger in full and records the result in it (an empty ledger is left empty).
pub async fn verify_and_record(db: &Db, keys: &LedgerKeys, tenant_id: &str) -> AppResult<Report> {
    let opts = VerifyOptions {
        mode: VerificationMode::Full,
        verifiers: keys.verifiers(),
        retired: keys.retired_for(tenant_id),
        origin: keys.origin(tenant_id),
        trusted_checkpoint: None,
        check_records: true,
        parallel: 1,
    };
    let report = verify::verify(&db.conn, tenant_id, &opts).await?;
    if report.status != Verdict::Empty {
        let entry = verify::verification_entry(&report, Some(ACTOR.to_string()));
        let tx = db.begin_write().await?;
        super::append(&tx.txn, tenant_id, vec![entry]).await?;
        tx.commit().await?;
    }
    Ok(report)
}
