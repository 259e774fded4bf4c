//! Checkpoint reading: a tenant's stored checkpoints with their signatures checked against the
//! trusted keys (and the keys rotations retired, within their bounds), their stored Merkle
//! frontiers, and where an incremental walk can resume.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::report::{Anomaly, AnomalyKind, CheckpointView};
use crate::error::{AppResult, Context};
use crate::ledger::merkle;
use crate::ledger::note::{self, NoteError, NoteVerifier};
use crate::ledger::proof::Frontier;
use entity::ledger_checkpoints;

/// Serializes a frontier as concatenated hex.
pub fn frontier_text(f: &Frontier) -> String {
    f.hashes().iter().map(hex::encode).collect()
}

/// Parses a stored frontier of a tree of `size` leaves.
pub fn parse_frontier(size: u64, text: &str) -> Option<Frontier> {
    if !text.len().is_multiple_of(64) {
        return None;
    }
    let hashes = (0..text.len() / 64)
        .map(|i| merkle::parse_hash(text.get(i * 64..i * 64 + 64)?))
        .collect::<Option<Vec<_>>>()?;
    Frontier::from_parts(size, hashes)
}

/// A stored checkpoint with its signature checked.
pub(crate) struct CheckedCheckpoint {
    pub row: ledger_checkpoints::Model,
    pub root: [u8; 32],
    /// Why the checkpoint cannot be trusted; `None` when its signature, origin and row agree.
    pub problem: Option<Anomaly>,
}

/// A key trusted for a ledger's checkpoints only up to a tree size: a signing key a rotation
/// retired, for what the ledger's checkpoints covered when it was retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredKey {
    pub verifier: NoteVerifier,
    pub max_tree_size: i64,
}

/// The tenant's stored checkpoints, smallest first, each with its signature checked against
/// `verifiers` (or a `retired` key within its bound) and its note against `origin` and its row.
pub(crate) async fn read_checkpoints<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    verifiers: &[NoteVerifier],
    retired: &[RetiredKey],
    origin: &str,
) -> AppResult<Vec<CheckedCheckpoint>> {
    Ok(ledger_checkpoints::Entity::find()
        .filter(ledger_checkpoints::Column::TenantId.eq(tenant_id))
        .order_by_asc(ledger_checkpoints::Column::TreeSize)
        .all(conn)
        .await
        .context("read the ledger's checkpoints")?
        .into_iter()
        .map(|row| check_checkpoint(row, verifiers, retired, origin))
        .collect())
}

/// The Merkle frontier of the newest good checkpoint whose stored frontier folds to its signed
/// root: where a walk can resume.
pub(crate) fn newest_resumable(checkpoints: &[CheckedCheckpoint]) -> Option<Frontier> {
    checkpoints
        .iter()
        .rev()
        .filter(|c| c.problem.is_none() && c.row.tree_size > 0)
        .find_map(|c| {
            let f = parse_frontier(c.row.tree_size as u64, c.row.frontier.as_deref()?)?;
            (f.root() == c.root).then_some(f)
        })
}

fn check_checkpoint(
    row: ledger_checkpoints::Model,
    verifiers: &[NoteVerifier],
    retired: &[RetiredKey],
    origin: &str,
) -> CheckedCheckpoint {
    let root = merkle::parse_hash(&row.root_hash).unwrap_or([0u8; 32]);
    let mut opened = note::open_checkpoint(&row.signed_note, verifiers);
    if matches!(opened, Err(NoteError::UnknownKey(_))) {
        let by_retired = retired.iter().find_map(|k| {
            note::open_checkpoint(&row.signed_note, std::slice::from_ref(&k.verifier))
                .ok()
                .map(|cp| (k, cp))
        });
        match by_retired {
            Some((k, cp)) if cp.tree_size as i64 <= k.max_tree_size => opened = Ok(cp),
            Some((k, cp)) => {
                let problem = Anomaly::at(
                    AnomalyKind::UnknownKeySignature,
                    row.tree_size,
                    format!(
                        "checkpoint of size {} is signed by the retired key {}+{}, which its \
                         rotation trusts only up to size {}",
                        cp.tree_size,
                        k.verifier.name(),
                        k.verifier.key_id_hex(),
                        k.max_tree_size
                    ),
                );
                return CheckedCheckpoint {
                    row,
                    root,
                    problem: Some(problem),
                };
            }
            None => {}
        }
    }
    let problem = match opened {
        Err(NoteError::UnknownKey(who)) => Some(Anomaly::at(
            AnomalyKind::UnknownKeySignature,
            row.tree_size,
            format!(
                "checkpoint of size {} is signed by an untrusted key ({who})",
                row.tree_size
            ),
        )),
        Err(e) => Some(Anomaly::at(
            AnomalyKind::BadSignature,
            row.tree_size,
            format!("checkpoint of size {}: {}", row.tree_size, e.describe()),
        )),
        Ok(cp) if cp.origin != origin => Some(Anomaly::at(
            AnomalyKind::BadSignature,
            row.tree_size,
            format!(
                "checkpoint of size {} is signed for origin `{}`, not `{origin}`",
                row.tree_size, cp.origin
            ),
        )),
        Ok(cp) if cp.tree_size as i64 != row.tree_size || cp.root != root => Some(Anomaly::at(
            AnomalyKind::BadSignature,
            row.tree_size,
            format!(
                "the stored checkpoint row (size {}) does not match its signed note (size {})",
                row.tree_size, cp.tree_size
            ),
        )),
        Ok(_) => None,
    };
    CheckedCheckpoint { row, root, problem }
}

pub(super) fn view(c: &CheckedCheckpoint) -> CheckpointView {
    CheckpointView {
        tree_size: c.row.tree_size,
        root_hash: c.row.root_hash.clone(),
        key_id: c.row.key_id.clone(),
        signature_valid: c.problem.is_none(),
        signed_note: c.row.signed_note.clone(),
        recorded_at: c.row.recorded_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_frontier_round_trips() {
        let mut f = Frontier::new();
        for i in 0..13u8 {
            f.push([i; 32]);
        }
        let text = frontier_text(&f);
        let back = parse_frontier(13, &text).unwrap();
        assert_eq!(back.root(), f.root());
        assert!(parse_frontier(12, &text).is_none());
        assert!(parse_frontier(13, &text[1..]).is_none());
    }
}
