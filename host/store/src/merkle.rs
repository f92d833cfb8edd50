//! The audit log as a Merkle tree in the manner of Certificate Transparency
//! (RFC 9162, section 2.1): a leaf's hash is SHA-256 over `0x00` and the
//! leaf, a node's over `0x01` and its two children, so that no leaf can
//! pass for a node; a tree of `n` leaves splits at the largest power of
//! two below `n`. Inclusion and consistency proofs, and their checks,
//! follow the RFC's algorithms step for step; docs/AUDIT.md and
//! docs/verify-proof.py say the same in prose and in Python.
//!
//! The tree is never held whole: [`Nodes`] hands out the hash of any
//! complete subtree (aligned, a power of two wide), which the store keeps
//! as the sequencer builds them, and everything else is computed from at
//! most `2·log₂ n` of those.

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 ‖ leaf).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// The hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Where complete subtrees' hashes come from: `level` 0 is a leaf, level
/// `l` covers leaves `index·2^l .. (index+1)·2^l`.
pub trait Nodes {
    /// The error reading a node.
    type Error;
    /// The hash of a complete subtree that exists.
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `lo..hi` (`lo < hi`), from complete subtrees.
pub fn range_hash<N: Nodes + ?Sized>(nodes: &mut N, lo: u64, hi: u64) -> Result<Hash, N::Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return nodes.node(n.trailing_zeros(), lo / n);
    }
    let k = split(n);
    let left = range_hash(nodes, lo, lo + k)?;
    let right = range_hash(nodes, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves.
pub fn root<N: Nodes + ?Sized>(nodes: &mut N, size: u64) -> Result<Hash, N::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(nodes, 0, size)
}

/// The audit path of leaf `m` in the tree of the first `size` leaves
/// (RFC 9162 2.1.3.1), nearest sibling first.
pub fn inclusion<N: Nodes + ?Sized>(
    nodes: &mut N,
    m: u64,
    size: u64,
) -> Result<Vec<Hash>, N::Error> {
    let mut path = Vec::new();
    path_of(nodes, m, 0, size, &mut path)?;
    Ok(path)
}

fn path_of<N: Nodes + ?Sized>(
    nodes: &mut N,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path_of(nodes, m, lo, lo + k, out)?;
        out.push(range_hash(nodes, lo + k, hi)?);
    } else {
        path_of(nodes, m - k, lo + k, hi, out)?;
        out.push(range_hash(nodes, lo, lo + k)?);
    }
    Ok(())
}

/// The proof that the tree of `old` leaves is a prefix of the tree of
/// `new` leaves (RFC 9162 2.1.4.1); empty when `old` is 0 or equal.
pub fn consistency<N: Nodes + ?Sized>(
    nodes: &mut N,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, N::Error> {
    let mut out = Vec::new();
    if old == 0 || old >= new {
        return Ok(out);
    }
    subproof(nodes, old, 0, new, true, &mut out)?;
    Ok(out)
}

fn subproof<N: Nodes + ?Sized>(
    nodes: &mut N,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(range_hash(nodes, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, lo, lo + k, whole, out)?;
        out.push(range_hash(nodes, lo + k, hi)?);
    } else {
        subproof(nodes, m - k, lo + k, hi, false, out)?;
        out.push(range_hash(nodes, lo, lo + k)?);
    }
    Ok(())
}

/// Check an inclusion proof (RFC 9162 2.1.3.2): that `leaf` is leaf
/// `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// Check a consistency proof (RFC 9162 2.1.4.2): that the tree of `old`
/// leaves with root `old_root` is a prefix of the tree of `new` leaves
/// with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == old_root && &sr == new_root && s == 0
}

/// Complete subtrees kept in memory, built leaf by leaf: what the
/// sequencer uses for one batch, and the tests for whole trees.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// `levels[l][i]`: the complete subtree `i` at level `l`.
    pub levels: Vec<Vec<Hash>>,
}

impl Memory {
    /// Append a leaf's hash; returns the complete nodes it finished
    /// (level ≥ 1), as `(level, index, hash)`.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut made = Vec::new();
        let mut level = 0usize;
        while self.levels[level].len().is_multiple_of(2) {
            let row = &self.levels[level];
            let h = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(h);
            made.push((
                level as u32 + 1,
                (self.levels[level + 1].len() - 1) as u64,
                h,
            ));
            level += 1;
        }
        made
    }
}

impl Nodes for Memory {
    type Error = std::convert::Infallible;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's definition, recursively over the leaves themselves.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn tree(n: usize) -> (Memory, Vec<Hash>) {
        let mut m = Memory::default();
        let leaves: Vec<Hash> = (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect();
        for l in &leaves {
            m.push(*l);
        }
        (m, leaves)
    }

    #[test]
    fn roots_match_the_definition() {
        for n in 0..70 {
            let (mut m, leaves) = tree(n);
            assert_eq!(root(&mut m, n as u64).unwrap(), mth(&leaves), "n = {n}");
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_other() {
        let (mut m, leaves) = tree(40);
        for size in 1..=40u64 {
            let r = root(&mut m, size).unwrap();
            for i in 0..size {
                let p = inclusion(&mut m, i, size).unwrap();
                assert!(verify_inclusion(i, size, &leaves[i as usize], &p, &r));
                let other = leaves[((i + 1) % 40) as usize];
                assert!(!verify_inclusion(i, size, &other, &p, &r));
                if !p.is_empty() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(i, size, &leaves[i as usize], &bad, &r));
                }
                if size < 40 {
                    // The same path does not lead to a larger tree's root.
                    let larger = root(&mut m, size + 1).unwrap();
                    assert!(!verify_inclusion(
                        i,
                        size + 1,
                        &leaves[i as usize],
                        &p,
                        &larger
                    ));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_no_other() {
        let (mut m, _) = tree(40);
        for new in 1..=40u64 {
            let nr = root(&mut m, new).unwrap();
            for old in 1..=new {
                let or = root(&mut m, old).unwrap();
                let p = consistency(&mut m, old, new).unwrap();
                assert!(verify_consistency(old, new, &or, &nr, &p), "{old} → {new}");
                if old < new {
                    let mut wrong = or;
                    wrong[5] ^= 0x10;
                    assert!(!verify_consistency(old, new, &wrong, &nr, &p));
                    let mut bad = p.clone();
                    bad[0][31] ^= 1;
                    assert!(!verify_consistency(old, new, &or, &nr, &bad));
                }
            }
        }
    }

    #[test]
    fn a_rewritten_tail_is_not_consistent() {
        let (mut a, _) = tree(20);
        let mut b = Memory::default();
        for i in 0..20u64 {
            let leaf = if i == 17 { 999u64 } else { i };
            b.push(leaf_hash(&leaf.to_be_bytes()));
        }
        let old = root(&mut a, 18).unwrap();
        let new = root(&mut b, 20).unwrap();
        let p = consistency(&mut b, 18, 20).unwrap();
        assert!(!verify_consistency(18, 20, &old, &new, &p));
    }

    #[test]
    fn proofs_are_logarithmic() {
        let (mut m, _) = tree(1000);
        assert_eq!(inclusion(&mut m, 0, 1000).unwrap().len(), 10);
        assert!(consistency(&mut m, 500, 1000).unwrap().len() <= 11);
    }
}
