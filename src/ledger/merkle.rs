//! RFC 6962 Merkle tree hashing over ledger entry hashes (which already are leaf hashes).

use sha2::{Digest, Sha256};

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> [u8; 32] {
    Sha256::digest([]).into()
}

/// Merkle Tree Hash (RFC 6962 §2.1) of leaves given as leaf hashes. Split at the largest power
/// of two smaller than n, computed bottom-up without recursion.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        return empty_root();
    }
    // Bottom-up pairing with an odd node promoted unchanged gives the same result as the
    // recursive definition's left-balanced split.
    let mut level: Vec<[u8; 32]> = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node_hash(l, r)),
                [single] => next.push(*single),
                _ => {}
            }
        }
        level = next;
    }
    level[0]
}

/// Parses a lower-case hex hash.
pub fn parse_hash(hex_text: &str) -> Option<[u8; 32]> {
    // By hand, without an intermediate Vec: verifiers parse one per proof node, tens of
    // millions for a large bundle.
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = hex_text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// RFC 6962 leaf hash, `SHA-256(0x00 ‖ data)`, of test vectors' leaf inputs.
#[cfg(test)]
pub(crate) fn leaf(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers from the RFC 6962 test vectors (certificate-transparency-go's merkle tests).
    #[test]
    fn parse_hash_reads_exactly_64_hex_digits() {
        let bytes: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        let lower = hex::encode(&bytes);
        assert_eq!(parse_hash(&lower).map(|h| h.to_vec()), Some(bytes.clone()));
        assert_eq!(
            parse_hash(&lower.to_uppercase()).map(|h| h.to_vec()),
            Some(bytes)
        );
        for bad in [
            &lower[..62],
            &format!("{lower}00"),
            &lower.replacen('a', "g", 1),
            "",
        ] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
        assert_eq!(parse_hash(&"é".repeat(32)), None);
    }

    #[test]
    fn matches_rfc6962_known_roots() {
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            vec![
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let leaves: Vec<[u8; 32]> = inputs.iter().map(|d| leaf(d)).collect();
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(
                hex::encode(root(&leaves[..n + 1])),
                *want,
                "root of {} leaves",
                n + 1
            );
        }
    }
}
