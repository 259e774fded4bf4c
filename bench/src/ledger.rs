//! Ledger benchmark: appends per second through the group-commit appender with 1, 16 and 64
//! concurrent writers, then a ledger of `--entries` entries built in bulk, checkpointed, and
//! verified in full (on every core, then on one as the background verifier does) and
//! incrementally (entries per second).

use std::time::{Duration, Instant};

use chrono::Utc;
use runledger::db::Db;
use runledger::ledger::appender::Appender;
use runledger::ledger::checkpoint::{LedgerKeys, checkpoint_tenant};
use runledger::ledger::note::NoteSigner;
use runledger::ledger::verify::{self, Verdict, VerificationMode, VerifyOptions};
use runledger::ledger::vocabulary::{self, EntityType, EvidenceRead};
use runledger::ledger::{NewEntry, append};

/// One measured line.
pub struct Figure {
    pub backend: &'static str,
    pub what: String,
    pub count: u64,
    pub elapsed: Duration,
    pub note: String,
}

/// An `EVIDENCE_READ` of one run, as a request by key `bench` leaves it.
fn access_entry(i: u64) -> NewEntry {
    let run_id = format!("run-{i:08}");
    let read = EvidenceRead {
        key_id: "bench",
        operation: "RunEnvelope",
        topic: "runs",
        entity_type: EntityType::LlmRun,
        entity_id: run_id.clone(),
        views: vec!["envelope"],
        filters: None,
        rows: 1,
        ids: vec![run_id],
    };
    vocabulary::evidence_read(read, Utc::now())
}

fn err(e: runledger::error::AppError) -> String {
    e.describe()
}

pub async fn run(
    backend: &'static str,
    db: &Db,
    appends: u64,
    entries: u64,
) -> Result<Vec<Figure>, String> {
    let mut figures = Vec::new();
    let appender = Appender::start(db.clone());
    for writers in [1u64, 16, 64] {
        let tenant = format!("append-{writers}");
        let per_writer = appends / writers;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let appender = appender.clone();
            let tenant = tenant.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per_writer {
                    appender
                        .append(&tenant, vec![access_entry(w * per_writer + i)])
                        .await
                        .map_err(err)?;
                }
                Ok::<(), String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        let elapsed = started.elapsed();
        figures.push(Figure {
            backend,
            what: format!("appends, {writers} concurrent writer(s), one entry per append"),
            count: per_writer * writers,
            elapsed,
            note: "each acknowledged after its commit".into(),
        });
    }

    // A large ledger, built in bulk (10,000 entries per transaction), of a tenant that exists
    // (a ledger without its tenant row is an anomaly): TENANT_CREATED, then the entries.
    let tenant = "big";
    runledger::auth::ensure_tenant(db, tenant, "Bench ledger", &[])
        .await
        .map_err(err)?;
    let size = entries + 1;
    let started = Instant::now();
    let mut written = 0u64;
    while written < entries {
        let n = (entries - written).min(10_000);
        let tx = db.begin_write().await.map_err(err)?;
        append(
            &tx.txn,
            tenant,
            (written..written + n).map(access_entry).collect(),
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        written += n;
    }
    figures.push(Figure {
        backend,
        what: "bulk append, 10,000 entries per transaction".into(),
        count: entries,
        elapsed: started.elapsed(),
        note: String::new(),
    });

    let keys = LedgerKeys::new(NoteSigner::generate("bench").map_err(err)?, "bench");
    let started = Instant::now();
    checkpoint_tenant(db, &keys, tenant).await.map_err(err)?;
    figures.push(Figure {
        backend,
        what: "first checkpoint (verifies the chain, builds the tree, signs)".into(),
        count: size,
        elapsed: started.elapsed(),
        note: String::new(),
    });

    let opts = |mode, parallel| VerifyOptions {
        mode,
        verifiers: keys.verifiers(),
        retired: keys.retired_for(tenant),
        origin: keys.origin(tenant),
        trusted_checkpoint: None,
        check_records: true,
        parallel,
    };
    for (parallel, what) in [
        (
            verify::all_cores(),
            "full verification (hashes, links, tree, checkpoint signature), every core",
        ),
        (
            1,
            "full verification, one range at a time (the background verifier's setting)",
        ),
    ] {
        let started = Instant::now();
        let report = verify::verify(&db.conn, tenant, &opts(VerificationMode::Full, parallel))
            .await
            .map_err(err)?;
        let elapsed = started.elapsed();
        if report.status != Verdict::Verified || report.entries_checked != size {
            return Err(format!(
                "full verification: {:?} after {} entries ({:?})",
                report.status,
                report.entries_checked,
                report.anomalies.first()
            ));
        }
        figures.push(Figure {
            backend,
            what: what.into(),
            count: report.entries_checked,
            elapsed,
            note: "VERIFIED".into(),
        });
    }

    // 1,000 more entries, then an incremental verification from the checkpoint.
    let tx = db.begin_write().await.map_err(err)?;
    append(
        &tx.txn,
        tenant,
        (entries..entries + 1000).map(access_entry).collect(),
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    let started = Instant::now();
    let report = verify::verify(
        &db.conn,
        tenant,
        &opts(VerificationMode::Incremental, verify::all_cores()),
    )
    .await
    .map_err(err)?;
    figures.push(Figure {
        backend,
        what: format!(
            "incremental verification from the checkpoint (ledger of {} entries)",
            size + 1000
        ),
        count: report.entries_checked,
        elapsed: started.elapsed(),
        note: format!("{:?}", report.status),
    });
    Ok(figures)
}
