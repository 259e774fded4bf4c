//! Merkle proofs over the ledger's entry hashes: a compact frontier that extends a tree one leaf
//! at a time in O(log n) memory, RFC 6962 §2.1.1 inclusion proofs and §2.1.2 consistency
//! proofs, and their RFC 9162 §2.1.3.2 / §2.1.4.2 verifiers.
//!
//! Everything here is a pure function over leaf hashes (`SHA-256(0x00 ‖ data)`, which ledger entry
//! hashes already are); tree hashing itself lives in [`merkle`].

use super::merkle;

/// A compact range over leaves `[0, size)`: the roots of the perfect subtrees the RFC 6962 tree of
/// `size` leaves decomposes into, largest (leftmost) first, one per set bit of `size`.
///
/// It is enough to compute the tree's root and to keep appending leaves, in O(log n) memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<[u8; 32]>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its size and its perfect-subtree roots (left to right), as
    /// returned by [`Frontier::size`] and [`Frontier::hashes`]. `None` unless there is exactly one
    /// hash per set bit of `size`.
    pub fn from_parts(size: u64, hashes: Vec<[u8; 32]>) -> Option<Self> {
        (u64::try_from(hashes.len()).ok()? == u64::from(size.count_ones()))
            .then_some(Self { size, hashes })
    }

    /// Appends one leaf hash, merging the perfect subtrees it completes.
    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut merged = leaf;
        // Every trailing set bit of the old size is a subtree of the same height as `merged`.
        let mut carry = self.size;
        while carry & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => merged = merkle::node_hash(&left, &merged),
                None => break,
            }
            carry >>= 1;
        }
        self.hashes.push(merged);
        self.size += 1;
    }

    /// The number of leaves pushed (or given to [`Frontier::from_parts`]).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle Tree Hash of all the leaves, equal to [`merkle::root`] over them; the empty
    /// tree's hash when there are none.
    pub fn root(&self) -> [u8; 32] {
        let mut rest = self.hashes.iter().rev();
        match rest.next() {
            None => merkle::empty_root(),
            Some(last) => rest.fold(*last, |acc, left| merkle::node_hash(left, &acc)),
        }
    }

    /// The perfect-subtree roots, left (largest) to right (smallest).
    pub fn hashes(&self) -> &[[u8; 32]] {
        &self.hashes
    }
}

/// The largest power of two strictly smaller than `n` (n ≥ 2): the RFC 6962 split point `k`.
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The height of the tree over `n` leaves, `ceil(log2 n)`: the longest inclusion path.
fn height(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// The RFC 6962 §2.1.1 audit path `PATH(index, D[n])` of the leaf at `index` in the tree over all
/// of `leaves` (n = `leaves.len()`), nearest sibling first; `None` when `index` is out of range.
///
/// O(n) hashing: each level hashes only the sibling subtree, and those are disjoint.
pub fn inclusion_proof(leaves: &[[u8; 32]], index: usize) -> Option<Vec<[u8; 32]>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::with_capacity(height(leaves.len()));
    let (mut lo, mut hi) = (0, leaves.len());
    // Walk down from the root, recording siblings top-down; the proof lists them bottom-up.
    while hi - lo > 1 {
        let mid = lo + split(hi - lo);
        if index < mid {
            path.push(merkle::root(&leaves[mid..hi]));
            hi = mid;
        } else {
            path.push(merkle::root(&leaves[lo..mid]));
            lo = mid;
        }
    }
    path.reverse();
    Some(path)
}

/// Checks an inclusion proof by the RFC 9162 §2.1.3.2 algorithm: that `leaf` is the leaf hash at
/// `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = merkle::node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = merkle::node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// The RFC 6962 §2.1.2 consistency proof `PROOF(old_size, D[n])` between the tree over the first
/// `old_size` leaves and the tree over all of `leaves` (n = `leaves.len()`). `None` when
/// `old_size` is 0 or greater than n; empty when `old_size` equals n.
///
/// O(n) hashing: the subtrees hashed are disjoint.
pub fn consistency_proof(leaves: &[[u8; 32]], old_size: usize) -> Option<Vec<[u8; 32]>> {
    let n = leaves.len();
    if old_size == 0 || old_size > n {
        return None;
    }
    let mut proof = Vec::with_capacity(height(n) + 1);
    let (mut lo, mut hi) = (0, n);
    // `m` is the old size within the current subtree [lo, hi); `whole` is SUBPROOF's flag b:
    // whether the current subtree's left edge is still the old tree's, so that the verifier
    // already knows the hash of the subtree the walk ends on.
    let mut m = old_size;
    let mut whole = true;
    while m != hi - lo {
        let k = split(hi - lo);
        let mid = lo + k;
        if m <= k {
            proof.push(merkle::root(&leaves[mid..hi]));
            hi = mid;
        } else {
            proof.push(merkle::root(&leaves[lo..mid]));
            lo = mid;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        proof.push(merkle::root(&leaves[lo..hi]));
    }
    proof.reverse();
    Some(proof)
}

/// Checks a consistency proof by the RFC 9162 §2.1.4.2 algorithm: that the tree of `old_size`
/// leaves with root `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
///
/// Beyond the RFC's `0 < old_size < new_size` case: equal sizes verify only with an empty proof
/// and equal roots, and `old_size == 0` only with an empty proof and `old_root` the empty tree's
/// hash.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == merkle::empty_root();
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    // When the old tree is a perfect subtree its root is the path's implicit first element.
    let old_is_perfect = old_size.is_power_of_two();
    let mut path = std::iter::once(old_root)
        .filter(|_| old_is_perfect)
        .chain(proof.iter());
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some(first) = path.next() else {
        return false;
    };
    let (mut f_r, mut s_r) = (*first, *first);
    for c in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = merkle::node_hash(c, &f_r);
            s_r = merkle::node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = merkle::node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && f_r == *old_root && s_r == *new_root
}

#[cfg(test)]
mod tests {
    use super::*;
    use merkle::leaf;

    fn h(hex_text: &str) -> [u8; 32] {
        merkle::parse_hash(hex_text).unwrap()
    }

    fn hs(hex_texts: &[&str]) -> Vec<[u8; 32]> {
        hex_texts.iter().map(|t| h(t)).collect()
    }

    // Known answers: the RFC 6962 reference tree of 8 leaves, from transparency-dev/merkle
    // (testonly/constants.go: LeafInputs, RootHashes, CompactTrees; proof/verify_test.go:
    // inclusionProofs, consistencyProofs), the same data as google/trillian and
    // certificate-transparency-go's merkle tree tests.

    fn reference_leaves() -> Vec<[u8; 32]> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|d| leaf(&hex::decode(d).unwrap()))
        .collect()
    }

    /// RootHashes(), indexed by tree size.
    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn frontier_matches_reference_compact_trees() {
        // CompactTrees(): the perfect-subtree roots for every size 0..=8.
        let compact: [&[&str]; 9] = [
            &[],
            &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            &[
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            ],
            &["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
            &[
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
            &[
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            ],
            &[
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            ],
            &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
        ];
        let leaves = reference_leaves();
        let mut frontier = Frontier::new();
        for size in 0..=8 {
            if size > 0 {
                frontier.push(leaves[size - 1]);
            }
            assert_eq!(frontier.size(), size as u64);
            assert_eq!(
                frontier.hashes(),
                hs(compact[size]).as_slice(),
                "size {size}"
            );
            assert_eq!(frontier.root(), h(REFERENCE_ROOTS[size]), "size {size}");
        }
    }

    #[test]
    fn inclusion_matches_reference_vectors() {
        // inclusionProofs (the Go vectors number leaves from 1; these are 0-based indices).
        let vectors: [(usize, usize, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let leaves = reference_leaves();
        for (index, size, want) in vectors {
            let want = hs(want);
            let got = inclusion_proof(&leaves[..size], index).unwrap();
            assert_eq!(got, want, "leaf {index} of {size}");
            let root = h(REFERENCE_ROOTS[size]);
            assert!(verify_inclusion(
                &leaves[index],
                index as u64,
                size as u64,
                &want,
                &root
            ));
        }
    }

    #[test]
    fn consistency_matches_reference_vectors() {
        // consistencyProofs.
        let vectors: [(usize, usize, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        let leaves = reference_leaves();
        for (old, new, want) in vectors {
            let want = hs(want);
            let got = consistency_proof(&leaves[..new], old).unwrap();
            assert_eq!(got, want, "{old} -> {new}");
            let (old_root, new_root) = (h(REFERENCE_ROOTS[old]), h(REFERENCE_ROOTS[new]));
            assert!(verify_consistency(
                old as u64, new as u64, &old_root, &new_root, &want
            ));
        }
    }

    /// Distinct leaf hashes for the self-consistency tests.
    fn test_leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n as u32).map(|i| leaf(&i.to_be_bytes())).collect()
    }

    /// The shape of `PATH(index, D[size])` by the RFC 6962 recursive definition, bottom-up: for
    /// each proof element, whether it is the left sibling. Two (index, size) pairs with the same
    /// shape are indistinguishable to the verifier, so a proof for one verifies as the other.
    fn path_shape(index: usize, size: usize) -> Vec<bool> {
        let mut shape = Vec::new();
        let (mut lo, mut hi) = (0, size);
        while hi - lo > 1 {
            let mid = lo + split(hi - lo);
            shape.push(index >= mid);
            if index < mid {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        shape.reverse();
        shape
    }

    /// The shape of `PROOF(old, D[size])` (0 < old < size) by the RFC 6962 recursive definition:
    /// whether the old tree is a perfect subtree (its root is then left out of the proof), and
    /// for each sibling, bottom-up, whether it lies left of the split (inside the old tree).
    fn consistency_shape(old: usize, size: usize) -> (bool, Vec<bool>) {
        let mut sides = Vec::new();
        let (mut m, mut n) = (old, size);
        while m != n {
            let k = split(n);
            sides.push(m > k);
            if m <= k {
                n = k;
            } else {
                m -= k;
                n -= k;
            }
        }
        sides.reverse();
        (old.is_power_of_two(), sides)
    }

    #[test]
    fn inclusion_proofs_verify_and_detect_tampering() {
        for n in 1..=70usize {
            let leaves = test_leaves(n);
            let root = merkle::root(&leaves);
            let size = n as u64;
            assert_eq!(inclusion_proof(&leaves, n), None);
            for index in 0..n {
                let proof = inclusion_proof(&leaves, index).unwrap();
                let i = index as u64;
                assert_eq!(proof.len(), path_shape(index, n).len());
                assert!(
                    verify_inclusion(&leaves[index], i, size, &proof, &root),
                    "leaf {index} of {n}"
                );
                for j in 0..proof.len() {
                    for b in 0..32 {
                        let mut bad = proof.clone();
                        bad[j][b] ^= 0x01;
                        assert!(!verify_inclusion(&leaves[index], i, size, &bad, &root));
                    }
                }
                // Another leaf, another index, a wrong root, a longer or shorter proof.
                if n > 1 {
                    let other = leaves[(index + 1) % n];
                    assert!(!verify_inclusion(&other, i, size, &proof, &root));
                    assert!(!verify_inclusion(&leaves[index], i, size, &proof, &other));
                }
                for wrong in (0..n as u64 + 2).filter(|&w| w != i) {
                    assert!(!verify_inclusion(
                        &leaves[index],
                        wrong,
                        size,
                        &proof,
                        &root
                    ));
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(!verify_inclusion(&leaves[index], i, size, &longer, &root));
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(!verify_inclusion(&leaves[index], i, size, shorter, &root));
                }
                // A wrong size fails unless it gives the very same path shape (e.g. leaf 0 of 3
                // and of 4): the root, not the size, is what the proof commits to.
                let shape = path_shape(index, n);
                for wrong in (0..=2 * n + 2).filter(|&w| w != n) {
                    let same_shape = wrong > index && path_shape(index, wrong) == shape;
                    assert_eq!(
                        verify_inclusion(&leaves[index], i, wrong as u64, &proof, &root),
                        same_shape,
                        "leaf {index} of {n} claimed as of {wrong}"
                    );
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_detect_tampering() {
        for n in 1..=70usize {
            let leaves = test_leaves(n);
            let roots: Vec<[u8; 32]> = (0..=n).map(|m| merkle::root(&leaves[..m])).collect();
            let new_size = n as u64;
            let new_root = roots[n];
            assert_eq!(consistency_proof(&leaves, 0), None);
            assert_eq!(consistency_proof(&leaves, n + 1), None);
            assert!(verify_consistency(0, new_size, &roots[0], &new_root, &[]));
            assert!(!verify_consistency(0, new_size, &new_root, &new_root, &[]));
            for old in 1..=n {
                let proof = consistency_proof(&leaves, old).unwrap();
                let old_size = old as u64;
                let old_root = roots[old];
                assert_eq!(proof.is_empty(), old == n);
                assert!(
                    verify_consistency(old_size, new_size, &old_root, &new_root, &proof),
                    "{old} -> {n}"
                );
                for j in 0..proof.len() {
                    for b in 0..32 {
                        let mut bad = proof.clone();
                        bad[j][b] ^= 0x01;
                        assert!(!verify_consistency(
                            old_size, new_size, &old_root, &new_root, &bad
                        ));
                    }
                }
                // Wrong sizes, with the roots and the proof left as they are: they fail unless
                // they give the very same proof shape (e.g. 1 -> 3 and 1 -> 4).
                let shape = consistency_shape(old, n);
                let expected = |m: usize, k: usize| {
                    old < n && 0 < m && m < k && consistency_shape(m, k) == shape
                };
                for wrong in (0..=n + 2).filter(|&w| w != old) {
                    assert_eq!(
                        verify_consistency(wrong as u64, new_size, &old_root, &new_root, &proof),
                        expected(wrong, n),
                        "{old} -> {n} claimed as {wrong} -> {n}"
                    );
                }
                for wrong in (0..=2 * n + 2).filter(|&w| w != n) {
                    assert_eq!(
                        verify_consistency(old_size, wrong as u64, &old_root, &new_root, &proof),
                        expected(old, wrong),
                        "{old} -> {n} claimed as {old} -> {wrong}"
                    );
                }
                // Wrong or swapped roots, and a proof with an element added or removed.
                if old < n {
                    assert!(!verify_consistency(
                        old_size, new_size, &new_root, &old_root, &proof
                    ));
                    assert!(!verify_consistency(
                        old_size,
                        new_size,
                        &old_root,
                        &new_root,
                        &[]
                    ));
                }
                if old > 1 {
                    let stale = roots[old - 1];
                    assert!(!verify_consistency(
                        old_size, new_size, &stale, &new_root, &proof
                    ));
                }
                if let Some(other) = roots.get(n - 1).filter(|_| n > 1) {
                    assert!(!verify_consistency(
                        old_size, new_size, &old_root, other, &proof
                    ));
                }
                let mut longer = proof.clone();
                longer.push(new_root);
                assert!(!verify_consistency(
                    old_size, new_size, &old_root, &new_root, &longer
                ));
                let mut preceded = vec![old_root];
                preceded.extend_from_slice(&proof);
                assert!(!verify_consistency(
                    old_size, new_size, &old_root, &new_root, &preceded
                ));
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(!verify_consistency(
                        old_size, new_size, &old_root, &new_root, shorter
                    ));
                }
            }
        }
    }

    #[test]
    fn frontier_root_matches_merkle_root() {
        let leaves = test_leaves(300);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), merkle::empty_root());
        for n in 0..=300usize {
            if n > 0 {
                frontier.push(leaves[n - 1]);
            }
            assert_eq!(frontier.size(), n as u64);
            assert_eq!(frontier.hashes().len(), n.count_ones() as usize);
            assert_eq!(frontier.root(), merkle::root(&leaves[..n]), "size {n}");

            let rebuilt =
                Frontier::from_parts(frontier.size(), frontier.hashes().to_vec()).unwrap();
            assert_eq!(rebuilt, frontier);
            // A rebuilt frontier keeps extending to the same tree.
            if n < 300 {
                let mut next = rebuilt;
                next.push(leaves[n]);
                assert_eq!(next.root(), merkle::root(&leaves[..=n]));
            }
        }
    }

    #[test]
    fn from_parts_rejects_wrong_hash_count() {
        let hashes = test_leaves(3);
        assert_eq!(Frontier::from_parts(0, Vec::new()), Some(Frontier::new()));
        assert_eq!(Frontier::from_parts(0, hashes[..1].to_vec()), None);
        assert_eq!(Frontier::from_parts(1, Vec::new()), None);
        assert!(Frontier::from_parts(1, hashes[..1].to_vec()).is_some());
        assert_eq!(Frontier::from_parts(5, hashes[..1].to_vec()), None);
        assert_eq!(Frontier::from_parts(5, hashes[..3].to_vec()), None);
        assert!(Frontier::from_parts(5, hashes[..2].to_vec()).is_some());
        assert!(Frontier::from_parts(7, hashes.clone()).is_some());
        assert_eq!(Frontier::from_parts(8, hashes), None);
    }

    #[test]
    fn degenerate_inputs_are_rejected() {
        let leaves = test_leaves(4);
        let root = merkle::root(&leaves);
        assert_eq!(inclusion_proof(&[], 0), None);
        assert!(!verify_inclusion(
            &leaves[0],
            0,
            0,
            &[],
            &merkle::empty_root()
        ));
        assert!(verify_inclusion(&leaves[0], 0, 1, &[], &leaves[0]));
        assert!(!verify_inclusion(&leaves[0], 1, 1, &[], &leaves[0]));
        assert_eq!(consistency_proof(&[], 0), None);
        assert!(verify_consistency(
            0,
            0,
            &merkle::empty_root(),
            &merkle::empty_root(),
            &[]
        ));
        assert!(verify_consistency(4, 4, &root, &root, &[]));
        assert!(!verify_consistency(4, 4, &root, &root, &[root]));
        assert!(!verify_consistency(4, 4, &root, &leaves[0], &[]));
        assert!(!verify_consistency(4, 3, &root, &root, &[]));
        assert!(!verify_consistency(
            u64::MAX,
            u64::MAX - 1,
            &root,
            &root,
            &[root]
        ));
    }
}

/// Every level of the RFC 6962 tree over `leaves`, for many audit paths of one tree: level 0
/// is the leaves, each next level hashes the pairs of the one below and carries an unpaired last
/// node up unchanged (which is the tree of RFC 6962 §2.1, whose left subtree is the largest
/// power of two). Building it hashes n - 1 nodes once; each path then costs no hashing.
pub struct Levels {
    levels: Vec<Vec<[u8; 32]>>,
}

impl Levels {
    pub fn new(leaves: Vec<[u8; 32]>) -> Levels {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let mut up = Vec::with_capacity(below.len().div_ceil(2));
            for pair in below.chunks(2) {
                up.push(match pair {
                    [l, r] => merkle::node_hash(l, r),
                    [one] => *one,
                    _ => continue,
                });
            }
            levels.push(up);
        }
        Levels { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The leaves.
    pub fn leaves(&self) -> &[[u8; 32]] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The tree's root (the empty tree's hash when there are no leaves).
    pub fn root(&self) -> [u8; 32] {
        match self.levels.last() {
            Some(top) if top.len() == 1 && self.size() > 0 => top[0],
            _ => merkle::empty_root(),
        }
    }

    /// The audit path of the leaf at `index`, nearest sibling first, as [`inclusion_proof`]
    /// gives it; `None` when out of range.
    pub fn path(&self, index: usize) -> Option<Vec<[u8; 32]>> {
        if index >= self.size() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            i >>= 1;
        }
        Some(path)
    }

    /// The nodes at `height`: the roots of the subtrees over leaves `j·2^height ..
    /// min((j+1)·2^height, n)`, the last one over what is left (RFC 6962 §2.1's MTH of that
    /// range). Taken as leaf hashes, they have the tree's root as their own MTH.
    pub fn level(&self, height: u32) -> &[[u8; 32]] {
        let top = self.levels.len().saturating_sub(1);
        let at = (height as usize).min(top);
        self.levels.get(at).map(Vec::as_slice).unwrap_or_default()
    }

    /// The audit path of the leaf at `index` within its subtree of `height` (the first
    /// elements of [`Levels::path`], those below that height); `None` when out of range.
    pub fn path_below(&self, index: usize, height: u32) -> Option<Vec<[u8; 32]>> {
        if index >= self.size() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in self.levels.iter().take(height as usize) {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            i >>= 1;
        }
        Some(path)
    }
}

/// The height of a tree of `n` leaves: the least `h` with `2^h ≥ n`.
pub fn tree_height(n: u64) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros()
}

/// Where the leaf at `index` of a tree of `n` leaves lies among the subtrees of `height`: the
/// subtree's number, the leaf's index within it and the subtree's leaf count.
pub fn subtree_of(index: u64, n: u64, height: u32) -> (u64, u64, u64) {
    let width = 1u64.checked_shl(height).unwrap_or(u64::MAX);
    let j = index / width;
    let start = j.saturating_mul(width);
    (j, index - start, width.min(n.saturating_sub(start)))
}

#[cfg(test)]
mod levels_tests {
    use super::*;

    #[test]
    fn level_paths_are_the_rfc_6962_paths() {
        for n in 1..70usize {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| merkle::leaf(&i.to_be_bytes())).collect();
            let levels = Levels::new(leaves.clone());
            assert_eq!(levels.root(), merkle::root(&leaves), "root of {n}");
            for i in 0..n {
                assert_eq!(
                    levels.path(i),
                    inclusion_proof(&leaves, i),
                    "path {i} of {n}"
                );
            }
        }
    }

    /// A leaf's path within its subtree leads to the subtree's root, and the subtree roots,
    /// taken as leaves, have the tree's root: the two checks of a bundle's subtree proofs.
    #[test]
    fn subtree_paths_lead_through_the_subtree_roots_to_the_root() {
        for n in 1..70usize {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| merkle::leaf(&i.to_be_bytes())).collect();
            let levels = Levels::new(leaves.clone());
            for height in 0..=tree_height(n as u64) + 1 {
                let roots = levels.level(height);
                let width = 1usize << height;
                assert_eq!(roots.len(), n.div_ceil(width), "roots of {n} at {height}");
                assert_eq!(merkle::root(roots), levels.root(), "{n} at {height}");
                for (i, leaf) in leaves.iter().enumerate() {
                    let (j, at, size) = subtree_of(i as u64, n as u64, height);
                    let path = levels.path_below(i, height).unwrap();
                    assert!(
                        verify_inclusion(leaf, at, size, &path, &roots[j as usize]),
                        "leaf {i} of {n} at {height}"
                    );
                    let mut wrong = roots.to_vec();
                    wrong[j as usize][0] ^= 1;
                    assert!(!verify_inclusion(leaf, at, size, &path, &wrong[j as usize]));
                }
            }
            assert_eq!(tree_height(n as u64), (n as f64).log2().ceil() as u32);
        }
    }
}
