//! The checkpoint signing key as part of each ledger's identity.
//!
//! A ledger's signed checkpoints name the key that vouches for it. A process that signs
//! checkpoints (`serve`, `seed`) therefore starts only when every ledger's newest checkpoint is
//! signed by a key it holds or trusts: the key of `--signing-key-file`, a verifier key listed in
//! `--trusted-keys`, or a predecessor of its key proven by a rotation statement in the platform
//! ledger. A missing key file is created only when no checkpoint would be orphaned by it.
//!
//! Rotation (`runledger keys rotate-signing`) appends `SIGNING_KEY_ROTATED` to the platform
//! ledger, carrying a statement — a C2SP signed note whose body names the old and the new
//! verifier key — signed by both keys. The old key's signature says its holder handed over; the
//! new key's signature is what a server holding the new key relies on to trust the old one: only
//! a key already trusted can add a predecessor, so someone who can write to the database but
//! holds no trusted key cannot make a server trust a key of theirs. A key that a valid statement
//! retired may not sign again.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};

use super::PLATFORM_LEDGER;
use super::append;
use super::note::{self, NoteSigner, NoteVerifier};
use super::verify::{RetiredKey, origin_of};
use super::vocabulary::{self, EventType};
use crate::canonical::micros;
use crate::db::Db;
use crate::domain::LedgerCategory;
use crate::error::{AppError, AppResult, Context};
use entity::{audit_ledger, ledger_checkpoints};

/// The server's ledger signing identity: the key, the log name that prefixes every origin,
/// and the keys whose signatures verification trusts.
#[derive(Clone, Debug)]
pub struct LedgerKeys {
    pub signer: Arc<NoteSigner>,
    pub log_name: String,
    /// Besides the signer's own key: keys trusted without bound (`--trusted-keys`).
    pub extra_verifiers: Vec<NoteVerifier>,
    /// Keys this one took over from by rotations, each trusted for a ledger's checkpoints only
    /// up to the tree size that ledger's newest checkpoint had when the key was retired.
    pub retired: Vec<(NoteVerifier, BTreeMap<String, i64>)>,
}

impl LedgerKeys {
    pub fn new(signer: NoteSigner, log_name: &str) -> Self {
        LedgerKeys {
            signer: Arc::new(signer),
            log_name: log_name.to_string(),
            extra_verifiers: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// The retired keys trusted for a ledger's checkpoints, each with the largest tree size
    /// it is trusted for there.
    pub fn retired_for(&self, tenant_id: &str) -> Vec<RetiredKey> {
        retired_for(&self.retired, tenant_id)
    }

    /// Every key whose checkpoint signatures are accepted.
    pub fn verifiers(&self) -> Vec<NoteVerifier> {
        let mut v = vec![NoteVerifier::from(self.signer.as_ref())];
        v.extend(self.extra_verifiers.iter().cloned());
        v
    }

    /// The checkpoint origin of a tenant's ledger.
    pub fn origin(&self, tenant_id: &str) -> String {
        origin_of(&self.log_name, tenant_id)
    }
}

/// The retired keys of `chain` trusted for a ledger's checkpoints, with their bounds there.
pub fn retired_for(
    chain: &[(NoteVerifier, BTreeMap<String, i64>)],
    tenant_id: &str,
) -> Vec<RetiredKey> {
    chain
        .iter()
        .map(|(verifier, covers)| RetiredKey {
            verifier: verifier.clone(),
            max_tree_size: covers.get(tenant_id).copied().unwrap_or(0),
        })
        .collect()
}

/// Event type of a signing key rotation in the platform ledger.
pub const ROTATION_EVENT: &str = EventType::SigningKeyRotated.as_str();

/// First line of a rotation statement's body.
const STATEMENT_TITLE: &str = "runledger signing key rotation";

/// The body of the statement that `old` hands the ledgers over to `new`, naming for every
/// ledger the tree size of its newest checkpoint at the rotation (`covers <size> <ledger>`):
/// the old key stays trusted for checkpoints up to those sizes and no further.
pub fn rotation_body(
    old: &NoteVerifier,
    new: &NoteVerifier,
    covers: &BTreeMap<String, i64>,
) -> String {
    let mut body = format!(
        "{STATEMENT_TITLE}\nold {}\nnew {}\n",
        old.verifier_key(),
        new.verifier_key()
    );
    for (ledger, size) in covers {
        body.push_str(&format!("covers {size} {ledger}\n"));
    }
    body
}

/// The ledgers and sizes a statement body names after its `old` and `new` lines.
fn parse_covers(body: &str) -> Result<BTreeMap<String, i64>, String> {
    let mut covers = BTreeMap::new();
    for line in body.lines().skip(3) {
        let parsed = line
            .strip_prefix("covers ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(size, ledger)| Some((size.parse::<i64>().ok()?, ledger)));
        match parsed {
            Some((size, ledger)) if size >= 0 && !ledger.is_empty() => {
                covers.insert(ledger.to_string(), size);
            }
            _ => return Err(format!("the statement has a malformed line `{line}`")),
        }
    }
    Ok(covers)
}

/// The rotation statement: [`rotation_body`] signed by the old key, then by the new one.
pub fn sign_rotation(old: &NoteSigner, new: &NoteSigner, covers: &BTreeMap<String, i64>) -> String {
    let body = rotation_body(&NoteVerifier::from(old), &NoteVerifier::from(new), covers);
    let mut statement = old.sign(&body);
    // `sign` returns `body ‖ "\n" ‖ signature line`: keep only the new key's line.
    statement.push_str(&new.sign(&body)[body.len() + 1..]);
    statement
}

/// A rotation whose statement verified under both keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Seq of the `SIGNING_KEY_ROTATED` entry in the platform ledger.
    pub seq: i64,
    pub old: NoteVerifier,
    pub new: NoteVerifier,
    /// The tree size of every ledger's newest checkpoint when the old key was retired.
    pub covers: BTreeMap<String, i64>,
}

/// Checks a rotation statement against the keys it claims to hand over between.
/// Returns the ledger sizes it covers.
pub fn open_rotation(
    old: &NoteVerifier,
    new: &NoteVerifier,
    statement: &str,
) -> Result<BTreeMap<String, i64>, String> {
    if old.key_id_hex() == new.key_id_hex() {
        return Err("the old and the new key are the same".into());
    }
    let mut covers = None;
    for (role, key) in [("old", old), ("new", new)] {
        let (body, _) = note::open_note(statement, std::slice::from_ref(key))
            .map_err(|e| format!("the {role} key's signature: {}", e.describe()))?;
        let named = parse_covers(body)?;
        if body != rotation_body(old, new, &named) {
            return Err("the statement does not name these two keys".into());
        }
        covers = Some(named);
    }
    covers.ok_or_else(|| "the statement has no signature".to_string())
}

/// The rotations recorded in the platform ledger whose statements verify, oldest first. An
/// entry whose statement does not verify grants nothing; it is logged.
pub async fn rotations<C: ConnectionTrait>(conn: &C) -> AppResult<Vec<Rotation>> {
    rotations_after(conn, 0).await
}

/// Like [`rotations`], for the entries after `after_seq` only.
pub async fn rotations_after<C: ConnectionTrait>(
    conn: &C,
    after_seq: i64,
) -> AppResult<Vec<Rotation>> {
    // The category narrows the scan to the platform's identity entries (index
    // `audit_ledger_category`), not every entry it ever recorded.
    let entries = audit_ledger::Entity::find()
        .filter(audit_ledger::Column::TenantId.eq(PLATFORM_LEDGER))
        .filter(audit_ledger::Column::Category.eq(LedgerCategory::Identity.as_str()))
        .filter(audit_ledger::Column::Seq.gt(after_seq))
        .filter(audit_ledger::Column::EventType.eq(ROTATION_EVENT))
        .order_by_asc(audit_ledger::Column::Seq)
        .all(conn)
        .await
        .context("read the signing key rotations of the platform ledger")?;
    let mut out = Vec::new();
    for e in entries {
        match rotation_of(&e) {
            Ok(r) => out.push(r),
            Err(why) => tracing::warn!(seq = e.seq, reason = %why,
                "ignoring a signing key rotation entry that does not verify"),
        }
    }
    Ok(out)
}

/// Reads and checks one `SIGNING_KEY_ROTATED` entry.
fn rotation_of(e: &audit_ledger::Model) -> Result<Rotation, String> {
    let field = |state: &Option<String>, name: &str| -> Result<String, String> {
        let value: serde_json::Value = serde_json::from_str(state.as_deref().unwrap_or("null"))
            .map_err(|_| "its state is not JSON".to_string())?;
        value[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("it has no `{name}`"))
    };
    let old =
        NoteVerifier::parse(&field(&e.before_state, "verifier_key")?).map_err(|e| e.describe())?;
    let new =
        NoteVerifier::parse(&field(&e.after_state, "verifier_key")?).map_err(|e| e.describe())?;
    let covers = open_rotation(&old, &new, &field(&e.after_state, "statement")?)?;
    Ok(Rotation {
        seq: e.seq,
        old,
        new,
        covers,
    })
}

/// Every key that handed over, through the chain of rotations, to `current`, newest first, with
/// the ledger sizes it is trusted up to (those its rotation names).
///
/// The rotations are replayed in seq order as one chain: a rotation counts only when it hands
/// over from the key the chain is at (the previous rotation's new key), so whoever holds a key
/// that was already retired cannot graft a key of theirs onto the chain behind it (a later
/// `x → a` after `a → b` is ignored). `current` has predecessors only when it is where the
/// chain ends.
pub fn predecessors(
    rotations: &[Rotation],
    current: &NoteVerifier,
) -> Vec<(NoteVerifier, BTreeMap<String, i64>)> {
    let mut chain: Vec<&Rotation> = Vec::new();
    for r in rotations {
        match chain.last() {
            Some(last) if r.old != last.new => {
                tracing::warn!(seq = r.seq, old = %r.old.key_id_hex(), at = %last.new.key_id_hex(),
                    "ignoring a signing key rotation that does not hand over from the current key");
            }
            _ => chain.push(r),
        }
    }
    match chain.last() {
        Some(last) if last.new == *current => chain
            .iter()
            .rev()
            .map(|r| (r.old.clone(), r.covers.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The newest checkpoint of every ledger that has one (highest tree size).
pub async fn newest_checkpoints<C: ConnectionTrait>(
    conn: &C,
) -> AppResult<Vec<ledger_checkpoints::Model>> {
    // One statement whatever the number of ledgers, grouped once and joined back on the primary
    // key (tenant_id, tree_size), so each ledger yields one row. (A correlated `= (SELECT MAX…)`
    // took PostgreSQL 5-6 s over 200,000 checkpoints of 1,000 ledgers; this takes 0.1-0.4 s.)
    let sql = "SELECT c.* FROM ledger_checkpoints c JOIN \
               (SELECT tenant_id, MAX(tree_size) AS newest FROM ledger_checkpoints GROUP BY tenant_id) m \
               ON m.tenant_id = c.tenant_id AND m.newest = c.tree_size ORDER BY c.tenant_id";
    ledger_checkpoints::Entity::find()
        .from_raw_sql(Statement::from_string(
            conn.get_database_backend(),
            sql.to_string(),
        ))
        .all(conn)
        .await
        .context("read the newest checkpoint of every ledger")
}

/// `name+keyid` of every signature line of a note (whether or not it verifies).
fn signers_of(signed_note: &str) -> Vec<String> {
    let Some((_, signatures)) = signed_note.rsplit_once("\n\n") else {
        return Vec::new();
    };
    signatures
        .lines()
        .filter_map(|line| {
            let (name, b64) = line.strip_prefix("\u{2014} ")?.split_once(' ')?;
            let blob = STANDARD.decode(b64).ok()?;
            Some(format!("{name}+{}", hex::encode(blob.get(..4)?)))
        })
        .collect()
}

/// How a checkpoint names its signer in messages: the signature lines' keys and the stored
/// `key_id` column.
fn signed_by(cp: &ledger_checkpoints::Model) -> String {
    let seen = signers_of(&cp.signed_note);
    let keys = if seen.is_empty() {
        "no readable signature".to_string()
    } else {
        format!("key {}", seen.join(", "))
    };
    format!("{keys} (key_id column {})", cp.key_id)
}

/// The first newest checkpoint that none of `verifiers` opens, nor a `retired` key within the
/// size it is trusted up to in that ledger, and how many do not.
fn untrusted<'a>(
    newest: &'a [ledger_checkpoints::Model],
    verifiers: &[NoteVerifier],
    retired: &[(NoteVerifier, BTreeMap<String, i64>)],
) -> Option<(&'a ledger_checkpoints::Model, usize)> {
    let trusted = |cp: &ledger_checkpoints::Model| {
        note::open_note(&cp.signed_note, verifiers).is_ok()
            || retired_for(retired, &cp.tenant_id).iter().any(|r| {
                cp.tree_size <= r.max_tree_size
                    && note::open_note(&cp.signed_note, std::slice::from_ref(&r.verifier)).is_ok()
            })
    };
    let bad: Vec<&ledger_checkpoints::Model> = newest.iter().filter(|cp| !trusted(cp)).collect();
    bad.first().map(|cp| (*cp, bad.len()))
}

/// The remedy every refusal ends with.
fn remedy(key_file: &Path) -> String {
    format!(
        "point --signing-key-file at the key that signed these checkpoints (instead of {}), or, \
         after an explicit `runledger keys rotate-signing`, start with the new key; a lost key's \
         verifier key may be listed in --trusted-keys",
        key_file.display()
    )
}

fn others(count: usize) -> String {
    match count {
        0 | 1 => String::new(),
        n => format!(" (and the newest checkpoints of {} other ledgers)", n - 1),
    }
}

/// Loads the signing key of `key_file` and checks it against the database: the keys it trusts
/// (its own, `trusted`, and its predecessors proven by rotations) must open every ledger's
/// newest checkpoint, and no rotation may have retired it. The key file is created (owner-only)
/// only when that orphans no checkpoint, e.g. on a fresh database.
pub async fn open_identity(
    db: &Db,
    key_file: &Path,
    log_name: &str,
    trusted: Vec<NoteVerifier>,
) -> AppResult<LedgerKeys> {
    let newest = newest_checkpoints(&db.conn).await?;
    let signer = match note::load(key_file, log_name)? {
        Some(signer) => signer,
        None => {
            if let Some((cp, count)) = untrusted(&newest, &trusted, &[]) {
                return Err(AppError::Conflict(format!(
                    "the signing key file {} does not exist, but the newest checkpoint of ledger \
                     `{}` (tree size {}) is signed by {}{}; refusing to create a new key the \
                     ledger does not know: {}",
                    key_file.display(),
                    cp.tenant_id,
                    cp.tree_size,
                    signed_by(cp),
                    others(count),
                    remedy(key_file)
                )));
            }
            let (signer, created) = note::load_or_create(key_file, log_name)?;
            if created {
                tracing::info!(path = %key_file.display(), verifier_key = %signer.verifier_key(),
                    "created the checkpoint signing key (owner-only permissions)");
            }
            signer
        }
    };
    let own = NoteVerifier::from(&signer);
    let rotations = rotations(&db.conn).await?;
    if let Some(r) = rotations.iter().find(|r| r.old == own) {
        return Err(AppError::Conflict(format!(
            "the signing key {}+{} of {} was retired by the rotation at seq {} of the platform \
             ledger (replaced by {}+{}); start with the new key's file",
            own.name(),
            own.key_id_hex(),
            key_file.display(),
            r.seq,
            r.new.name(),
            r.new.key_id_hex()
        )));
    }
    let mut keys = LedgerKeys::new(signer, log_name);
    keys.extra_verifiers = trusted;
    keys.retired = predecessors(&rotations, &own);
    check_newest(&keys, key_file, &newest)?;
    Ok(keys)
}

/// Watches the platform ledger for a rotation that retires the key a running server signs
/// with: once one is recorded (by `keys rotate-signing`, while this server runs), the server
/// stops signing, so a retired key never covers entries recorded after its retirement.
#[derive(Debug, Default)]
pub struct RetirementWatch {
    /// The platform ledger seq read up to (each check reads only the entries after it).
    read_to: i64,
    retired_at: Option<i64>,
}

impl RetirementWatch {
    /// Fails, naming the rotation, when `keys`' signing key has been retired.
    pub async fn check<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        keys: &LedgerKeys,
    ) -> AppResult<()> {
        if self.retired_at.is_none() {
            let own = NoteVerifier::from(keys.signer.as_ref());
            let head = super::head_seq(conn, PLATFORM_LEDGER).await?;
            let found = rotations_after(conn, self.read_to).await?;
            self.retired_at = found.iter().find(|r| r.old == own).map(|r| r.seq);
            self.read_to = self.read_to.max(head.unwrap_or(0));
        }
        match self.retired_at {
            None => Ok(()),
            Some(seq) => Err(AppError::internal(
                "sign a checkpoint",
                format!(
                    "this server's signing key was retired by the rotation at seq {seq} of the \
                     platform ledger; restart it with the new key's file"
                ),
            )),
        }
    }
}

/// Checks again (e.g. before a final checkpoint) that no rotation retired `keys`' signing key
/// meanwhile and that every ledger's newest checkpoint is signed by a key `keys` trusts.
pub async fn check_identity(db: &Db, keys: &LedgerKeys, key_file: &Path) -> AppResult<()> {
    RetirementWatch::default().check(&db.conn, keys).await?;
    let newest = newest_checkpoints(&db.conn).await?;
    check_newest(keys, key_file, &newest)
}

fn check_newest(
    keys: &LedgerKeys,
    key_file: &Path,
    newest: &[ledger_checkpoints::Model],
) -> AppResult<()> {
    let verifiers = keys.verifiers();
    let Some((cp, count)) = untrusted(newest, &verifiers, &keys.retired) else {
        return Ok(());
    };
    let also = if verifiers.len() > 1 {
        format!(
            " and trusts {} other key(s), not that one",
            verifiers.len() - 1
        )
    } else {
        " and trusts no other".to_string()
    };
    Err(AppError::Conflict(format!(
        "the newest checkpoint of ledger `{}` (tree size {}) is signed by {}{}, but this process \
         holds the signing key {}+{} (from {}){also}; refusing to sign checkpoints with a key \
         the ledger does not know: {}",
        cp.tenant_id,
        cp.tree_size,
        signed_by(cp),
        others(count),
        keys.signer.name(),
        keys.signer.key_id_hex(),
        key_file.display(),
        remedy(key_file)
    )))
}

/// Rotates the signing key: checks the current key against the database, creates the new key
/// in `new_key_file` (owner-only; refused if the file exists), and appends `SIGNING_KEY_ROTATED`
/// with the statement signed by both keys to the platform ledger. Returns the new key.
pub async fn rotate(
    db: &Db,
    key_file: &Path,
    new_key_file: &Path,
    log_name: &str,
    trusted: Vec<NoteVerifier>,
) -> AppResult<NoteSigner> {
    if note::load(key_file, log_name)?.is_none() {
        return Err(AppError::bad_input(format!(
            "the current signing key file {} does not exist: a rotation is signed by the \
             current key",
            key_file.display()
        )));
    }
    let keys = open_identity(db, key_file, log_name, trusted).await?;
    if new_key_file.exists() {
        return Err(AppError::Conflict(format!(
            "{} already exists: name a new file for the new key",
            new_key_file.display()
        )));
    }
    let (new, created) = note::load_or_create(new_key_file, log_name)?;
    if !created {
        return Err(AppError::Conflict(format!(
            "{} was created by another process meanwhile: name a new file for the new key",
            new_key_file.display()
        )));
    }
    match record_rotation(db, &keys.signer, &new).await {
        Ok(()) => Ok(new),
        Err(e) => {
            // No rotation recorded: the new key must not look usable.
            let _ = std::fs::remove_file(new_key_file);
            Err(e)
        }
    }
}

async fn record_rotation(db: &Db, old: &NoteSigner, new: &NoteSigner) -> AppResult<()> {
    let tx = db.begin_write().await?;
    // What the old key vouches for, and so all it stays trusted for: each ledger's newest
    // checkpoint now. (A checkpoint a server signs with the old key in this very instant falls
    // outside and is reported; rotate while servers are stopped to rule that out.)
    let covers: BTreeMap<String, i64> = newest_checkpoints(&tx.txn)
        .await?
        .into_iter()
        .map(|cp| (cp.tenant_id, cp.tree_size))
        .collect();
    let statement = sign_rotation(old, new, &covers);
    let entry = vocabulary::signing_key_rotated(
        &new.key_id_hex(),
        &old.verifier_key(),
        &new.verifier_key(),
        &statement,
        micros(Utc::now()),
    );
    append(&tx.txn, PLATFORM_LEDGER, vec![entry]).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NoteSigner {
        NoteSigner::generate("runledger").unwrap()
    }

    fn covers(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(l, n)| (l.to_string(), *n)).collect()
    }

    fn rotation(seq: i64, old: &NoteSigner, new: &NoteSigner) -> Rotation {
        Rotation {
            seq,
            old: NoteVerifier::from(old),
            new: NoteVerifier::from(new),
            covers: covers(&[("acme", seq * 10)]),
        }
    }

    #[test]
    fn a_statement_verifies_only_under_both_keys_it_names() {
        let (a, b, c) = (key(), key(), key());
        let (va, vb, vc) = (
            NoteVerifier::from(&a),
            NoteVerifier::from(&b),
            NoteVerifier::from(&c),
        );
        let named = covers(&[("acme", 12), ("_platform", 3), ("two words", 0)]);
        let statement = sign_rotation(&a, &b, &named);
        assert_eq!(open_rotation(&va, &vb, &statement), Ok(named.clone()));
        // Read with other keys, or the other way round, it proves nothing.
        assert!(open_rotation(&va, &vc, &statement).is_err());
        assert!(open_rotation(&vb, &va, &statement).is_err());
        // Signed by the old key alone (all that someone holding only that key can make).
        let body = rotation_body(&vc, &vb, &named);
        let only_old = c.sign(&body);
        assert!(
            open_rotation(&vc, &vb, &only_old)
                .unwrap_err()
                .contains("new key")
        );
        // Signed by the new key alone.
        let only_new = b.sign(&body);
        assert!(
            open_rotation(&vc, &vb, &only_new)
                .unwrap_err()
                .contains("old key")
        );
    }

    #[test]
    fn predecessors_follow_the_chain_of_rotations_in_seq_order() {
        let (a, b, c, x) = (key(), key(), key(), key());
        // `x → a` after `a → b`: signed by a retired key and a key of someone else's, it does
        // not hand over from the key the chain is at, and grants nothing.
        let chain = [
            rotation(1, &a, &b),
            rotation(2, &b, &c),
            rotation(3, &x, &a),
        ];
        let vc = NoteVerifier::from(&c);
        // Each retired key is trusted up to what its own rotation names.
        assert_eq!(
            predecessors(&chain, &vc),
            vec![
                (NoteVerifier::from(&b), covers(&[("acme", 20)])),
                (NoteVerifier::from(&a), covers(&[("acme", 10)])),
            ]
        );
        // A retired key, or one the chain never reached, trusts none.
        assert_eq!(predecessors(&chain, &NoteVerifier::from(&a)), vec![]);
        assert_eq!(predecessors(&chain, &NoteVerifier::from(&x)), vec![]);
    }

    #[test]
    fn a_statement_binds_the_sizes_it_covers() {
        let (a, b) = (key(), key());
        let (va, vb) = (NoteVerifier::from(&a), NoteVerifier::from(&b));
        let statement = sign_rotation(&a, &b, &covers(&[("acme", 12)]));
        // Raising a size after signing breaks both signatures.
        let raised = statement.replace("covers 12 acme", "covers 99 acme");
        assert!(open_rotation(&va, &vb, &raised).is_err());
        // A statement signed over a malformed line is refused.
        let body = format!(
            "{}covers lots acme\n",
            rotation_body(&va, &vb, &BTreeMap::new())
        );
        let mut odd = a.sign(&body);
        odd.push_str(&b.sign(&body)[body.len() + 1..]);
        assert!(
            open_rotation(&va, &vb, &odd)
                .unwrap_err()
                .contains("malformed")
        );
    }

    #[test]
    fn signers_are_read_from_the_signature_lines() {
        let a = key();
        let note = a.sign("hello\n");
        assert_eq!(
            signers_of(&note),
            vec![format!("runledger+{}", a.key_id_hex())]
        );
        assert_eq!(signers_of("no signatures"), Vec::<String>::new());
    }
}
