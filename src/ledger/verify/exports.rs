//! Export records against their chained entries. An export row (`log_exports`) may move from
//! PENDING to COMPLETED or FAILED, so it carries no record hash of its own; what it says is
//! held by the `EXPORT` entries of the tenant's ledger (entity type `log_export`, entity id
//! the export id):
//!
//! - `EXPORT_REQUESTED`: `after_state` `{scope, format, status: "PENDING"}`, the actor is
//!   `requested_by`, `occurred_at` is `requested_at`, `correlation_id` is `run_id`;
//! - `EXPORT_COMPLETED`: `after_state` `{status: "COMPLETED", checksum}`, `occurred_at` is
//!   `delivered_at`;
//! - `EXPORT_FAILED`: `after_state` `{status: "FAILED"}`.
//!
//! A full verification reads the tenant's export entries (few: two or three per export) and
//! compares every export row with them, page by page, naming each export that disagrees. (An
//! earlier version first compared a sum of SHA-256 hashes of both sides modulo 2^256; such an
//! additive hash can be matched by rewriting many rows at once, so it is not used.)

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use super::{Anomaly, AnomalyKind};
use crate::canonical::write_timestamp;
use crate::error::{AppResult, Context};
use crate::ledger::vocabulary::{EntityType, EventType, LedgerCategory};
use entity::{audit_ledger, log_exports};

/// The entity type of export entries, and their event types ([`crate::ledger::vocabulary`]).
const ENTITY_TYPE: &str = EntityType::LogExport.as_str();
const REQUESTED: &str = EventType::ExportRequested.as_str();
const COMPLETED: &str = EventType::ExportCompleted.as_str();
const FAILED: &str = EventType::ExportFailed.as_str();
const EXPORT: &str = LedgerCategory::Export.as_str();

/// Export rows read per statement.
const PAGE: u64 = 5000;

/// Most exports reported one by one.
const REPORTED: usize = 20;

/// A timestamp as the ledger encodes it, for messages that compare two.
fn time_text(t: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(27);
    write_timestamp(&mut out, t);
    String::from_utf8_lossy(&out).into_owned()
}

/// What an export entry claims, parsed from the stored entry.
#[derive(Clone, Debug)]
struct Claim {
    seq: i64,
    event_type: String,
    export_id: String,
    actor_id: Option<String>,
    correlation_id: Option<String>,
    occurred_at: DateTime<Utc>,
    status: Option<String>,
    scope: Option<String>,
    format: Option<String>,
    checksum: Option<String>,
}

impl Claim {
    /// The claim of an export entry; `None` for any other entry.
    fn of(e: &audit_ledger::Model) -> Option<Claim> {
        Self::from_parts(
            e.seq,
            &e.category,
            &e.event_type,
            &e.entity_type,
            &e.entity_id,
            e.actor_id.clone(),
            e.correlation_id.clone(),
            e.occurred_at,
            e.after_state.as_deref(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        seq: i64,
        category: &str,
        event_type: &str,
        entity_type: &str,
        entity_id: &str,
        actor_id: Option<String>,
        correlation_id: Option<String>,
        occurred_at: DateTime<Utc>,
        after_state: Option<&str>,
    ) -> Option<Claim> {
        if category != EXPORT
            || entity_type != ENTITY_TYPE
            || ![REQUESTED, COMPLETED, FAILED].contains(&event_type)
        {
            return None;
        }
        let state: Option<Value> = after_state.and_then(|t| serde_json::from_str(t).ok());
        let text = |name: &str| {
            state
                .as_ref()
                .and_then(|s| s.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Some(Claim {
            seq,
            event_type: event_type.to_string(),
            export_id: entity_id.to_string(),
            actor_id,
            correlation_id,
            occurred_at,
            status: text("status"),
            scope: text("scope"),
            format: text("format"),
            checksum: text("checksum"),
        })
    }
}

/// Compares the tenant's export rows with its export entries, one anomaly per export that
/// disagrees (at most a few named, the rest counted). Returns the number of rows checked.
pub(crate) async fn check(
    conn: &DatabaseConnection,
    tenant_id: &str,
    anomalies: &mut Vec<Anomaly>,
) -> AppResult<u64> {
    let (found, rows) = compare_one_by_one(conn, tenant_id).await?;
    anomalies.extend(found);
    Ok(rows)
}

async fn page_of_rows(
    conn: &DatabaseConnection,
    tenant_id: &str,
    after: Option<&str>,
) -> AppResult<Vec<log_exports::Model>> {
    let mut q = log_exports::Entity::find().filter(log_exports::Column::TenantId.eq(tenant_id));
    if let Some(id) = after {
        q = q.filter(log_exports::Column::Id.gt(id));
    }
    q.order_by_asc(log_exports::Column::Id)
        .limit(PAGE)
        .all(conn)
        .await
        .context("read export records for verification")
}

/// Every export entry of the tenant (read now, so an export written while the walk ran is seen
/// whole) against every export row: the anomalies, and the number of rows read.
async fn compare_one_by_one(
    conn: &DatabaseConnection,
    tenant_id: &str,
) -> AppResult<(Vec<Anomaly>, u64)> {
    let entries = audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(tenant_id))
        .filter(audit_ledger::Column::Category.eq(EXPORT))
        .order_by_asc(audit_ledger::Column::Seq)
        .all(conn)
        .await
        .context("read export entries for verification")?;
    let mut trails: HashMap<String, Vec<Claim>> = HashMap::new();
    for claim in entries.iter().filter_map(Claim::of) {
        trails
            .entry(claim.export_id.clone())
            .or_default()
            .push(claim);
    }
    let mut found: Vec<Anomaly> = Vec::new();
    let mut more = 0usize;
    let mut report = |a: Anomaly, found: &mut Vec<Anomaly>| {
        if found.len() < REPORTED {
            found.push(a);
        } else {
            more += 1;
        }
    };
    let mut after: Option<String> = None;
    let mut rows = 0u64;
    loop {
        let page = page_of_rows(conn, tenant_id, after.as_deref()).await?;
        rows += page.len() as u64;
        for r in &page {
            let trail = trails.remove(&r.id).unwrap_or_default();
            let problems = problems_of(r, &trail);
            if let Some((seq, _)) = problems.first() {
                let detail = problems
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                report(
                    Anomaly {
                        kind: AnomalyKind::ExportMismatch,
                        seq: *seq,
                        seq_end: None,
                        record: Some(format!("log_exports:{}", r.id)),
                        detail: format!("export `{}`: {detail}", r.id),
                    },
                    &mut found,
                );
            }
        }
        match page.last() {
            Some(last) if page.len() as u64 == PAGE => after = Some(last.id.clone()),
            _ => break,
        }
    }
    let mut orphans: Vec<(String, Vec<Claim>)> = trails.into_iter().collect();
    orphans.sort_by_key(|(_, claims)| claims.first().map(|c| c.seq));
    for (id, claims) in orphans {
        let seq = claims.first().map(|c| c.seq);
        report(
            Anomaly {
                kind: AnomalyKind::ExportMismatch,
                seq,
                seq_end: None,
                record: Some(format!("log_exports:{id}")),
                detail: format!(
                    "the ledger records export `{id}` (seq {}), which has no row in log_exports",
                    seq.unwrap_or_default()
                ),
            },
            &mut found,
        );
    }
    if more > 0 {
        found.push(Anomaly {
            kind: AnomalyKind::ExportMismatch,
            seq: None,
            seq_end: None,
            record: None,
            detail: format!("{more} more exports disagree with their ledger entries"),
        });
    }
    Ok((found, rows))
}

/// What is wrong with one export row given its entries: (the entry concerned, what).
fn problems_of(r: &log_exports::Model, trail: &[Claim]) -> Vec<(Option<i64>, String)> {
    let mut out: Vec<(Option<i64>, String)> = Vec::new();
    let of_type = |t: &str| {
        trail
            .iter()
            .filter(|c| c.event_type == t)
            .collect::<Vec<_>>()
    };
    let requested = of_type(REQUESTED);
    match requested.as_slice() {
        [] => out.push((
            None,
            "no EXPORT_REQUESTED entry in the ledger records it".to_string(),
        )),
        [c, rest @ ..] => {
            for extra in rest {
                out.push((
                    Some(extra.seq),
                    format!("a second EXPORT_REQUESTED entry (seq {})", extra.seq),
                ));
            }
            let at = |label: &str, stored: Option<&str>, held: Option<&str>| {
                (stored != held).then(|| {
                    format!(
                        "stored {label} {} differs from {} held by the EXPORT_REQUESTED entry \
                         (seq {})",
                        shown(stored),
                        shown(held),
                        c.seq
                    )
                })
            };
            let requested_at = time_text(&r.requested_at);
            let held_at = time_text(&c.occurred_at);
            for p in [
                at("scope", Some(&r.scope), c.scope.as_deref()),
                at("format", Some(&r.format), c.format.as_deref()),
                at("requested_by", Some(&r.requested_by), c.actor_id.as_deref()),
                at("requested_at", Some(&requested_at), Some(&held_at)),
                at("run_id", r.run_id.as_deref(), c.correlation_id.as_deref()),
                at("status", Some("PENDING"), c.status.as_deref()),
            ]
            .into_iter()
            .flatten()
            {
                out.push((Some(c.seq), p));
            }
        }
    }
    let completed = of_type(COMPLETED);
    let failed = of_type(FAILED);
    let terminal: Vec<&&Claim> = completed.iter().chain(failed.iter()).collect();
    for extra in terminal.iter().skip(1) {
        out.push((
            Some(extra.seq),
            format!(
                "a second final entry ({} at seq {})",
                extra.event_type, extra.seq
            ),
        ));
    }
    match r.status.as_str() {
        "PENDING" => {
            if let Some(t) = terminal.first() {
                out.push((
                    Some(t.seq),
                    format!(
                        "stored as PENDING, but the ledger records {} at seq {}",
                        t.event_type, t.seq
                    ),
                ));
            }
            if r.checksum.is_some() || r.delivered_at.is_some() {
                out.push((
                    requested.first().map(|c| c.seq),
                    "a PENDING export holds a checksum or delivery time no entry records"
                        .to_string(),
                ));
            }
        }
        "COMPLETED" => match completed.first() {
            None => out.push((
                terminal.first().map(|t| t.seq),
                "stored as COMPLETED, but no EXPORT_COMPLETED entry records it".to_string(),
            )),
            Some(c) => {
                if r.checksum.as_deref() != c.checksum.as_deref() {
                    out.push((
                        Some(c.seq),
                        format!(
                            "stored checksum {} differs from {} held by the EXPORT_COMPLETED \
                             entry (seq {})",
                            shown(r.checksum.as_deref()),
                            shown(c.checksum.as_deref()),
                            c.seq
                        ),
                    ));
                }
                let delivered = r.delivered_at.as_ref().map(time_text);
                let held = time_text(&c.occurred_at);
                if delivered.as_deref() != Some(held.as_str()) {
                    out.push((
                        Some(c.seq),
                        format!(
                            "stored delivered_at {} differs from {} of the EXPORT_COMPLETED \
                             entry (seq {})",
                            shown(delivered.as_deref()),
                            shown(Some(&held)),
                            c.seq
                        ),
                    ));
                }
                if c.status.as_deref() != Some("COMPLETED") {
                    out.push((
                        Some(c.seq),
                        format!(
                            "the EXPORT_COMPLETED entry (seq {}) holds status {}",
                            c.seq,
                            shown(c.status.as_deref())
                        ),
                    ));
                }
            }
        },
        "FAILED" => match failed.first() {
            None => out.push((
                terminal.first().map(|t| t.seq),
                "stored as FAILED, but no EXPORT_FAILED entry records it".to_string(),
            )),
            Some(c) if c.status.as_deref() != Some("FAILED") => out.push((
                Some(c.seq),
                format!(
                    "the EXPORT_FAILED entry (seq {}) holds status {}",
                    c.seq,
                    shown(c.status.as_deref())
                ),
            )),
            Some(_) => {}
        },
        other => out.push((
            terminal.first().map(|t| t.seq),
            format!("stored status `{other}` is not an export status"),
        )),
    }
    // Anomalies sort by seq: the entry concerned first, then the ones with none.
    out.sort_by_key(|(seq, _)| seq.unwrap_or(i64::MAX));
    out
}

fn shown(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("`{s}`"),
        None => "none".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(status: &str, checksum: Option<&str>) -> log_exports::Model {
        let at = |s: i64| Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap();
        log_exports::Model {
            tenant_id: "acme".into(),
            id: "exp1".into(),
            run_id: Some("r1".into()),
            scope: "run:r1".into(),
            format: "JSON".into(),
            requested_by: "h-1".into(),
            status: status.into(),
            checksum: checksum.map(str::to_string),
            requested_at: at(0),
            delivered_at: (status == "COMPLETED").then(|| at(5)),
        }
    }

    fn claims(final_checksum: Option<&str>) -> Vec<Claim> {
        let at = |s: i64| Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap();
        let mut out = vec![
            Claim::from_parts(
                3,
                "EXPORT",
                REQUESTED,
                ENTITY_TYPE,
                "exp1",
                Some("h-1".into()),
                Some("r1".into()),
                at(0),
                Some(r#"{"format":"JSON","scope":"run:r1","status":"PENDING"}"#),
            )
            .unwrap(),
        ];
        if let Some(c) = final_checksum {
            out.push(
                Claim::from_parts(
                    4,
                    "EXPORT",
                    COMPLETED,
                    ENTITY_TYPE,
                    "exp1",
                    Some("runledger-export".into()),
                    Some("r1".into()),
                    at(5),
                    Some(&format!(r#"{{"checksum":"{c}","status":"COMPLETED"}}"#)),
                )
                .unwrap(),
            );
        }
        out
    }

    #[test]
    fn a_row_and_its_entries_agree() {
        for (r, trail) in [
            (row("COMPLETED", Some("abc")), claims(Some("abc"))),
            (row("PENDING", None), claims(None)),
        ] {
            assert!(problems_of(&r, &trail).is_empty());
        }
    }

    #[test]
    fn every_disagreement_is_named() {
        let trail = claims(Some("abc"));
        let mut edits: Vec<log_exports::Model> = Vec::new();
        let base = row("COMPLETED", Some("abc"));
        edits.push(log_exports::Model {
            checksum: Some("abd".into()),
            ..base.clone()
        });
        edits.push(log_exports::Model {
            format: "CSV".into(),
            ..base.clone()
        });
        edits.push(log_exports::Model {
            scope: "run:r2".into(),
            ..base.clone()
        });
        edits.push(log_exports::Model {
            requested_by: "h-2".into(),
            ..base.clone()
        });
        edits.push(log_exports::Model {
            run_id: None,
            ..base.clone()
        });
        edits.push(log_exports::Model {
            status: "FAILED".into(),
            ..base.clone()
        });
        edits.push(log_exports::Model {
            delivered_at: None,
            ..base.clone()
        });
        edits.push(log_exports::Model {
            requested_at: base.requested_at + chrono::Duration::microseconds(1),
            ..base.clone()
        });
        for r in edits {
            let problems = problems_of(&r, &trail);
            assert!(!problems.is_empty(), "{r:?}");
        }
        // A completed export rolled back to PENDING, and a row with no entries at all.
        let pending = row("PENDING", None);
        assert!(
            problems_of(&pending, &trail)[0]
                .1
                .contains("EXPORT_COMPLETED at seq 4")
        );
        assert!(problems_of(&base, &[])[0].1.contains("no EXPORT_REQUESTED"));
    }
}
