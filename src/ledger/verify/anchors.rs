//! Anchor checks: every anchor entry's Merkle root recomputed from the evidence records linked
//! to it, and the evidence records linked to no anchor entry of the ledger.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};

use super::report::{Anomaly, AnomalyKind};
use crate::canonical::{
    governance_json, hash_json, run_json, step_json, system_json, telemetry_json,
};
use crate::error::{AppResult, Context};
use crate::ledger::anchor::{AnchorState, anchor_leaves};
use crate::ledger::{PLATFORM_LEDGER, merkle};
use entity::{
    audit_ledger, governance_events, llm_runs, system_records, telemetry_samples, trace_steps,
};

/// An anchor entry's claim: the records linked to `anchor_id` have this Merkle root.
pub(super) struct AnchorClaim {
    seq: i64,
    anchor_id: String,
    merkle_root: Option<String>,
    records: Option<u64>,
}

impl AnchorClaim {
    pub(super) fn of(e: &audit_ledger::Model) -> Option<Self> {
        if e.category != "ANCHOR" || e.event_type != "EVIDENCE_BATCH_ANCHORED" {
            return None;
        }
        let state = AnchorState::parse(e.after_state.as_deref());
        Some(AnchorClaim {
            seq: e.seq,
            anchor_id: e.entity_id.clone(),
            merkle_root: state.merkle_root,
            records: state.records,
        })
    }
}

/// Anchors whose records are read per statement.
const ANCHORS_PER_READ: usize = 200;

/// A record recomputed: its table's position in the leaf order, key, hash, stored hash.
type Recomputed = (usize, String, [u8; 32], bool);

/// Recomputes every claimed anchor's root from the records linked to it.
pub(super) async fn check_anchors(
    conn: &DatabaseConnection,
    anchors: &[AnchorClaim],
    anomalies: &mut Vec<Anomaly>,
) -> AppResult<u64> {
    let mut records = 0u64;
    for group in anchors.chunks(ANCHORS_PER_READ) {
        let ids: Vec<&str> = group.iter().map(|a| a.anchor_id.as_str()).collect();
        let mut by_anchor: HashMap<String, Vec<Recomputed>> = HashMap::new();
        let mut add = |anchor: Option<String>, r: Recomputed| {
            if let Some(a) = anchor {
                by_anchor.entry(a).or_default().push(r);
            }
        };
        for r in llm_runs::Entity::find()
            .filter(llm_runs::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored runs")?
        {
            let h = hash_json(&run_json(&r));
            add(
                r.anchor_id.clone(),
                recomputed(0, format!("llm_runs:{}", r.run_id), &h, &r.record_hash),
            );
        }
        for s in trace_steps::Entity::find()
            .filter(trace_steps::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored steps")?
        {
            let h = hash_json(&step_json(&s));
            add(
                s.anchor_id.clone(),
                recomputed(
                    1,
                    format!("trace_steps:{}#{}", s.trace_id, s.step_index),
                    &h,
                    &s.record_hash,
                ),
            );
        }
        for g in governance_events::Entity::find()
            .filter(governance_events::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored governance events")?
        {
            let h = hash_json(&governance_json(&g));
            add(
                g.anchor_id.clone(),
                recomputed(2, format!("governance_events:{}", g.id), &h, &g.record_hash),
            );
        }
        for s in system_records::Entity::find()
            .filter(system_records::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored system records")?
        {
            let h = hash_json(&system_json(&s));
            add(
                s.anchor_id.clone(),
                recomputed(3, format!("system_records:{}", s.id), &h, &s.record_hash),
            );
        }
        for t in telemetry_samples::Entity::find()
            .filter(telemetry_samples::Column::AnchorId.is_in(ids.clone()))
            .all(conn)
            .await
            .context("read anchored telemetry samples")?
        {
            let h = hash_json(&telemetry_json(&t));
            add(
                t.anchor_id.clone(),
                recomputed(4, format!("telemetry_samples:{}", t.id), &h, &t.record_hash),
            );
        }
        for claim in group {
            let linked = by_anchor.remove(&claim.anchor_id).unwrap_or_default();
            records += linked.len() as u64;
            let mut per_table: [Vec<[u8; 32]>; 5] = Default::default();
            for (table, _, hash, _) in &linked {
                per_table[*table].push(*hash);
            }
            let root = hex::encode(merkle::root(&anchor_leaves(per_table)));
            let count_ok = claim.records.is_none_or(|n| n == linked.len() as u64);
            if claim.merkle_root.as_deref() == Some(root.as_str()) && count_ok {
                continue;
            }
            let edited: Vec<&str> = linked
                .iter()
                .filter(|(.., stored_matches)| !stored_matches)
                .map(|(_, key, ..)| key.as_str())
                .collect();
            let detail = if !edited.is_empty() {
                format!(
                    "records no longer hash to their stored hash: {}",
                    edited
                        .iter()
                        .take(5)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else if !count_ok {
                format!(
                    "the anchor covers {} records, {} are linked to it",
                    claim.records.unwrap_or_default(),
                    linked.len()
                )
            } else {
                "the records linked to this anchor do not hash to its Merkle root".to_string()
            };
            anomalies.push(Anomaly {
                kind: AnomalyKind::AnchorMismatch,
                seq: Some(claim.seq),
                seq_end: None,
                record: edited.first().map(|k| k.to_string()),
                detail,
            });
        }
    }
    Ok(records)
}

fn recomputed(table: usize, key: String, hash: &str, stored: &str) -> Recomputed {
    (
        table,
        key,
        merkle::parse_hash(hash).unwrap_or([0u8; 32]),
        hash == stored,
    )
}

/// Most records without an anchor reported one by one.
const UNANCHORED_REPORTED: usize = 20;

/// Records of the tenant linked to no anchor entry of its ledger (none, or one that is gone).
/// `anchors` are the anchor ids the walk found; an anchor written after the walk (a busy tenant)
/// is looked up before it is called gone. The platform ledger answers for the global system
/// records, whose anchors must be platform entries. True when some records point to an anchor
/// that is gone (the ledger lost entries).
pub(super) async fn find_unanchored_records(
    conn: &DatabaseConnection,
    tenant_id: &str,
    anchors: &[AnchorClaim],
    anomalies: &mut Vec<Anomaly>,
) -> AppResult<bool> {
    let known: std::collections::HashSet<&str> =
        anchors.iter().map(|a| a.anchor_id.as_str()).collect();
    let backend = conn.get_database_backend();
    let p = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    };
    let platform = tenant_id == PLATFORM_LEDGER;
    let tables: Vec<(&str, &str)> = if platform {
        vec![("system_records", "id")]
    } else {
        vec![
            ("llm_runs", "run_id"),
            ("trace_steps", "trace_id || '#' || CAST(step_index AS TEXT)"),
            ("governance_events", "id"),
            ("system_records", "id"),
            ("telemetry_samples", "id"),
        ]
    };
    // The records this ledger answers for, and the parameters that select them.
    let (scope, scope_values): (String, Vec<sea_orm::Value>) = if platform {
        ("tenant_id IS NULL".into(), vec![])
    } else {
        (format!("tenant_id = {}", p(1)), vec![tenant_id.into()])
    };
    let next = scope_values.len() + 1;
    let mut missing_anchor = false;
    let mut reported = 0;
    for (table, key) in tables {
        // One pass over the records: which anchors do they name?
        let groups = conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT anchor_id FROM {table} WHERE {scope} GROUP BY anchor_id"),
                scope_values.clone(),
            ))
            .await
            .with_context(|| format!("list the anchors {table} records name"))?;
        for row in groups {
            let anchor: Option<String> = row.try_get("", "anchor_id").unwrap_or_default();
            if let Some(a) = &anchor
                && (known.contains(a.as_str()) || anchor_exists(conn, tenant_id, a).await?)
            {
                continue;
            }
            missing_anchor |= anchor.is_some();
            if reported >= UNANCHORED_REPORTED {
                continue;
            }
            let mut values = scope_values.clone();
            let condition = match &anchor {
                Some(a) => {
                    values.push(a.clone().into());
                    format!("anchor_id = {}", p(next))
                }
                None => "anchor_id IS NULL".to_string(),
            };
            let rows = conn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT {key} AS k FROM {table} WHERE {scope} AND {condition} \
                         ORDER BY 1 LIMIT {}",
                        UNANCHORED_REPORTED - reported
                    ),
                    values,
                ))
                .await
                .with_context(|| format!("list unanchored {table} records"))?;
            for row in rows {
                let k: String = row.try_get("", "k").unwrap_or_default();
                reported += 1;
                anomalies.push(Anomaly {
                    kind: AnomalyKind::UnanchoredRecord,
                    seq: None,
                    seq_end: None,
                    record: Some(format!("{table}:{k}")),
                    detail: match &anchor {
                        Some(a) => format!("linked to anchor `{a}`, which is not in the ledger"),
                        None => "linked to no anchor entry".to_string(),
                    },
                });
            }
        }
    }
    Ok(missing_anchor)
}

/// Whether an anchor entry with this id exists in this ledger (for the global system records
/// the platform ledger answers for: in the platform ledger, never in a tenant's).
async fn anchor_exists(
    conn: &DatabaseConnection,
    tenant_id: &str,
    anchor_id: &str,
) -> AppResult<bool> {
    let q = audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(tenant_id))
        .filter(audit_ledger::Column::Category.eq("ANCHOR"))
        .filter(audit_ledger::Column::EntityId.eq(anchor_id));
    Ok(q.one(conn)
        .await
        .context("look up an anchor entry")?
        .is_some())
}
