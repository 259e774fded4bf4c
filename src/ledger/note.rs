//! Signed notes and tree-head checkpoints with Ed25519: the C2SP
//! [signed-note](https://c2sp.org/signed-note) and
//! [tlog-checkpoint](https://c2sp.org/tlog-checkpoint) formats.
//!
//! A signed note is a UTF-8 text (the *body*, ending in a newline), a blank line, and one or more
//! signature lines `— <key name> <base64(key ID ‖ signature)>`. The key ID is the first four
//! bytes of `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)`, 0x01 being the Ed25519 signature
//! type, and Ed25519 signs exactly the body bytes.
//!
//! A checkpoint is a note whose body is `<origin>\n<tree size>\n<base64 root hash>\n`, optionally
//! followed by extension lines, which this module accepts and ignores.
//!
//! Keys use the text encodings of Go's `golang.org/x/mod/sumdb/note`, so notes signed here verify
//! with that package and its tools and vice versa:
//!
//! - private key: `PRIVATE+KEY+<name>+<key ID as 8 hex digits>+<base64(0x01 ‖ 32-byte seed)>`;
//! - verifier key: `<name>+<key ID as 8 hex digits>+<base64(0x01 ‖ 32-byte public key)>`.
//!
//! [`load_or_create`] keeps the signing key in a file readable by its owner only, and refuses a
//! key file that group or other users may access, like ssh does.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

/// Signature type byte of Ed25519 keys and key IDs.
const ALG_ED25519: u8 = 0x01;

/// Prefix of the private key encoding.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Start of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Most signature lines a note may carry (the limit of the Go implementation).
const MAX_SIGNATURES: usize = 100;

/// The key ID of an Ed25519 key: the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
fn key_id(name: &str, public_key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name is non-empty and holds neither whitespace nor `+`.
fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Decodes exactly 8 hex digits into a key ID.
fn parse_key_id(text: &str) -> Option<[u8; 4]> {
    if text.len() != 8 {
        return None;
    }
    let mut id = [0u8; 4];
    hex::decode_to_slice(text, &mut id).ok()?;
    Some(id)
}

/// Decodes `base64(0x01 ‖ 32 bytes)`.
fn parse_typed_key(text: &str) -> Option<[u8; 32]> {
    let bytes = STANDARD.decode(text).ok()?;
    match bytes.split_first() {
        Some((&ALG_ED25519, rest)) => rest.try_into().ok(),
        _ => None,
    }
}

/// `base64(0x01 ‖ 32 bytes)`.
fn encode_typed_key(key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(33);
    bytes.push(ALG_ED25519);
    bytes.extend_from_slice(key);
    STANDARD.encode(bytes)
}

/// An Ed25519 note signing key together with its key name and key ID.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: [u8; 4],
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    /// Shows the name and key ID, never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id_hex())
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Builds a signer from a key name and a 32-byte Ed25519 seed.
    fn from_seed(name: &str, seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, &key.verifying_key());
        NoteSigner {
            name: name.to_string(),
            key_id,
            key,
        }
    }

    /// Generates a fresh key named `name` from the operating system's random source.
    ///
    /// The name must be non-empty and contain neither whitespace nor `+`.
    pub fn generate(name: &str) -> AppResult<Self> {
        if !valid_key_name(name) {
            return Err(AppError::bad_input(format!(
                "invalid note key name {name:?}: it must be non-empty and contain neither \
                 whitespace nor '+'"
            )));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| AppError::internal("generate a note signing key", e.to_string()))?;
        let signer = Self::from_seed(name, &seed);
        seed.fill(0);
        Ok(signer)
    }

    /// Parses a private key in the Go `golang.org/x/mod/sumdb/note` text format
    /// `PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 ‖ seed)>`; the key ID must match the key.
    ///
    /// Error messages never quote the key text.
    pub fn from_private_key(text: &str) -> AppResult<Self> {
        let malformed =
            |why: &str| AppError::bad_input(format!("malformed note private key: {why}"));
        let rest = text
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or_else(|| malformed("it does not start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected PRIVATE+KEY+<name>+<key id>+<key>"));
        };
        if !valid_key_name(name) {
            return Err(malformed("invalid key name"));
        }
        let id = parse_key_id(id_hex).ok_or_else(|| malformed("the key id is not 8 hex digits"))?;
        let mut seed =
            parse_typed_key(key_b64).ok_or_else(|| malformed("the key is not an Ed25519 seed"))?;
        let signer = Self::from_seed(name, &seed);
        seed.fill(0);
        if signer.key_id != id {
            return Err(malformed("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The private key in the Go `golang.org/x/mod/sumdb/note` text format (a secret: store it
    /// owner-readable only).
    pub fn to_private_key(&self) -> String {
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{}+{}",
            self.name,
            self.key_id_hex(),
            encode_typed_key(self.key.as_bytes())
        )
    }

    /// The public verifier key, `<name>+<key ID hex>+<base64(0x01 ‖ public key)>`, which
    /// [`NoteVerifier::parse`] reads.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{}+{}",
            self.name,
            self.key_id_hex(),
            encode_typed_key(self.key.verifying_key().as_bytes())
        )
    }

    /// The key ID as 8 lowercase hex digits.
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id)
    }

    /// The key name, which signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs `body` and returns the signed note: `body ‖ "\n" ‖ "— <name> <base64(key ID ‖
    /// signature)>\n"`.
    ///
    /// Ed25519 signs exactly the body bytes. The body should be non-empty and end in a newline
    /// (as [`checkpoint_body`] does); otherwise the note will not open.
    pub fn sign(&self, body: &str) -> String {
        let signature = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(4 + Signature::BYTE_SIZE);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }
}

/// An Ed25519 note verifier key: a key name, its key ID and the public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<key ID hex>+<base64(0x01 ‖ public key)>`; the key ID must
    /// match the name and key.
    pub fn parse(text: &str) -> AppResult<Self> {
        let malformed =
            |why: &str| AppError::bad_input(format!("malformed note verifier key {text:?}: {why}"));
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected <name>+<key id>+<key>"));
        };
        if !valid_key_name(name) {
            return Err(malformed("invalid key name"));
        }
        let id = parse_key_id(id_hex).ok_or_else(|| malformed("the key id is not 8 hex digits"))?;
        let bytes =
            parse_typed_key(key_b64).ok_or_else(|| malformed("the key is not an Ed25519 key"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| malformed("the key is not a valid Ed25519 public key"))?;
        if key_id(name, &key) != id {
            return Err(malformed("the key id does not match the key"));
        }
        Ok(NoteVerifier {
            name: name.to_string(),
            key_id: id,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID as 8 lowercase hex digits.
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id)
    }

    /// The verifier key text, as [`NoteVerifier::parse`] reads it.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{}+{}",
            self.name,
            self.key_id_hex(),
            encode_typed_key(self.key.as_bytes())
        )
    }
}

impl From<&NoteSigner> for NoteVerifier {
    /// The verifier of a signer's public key.
    fn from(signer: &NoteSigner) -> Self {
        NoteVerifier {
            name: signer.name.clone(),
            key_id: signer.key_id,
            key: signer.key.verifying_key(),
        }
    }
}

/// Loads the note signing key from `path`, or creates it there named `name`.
///
/// Returns the signer and whether the key was created. An existing file holds one line, the
/// private key in [`NoteSigner::to_private_key`] format (a trailing newline is allowed); its key
/// name must be `name`. On Unix, an existing file that group or other users may access is refused
/// (fix it with `chmod 600`), and a new file is created with mode 0600 and its missing parent
/// directories with mode 0700. Creation is exclusive, so when two processes race, one creates the
/// key and the other reads it.
pub fn load_or_create(path: &Path, name: &str) -> AppResult<(NoteSigner, bool)> {
    if let Some(signer) = read_key_file(path, name)? {
        return Ok((signer, false));
    }
    let signer = NoteSigner::generate(name)?;
    let shown = path.display();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(|e| {
            AppError::internal(
                format!("create the directory of the note signing key {shown}"),
                e,
            )
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            // Another process created it first: use its key.
            return match read_key_file(path, name)? {
                Some(signer) => Ok((signer, false)),
                None => Err(AppError::internal(
                    format!("load the note signing key {shown}"),
                    "the file disappeared while it was being created",
                )),
            };
        }
        Err(e) => {
            return Err(AppError::internal(
                format!("create the note signing key {shown}"),
                e,
            ));
        }
    };
    let mut line = signer.to_private_key();
    line.push('\n');
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| AppError::internal(format!("write the note signing key {shown}"), e))?;
    Ok((signer, true))
}

/// Loads the note signing key from `path` under the rules of [`load_or_create`], without ever
/// creating it: `None` when there is no such file.
pub fn load(path: &Path, name: &str) -> AppResult<Option<NoteSigner>> {
    read_key_file(path, name)
}

/// Reads and checks an existing key file; `None` if there is none.
fn read_key_file(path: &Path, name: &str) -> AppResult<Option<NoteSigner>> {
    let shown = path.display();
    let context = || format!("load the note signing key {shown}");
    // A racing creator may not have written the key yet: wait a little for a non-empty file.
    let mut text = String::new();
    for attempt in 0..40 {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AppError::internal(context(), e)),
        };
        let metadata = file
            .metadata()
            .map_err(|e| AppError::internal(context(), e))?;
        if !metadata.is_file() {
            return Err(AppError::internal(context(), "it is not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(AppError::internal(
                    context(),
                    format!(
                        "its permissions {mode:04o} let group or other users access the private \
                         key; restrict them with `chmod 600 {shown}`"
                    ),
                ));
            }
        }
        text.clear();
        file.read_to_string(&mut text)
            .map_err(|e| AppError::internal(context(), e))?;
        if !text.is_empty() || attempt == 39 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let signer = NoteSigner::from_private_key(line)
        .map_err(|e| AppError::internal(context(), e.client_message()))?;
    if signer.name() != name {
        return Err(AppError::internal(
            context(),
            format!(
                "it holds a key named {:?}, but the configured key name is {name:?}",
                signer.name()
            ),
        ));
    }
    Ok(Some(signer))
}

/// The body of a checkpoint: `<origin>\n<tree size in decimal>\n<base64 root hash>\n`.
pub fn checkpoint_body(origin: &str, tree_size: u64, root: &[u8; 32]) -> String {
    format!("{origin}\n{tree_size}\n{}\n", STANDARD.encode(root))
}

/// A checkpoint whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The number of entries in the tree.
    pub tree_size: u64,
    /// The Merkle tree root hash.
    pub root: [u8; 32],
    /// The key ID (8 hex digits) of the first signature that verified.
    pub key_id: String,
}

/// Why a signed checkpoint did not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteError {
    /// The note or its checkpoint body does not follow the format.
    Malformed(String),
    /// No signature is by a known key; names the `name+keyid` of the signatures seen.
    UnknownKey(String),
    /// A signature by a known key does not verify.
    BadSignature(String),
}

impl NoteError {
    /// A one-line description for logs and error messages.
    pub fn describe(&self) -> String {
        match self {
            NoteError::Malformed(m) => format!("malformed note: {m}"),
            NoteError::UnknownKey(m) => format!("note not signed by a known key: {m}"),
            NoteError::BadSignature(m) => format!("invalid note signature: {m}"),
        }
    }
}

/// One parsed signature line.
struct SignatureLine<'a> {
    name: &'a str,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

/// Parses a signature line without its trailing newline.
fn parse_signature_line(line: &str) -> Result<SignatureLine<'_>, NoteError> {
    let malformed = || NoteError::Malformed(format!("bad signature line {line:?}"));
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(malformed)?;
    let (name, b64) = rest.split_once(' ').ok_or_else(malformed)?;
    if !valid_key_name(name) || b64.is_empty() {
        return Err(malformed());
    }
    let blob = STANDARD.decode(b64).map_err(|_| malformed())?;
    if blob.len() < 5 {
        return Err(malformed());
    }
    let (id, signature) = blob.split_at(4);
    Ok(SignatureLine {
        name,
        key_id: [id[0], id[1], id[2], id[3]],
        signature: signature.to_vec(),
    })
}

/// Opens a signed checkpoint: checks the note syntax, verifies the signatures by `verifiers`'
/// keys and parses the body.
///
/// Every signature line whose key name and key ID match a verifier must verify; lines of
/// unknown keys are ignored, but at least one line must be by a known key.
pub fn open_checkpoint(note: &str, verifiers: &[NoteVerifier]) -> Result<Checkpoint, NoteError> {
    let (body, key_id) = open_note(note, verifiers)?;
    let (origin, tree_size, root) = parse_checkpoint_body(body)?;
    Ok(Checkpoint {
        origin,
        tree_size,
        root,
        key_id,
    })
}

/// Opens any signed note under the rules of [`open_checkpoint`]; returns its body (ending in a
/// newline) and the key ID (8 hex digits) of the first signature that verified.
pub fn open_note<'a>(
    note: &'a str,
    verifiers: &[NoteVerifier],
) -> Result<(&'a str, String), NoteError> {
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed(
            "the note contains a control character".into(),
        ));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
    let body = &note[..split + 1];
    let signatures = &note[split + 2..];
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::Malformed(
            "the signatures are missing or do not end in a newline".into(),
        ));
    };
    let lines: Vec<&str> = signatures.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::Malformed(format!(
            "more than {MAX_SIGNATURES} signatures"
        )));
    }
    let parsed = lines
        .into_iter()
        .map(parse_signature_line)
        .collect::<Result<Vec<_>, _>>()?;

    let mut verified_by: Option<[u8; 4]> = None;
    for line in &parsed {
        let mut known = verifiers
            .iter()
            .filter(|v| v.name == line.name && v.key_id == line.key_id)
            .peekable();
        if known.peek().is_none() {
            continue;
        }
        let signature = Signature::from_slice(&line.signature).ok();
        let valid = signature.is_some_and(|signature| {
            known.any(|v| v.key.verify_strict(body.as_bytes(), &signature).is_ok())
        });
        if !valid {
            return Err(NoteError::BadSignature(format!(
                "signature by {}+{} does not verify",
                line.name,
                hex::encode(line.key_id)
            )));
        }
        verified_by.get_or_insert(line.key_id);
    }
    let Some(key_id) = verified_by else {
        let seen: Vec<String> = parsed
            .iter()
            .map(|l| format!("{}+{}", l.name, hex::encode(l.key_id)))
            .collect();
        return Err(NoteError::UnknownKey(format!(
            "signatures seen: {}",
            seen.join(", ")
        )));
    };

    Ok((body, hex::encode(key_id)))
}

/// Parses a checkpoint body (which ends in a newline) into origin, tree size and root.
fn parse_checkpoint_body(body: &str) -> Result<(String, u64, [u8; 32]), NoteError> {
    let malformed = |why: &str| NoteError::Malformed(format!("bad checkpoint body: {why}"));
    let text = body
        .strip_suffix('\n')
        .ok_or_else(|| malformed("it does not end in a newline"))?;
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.len() < 3 {
        return Err(malformed("expected origin, tree size and root hash lines"));
    }
    if lines.iter().any(|l| l.is_empty()) {
        return Err(malformed("it contains an empty line"));
    }
    let (origin, size, root) = (lines[0], lines[1], lines[2]);
    if !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
        return Err(malformed("the tree size is not a canonical decimal number"));
    }
    let tree_size: u64 = size
        .parse()
        .map_err(|_| malformed("the tree size is out of range"))?;
    let root: [u8; 32] = STANDARD
        .decode(root)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| malformed("the root hash is not 32 bytes of base64"))?;
    Ok((origin.to_string(), tree_size, root))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published test vectors of Go's golang.org/x/mod/sumdb/note (note_test.go).
    const GO_PRIVATE_KEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER_KEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n\
                           \n\
                           \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const GO_ENOCH_VERIFIER_KEY: &str =
        "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";

    fn root() -> [u8; 32] {
        let mut root = [0u8; 32];
        for (i, b) in root.iter_mut().enumerate() {
            *b = i as u8;
        }
        root
    }

    fn signed(signer: &NoteSigner) -> String {
        signer.sign(&checkpoint_body("example.com/log", 42, &root()))
    }

    #[test]
    fn round_trip() {
        let signer = NoteSigner::generate("example.com/log").unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(verifier, NoteVerifier::from(&signer));
        assert_eq!(verifier.verifier_key(), signer.verifier_key());
        assert_eq!(verifier.name(), "example.com/log");
        assert_eq!(verifier.key_id_hex(), signer.key_id_hex());

        let note = signed(&signer);
        assert!(note.starts_with(&format!(
            "example.com/log\n42\n{}\n\n\u{2014} example.com/log ",
            STANDARD.encode(root())
        )));
        let checkpoint = open_checkpoint(&note, &[verifier]).unwrap();
        assert_eq!(
            checkpoint,
            Checkpoint {
                origin: "example.com/log".into(),
                tree_size: 42,
                root: root(),
                key_id: signer.key_id_hex(),
            }
        );

        let again = NoteSigner::from_private_key(&signer.to_private_key()).unwrap();
        assert_eq!(again.verifier_key(), signer.verifier_key());
        assert_eq!(again.sign("x\n"), signer.sign("x\n"));
        assert!(!format!("{signer:?}").contains(&signer.to_private_key()[40..]));
    }

    #[test]
    fn empty_tree_extensions_and_extra_signatures() {
        let signer = NoteSigner::generate("log").unwrap();
        let other = NoteSigner::generate("witness").unwrap();
        let body = format!(
            "{}ext line one\next two\n",
            checkpoint_body("log", 0, &root())
        );
        let note = signer.sign(&body);
        // Append a second signature line by a key the caller does not know.
        let witness_line = other.sign(&body);
        let witness_line = witness_line.rsplit_once("\n\n").unwrap().1;
        let both = format!("{note}{witness_line}");
        let checkpoint = open_checkpoint(&both, &[NoteVerifier::from(&signer)]).unwrap();
        assert_eq!(checkpoint.tree_size, 0);
        assert_eq!(checkpoint.key_id, signer.key_id_hex());
        // With only the witness known, the witness line is what verifies.
        let checkpoint = open_checkpoint(&both, &[NoteVerifier::from(&other)]).unwrap();
        assert_eq!(checkpoint.key_id, other.key_id_hex());
    }

    #[test]
    fn flipped_bytes_are_bad_signatures() {
        let signer = NoteSigner::generate("log").unwrap();
        let verifiers = [NoteVerifier::from(&signer)];
        let note = signed(&signer);

        // A changed tree size.
        let tampered = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            open_checkpoint(&tampered, &verifiers),
            Err(NoteError::BadSignature(_))
        ));

        // A flipped byte in the signature itself (after the 4-byte key id).
        let (body, line) = note.rsplit_once("\n\n").unwrap();
        let b64 = line.trim_end().rsplit_once(' ').unwrap().1;
        let mut blob = STANDARD.decode(b64).unwrap();
        blob[10] ^= 0x01;
        let tampered = format!("{body}\n\n\u{2014} log {}\n", STANDARD.encode(&blob));
        let err = open_checkpoint(&tampered, &verifiers).unwrap_err();
        assert!(matches!(err, NoteError::BadSignature(_)), "{err:?}");
        assert!(
            err.describe()
                .contains(&format!("log+{}", signer.key_id_hex()))
        );

        // A truncated signature by a known key.
        let tampered = format!("{body}\n\n\u{2014} log {}\n", STANDARD.encode(&blob[..20]));
        assert!(matches!(
            open_checkpoint(&tampered, &verifiers),
            Err(NoteError::BadSignature(_))
        ));
    }

    #[test]
    fn other_key_is_unknown() {
        let signer = NoteSigner::generate("log").unwrap();
        let other = NoteSigner::generate("log").unwrap();
        let err = open_checkpoint(&signed(&signer), &[NoteVerifier::from(&other)]).unwrap_err();
        match &err {
            NoteError::UnknownKey(m) => {
                assert!(m.contains(&format!("log+{}", signer.key_id_hex())), "{m}")
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert!(matches!(
            open_checkpoint(&signed(&signer), &[]),
            Err(NoteError::UnknownKey(_))
        ));
    }

    #[test]
    fn malformed_notes() {
        let signer = NoteSigner::generate("log").unwrap();
        let verifiers = [NoteVerifier::from(&signer)];
        let note = signed(&signer);
        let (body, line) = note.rsplit_once("\n\n").unwrap();
        let body = format!("{body}\n");
        let sig_line = line.to_string();
        let sign_body = |b: &str| signer.sign(b);
        let cases: Vec<String> = vec![
            String::new(),
            body.clone(),
            format!("{body}\n"),
            note.trim_end().to_string(),
            format!("{note}Unexpected line.\n"),
            format!("\x01{note}"),
            format!("{body}\n\u{2014} bad name AAAAAAAA\n"),
            format!("{body}\n\u{2014} log !!!!\n"),
            format!("{body}\n\u{2014} log AAAA\n"),
            format!(
                "{body}\n- log {}\n",
                sig_line.rsplit_once(' ').unwrap().1.trim_end()
            ),
            format!("{body}\n{}", sig_line.repeat(101)),
            // Well signed, but not a checkpoint.
            sign_body("just one line\n"),
            sign_body("origin\n42\n"),
            sign_body("\n42\nAAAA\n"),
            sign_body(&format!("o\n042\n{}\n", STANDARD.encode(root()))),
            sign_body(&format!("o\n-1\n{}\n", STANDARD.encode(root()))),
            sign_body(&format!("o\n+1\n{}\n", STANDARD.encode(root()))),
            sign_body(&format!(
                "o\n18446744073709551616\n{}\n",
                STANDARD.encode(root())
            )),
            sign_body(&format!("o\n1\n{}\n", STANDARD.encode([0u8; 31]))),
            sign_body(&format!("o\n1\n{}\n", STANDARD.encode([0u8; 33]))),
            sign_body("o\n1\nnot base64\n"),
            sign_body(&format!("o\n1\n{}\n\next\n", STANDARD.encode(root()))),
            sign_body(&format!("o\n1\n{}", STANDARD.encode(root()))),
        ];
        for (i, case) in cases.iter().enumerate() {
            match open_checkpoint(case, &verifiers) {
                Err(NoteError::Malformed(_)) => {}
                other => panic!("case {i} {case:?}: expected Malformed, got {other:?}"),
            }
        }
        // The largest tree size still parses.
        let max = sign_body(&checkpoint_body("o", u64::MAX, &root()));
        assert_eq!(
            open_checkpoint(&max, &verifiers).unwrap().tree_size,
            u64::MAX
        );
    }

    #[test]
    fn malformed_keys() {
        let signer = NoteSigner::generate("log").unwrap();
        let good = signer.verifier_key();
        assert!(NoteVerifier::parse(&good).is_ok());
        let mut wrong_id = good.clone();
        let flip = if wrong_id.as_bytes()[4] == b'0' {
            "1"
        } else {
            "0"
        };
        wrong_id.replace_range(4..5, flip);
        for bad in [
            String::new(),
            "log".to_string(),
            "log+00000000".to_string(),
            wrong_id,
            good.replacen("log+", "lo g+", 1),
            format!("x{good}"),
            format!("{good}A"),
            good[..good.len() - 1].to_string(),
        ] {
            assert!(NoteVerifier::parse(&bad).is_err(), "{bad:?}");
        }
        let private = signer.to_private_key();
        for bad in [
            private[8..].to_string(),
            format!("{private}A"),
            private.replacen("+log+", "+gol+", 1),
            private[..private.len() - 2].to_string(),
        ] {
            assert!(NoteSigner::from_private_key(&bad).is_err());
        }
        assert!(NoteSigner::generate("a b").is_err());
        assert!(NoteSigner::generate("a+b").is_err());
        assert!(NoteSigner::generate("").is_err());
    }

    #[test]
    fn go_published_vectors() {
        let signer = NoteSigner::from_private_key(GO_PRIVATE_KEY).unwrap();
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.key_id_hex(), "c74f20a3");
        assert_eq!(signer.verifier_key(), GO_VERIFIER_KEY);
        assert_eq!(signer.to_private_key(), GO_PRIVATE_KEY);
        // Ed25519 is deterministic: the same key and text give the published note.
        assert_eq!(signer.sign(GO_TEXT), GO_NOTE);

        // The published note's signature verifies; its body is no checkpoint.
        let peter = NoteVerifier::parse(GO_VERIFIER_KEY).unwrap();
        let enoch = NoteVerifier::parse(GO_ENOCH_VERIFIER_KEY).unwrap();
        assert_eq!(enoch.key_id_hex(), "af0cfe78");
        match open_checkpoint(GO_NOTE, std::slice::from_ref(&peter)) {
            Err(NoteError::Malformed(m)) => assert!(m.contains("checkpoint"), "{m}"),
            other => panic!("expected a verified note with a non-checkpoint body: {other:?}"),
        }
        assert!(matches!(
            open_checkpoint(GO_NOTE, &[enoch]),
            Err(NoteError::UnknownKey(_))
        ));
        let tampered = GO_NOTE.replacen("answer", "answers", 1);
        assert!(matches!(
            open_checkpoint(&tampered, &[peter]),
            Err(NoteError::BadSignature(_))
        ));
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new() -> Self {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).unwrap();
            let dir = std::env::temp_dir().join(format!("runledger-note-{}", hex::encode(random)));
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn key_file_created_owner_only_and_reloaded() {
        let dir = TempDir::new();
        let path = dir.0.join("keys").join("ledger.key");
        let (signer, created) = load_or_create(&path, "example.com/log").unwrap();
        assert!(created);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", signer.to_private_key()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }

        let (again, created) = load_or_create(&path, "example.com/log").unwrap();
        assert!(!created);
        assert_eq!(again.verifier_key(), signer.verifier_key());

        // A key file without its trailing newline loads too.
        std::fs::write(&path, signer.to_private_key()).unwrap();
        let (again, _) = load_or_create(&path, "example.com/log").unwrap();
        assert_eq!(again.verifier_key(), signer.verifier_key());

        // A different configured name is refused.
        let err = load_or_create(&path, "other").unwrap_err();
        assert!(err.describe().contains("other"), "{}", err.describe());

        // Garbage is refused without echoing the file.
        std::fs::write(&path, "PRIVATE+KEY+secret-stuff\n").unwrap();
        let err = load_or_create(&path, "example.com/log").unwrap_err();
        assert!(
            !err.describe().contains("secret-stuff"),
            "{}",
            err.describe()
        );
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_file_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = TempDir::new();
        let path = dir.0.join("ledger.key");
        let (_, created) = load_or_create(&path, "log").unwrap();
        assert!(created);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_or_create(&path, "log").unwrap_err();
        let message = err.describe();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert!(load_or_create(&path, "log").is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load_or_create(&path, "log").is_ok());
    }
}

#[cfg(test)]
mod worked_example {
    use super::*;

    /// The checkpoint example of docs/ledger.md: the key with the seed 32 × 0x01, named
    /// `runledger`, signs the tree of one entry (the worked example entry of the same document).
    #[test]
    fn checkpoint_example_of_the_specification() {
        let signer = NoteSigner::from_seed("runledger", &[1u8; 32]);
        let root: [u8; 32] =
            hex::decode("b3cb235d010bd67602b671b79da32d63a781f3054680b82478557b31da13a201")
                .unwrap()
                .try_into()
                .unwrap();
        let note = signer.sign(&checkpoint_body("runledger/acme", 1, &root));
        assert_eq!(
            signer.to_private_key(),
            "PRIVATE+KEY+runledger+2fe90970+AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
        );
        assert_eq!(note, EXAMPLE_NOTE);
        assert_eq!(signer.verifier_key(), EXAMPLE_VERIFIER_KEY);
        let cp = open_checkpoint(
            EXAMPLE_NOTE,
            &[NoteVerifier::parse(EXAMPLE_VERIFIER_KEY).unwrap()],
        )
        .unwrap();
        assert_eq!(
            (cp.origin.as_str(), cp.tree_size, cp.root),
            ("runledger/acme", 1, root)
        );
    }

    const EXAMPLE_NOTE: &str = "runledger/acme\n1\ns8sjXQEL1nYCtnG3naMtY6eB8wVGgLgkeFV7MdoTogE=\n\n\
        \u{2014} runledger L+kJcOYaxjtv8VSoo7HwX/9F8TduCYDY82VRQBh7T3BTONmVhX6tuksSOIiT7+YigFALyzEqaz467SDNZkdWCR6iMgQ=\n";
    const EXAMPLE_VERIFIER_KEY: &str =
        "runledger+2fe90970+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
}
