//! RFC 6962 / RFC 9162 Merkle tree math, with no storage in it.
//!
//! Written by hand: `rs_merkle` has no RFC 6962 consistency proofs, no proofs for an older tree
//! size, and keeps no incremental per-level cache; what the log needs is all three. Complete
//! subtrees are cached per level so appends cost O(log n) hashes and any subtree hash is O(log n).

use aws_lc_rs::digest::{Context, SHA256};

/// A SHA-256 node hash.
pub type Hash = [u8; 32];

/// RFC 6962 §2.1 domain separation.
const LEAF_PREFIX: u8 = 0;
const NODE_PREFIX: u8 = 1;

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[LEAF_PREFIX]);
    ctx.update(leaf);
    to_hash(ctx)
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[NODE_PREFIX]);
    ctx.update(left);
    ctx.update(right);
    to_hash(ctx)
}

fn to_hash(ctx: Context) -> Hash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(ctx.finish().as_ref());
    hash
}

/// Largest power of two strictly less than `n` (n ≥ 2): RFC 6962's split point `k`.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// An append-only Merkle tree. `levels[h][i]` is the hash of the complete subtree of `2^h`
/// leaves starting at leaf `i * 2^h`.
#[derive(Debug, Default, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        MerkleTree { levels: vec![Vec::new()] }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The hashes of the complete subtrees of `2^level` leaves, left to right: what a tlog-tiles
    /// tile at level `level / 8` holds.
    pub fn level(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<&Hash> {
        self.levels.first()?.get(index as usize)
    }

    /// Appends a leaf hash, completing whatever subtrees it completes.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let n = self.levels[level].len();
            let parent = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// MTH(D[lo:hi]) for 0 ≤ lo < hi ≤ size.
    fn subtree(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(lo / n) as usize];
        }
        let k = split(n);
        node_hash(&self.subtree(lo, lo + k), &self.subtree(lo + k, hi))
    }

    /// The root of the tree's first `size` leaves; `None` beyond the current size. The empty
    /// tree's root is SHA-256 of the empty string (RFC 6962 §2.1).
    pub fn root(&self, size: u64) -> Option<Hash> {
        if size > self.size() {
            return None;
        }
        if size == 0 {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(aws_lc_rs::digest::digest(&SHA256, b"").as_ref());
            return Some(hash);
        }
        Some(self.subtree(0, size))
    }

    /// RFC 6962 §2.1.1 audit path of leaf `index` in the tree of `size` leaves, leaf to root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Some(proof)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n == 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, lo, lo + k, out);
            out.push(self.subtree(lo + k, hi));
        } else {
            self.path(m - k, lo + k, hi, out);
            out.push(self.subtree(lo, lo + k));
        }
    }

    /// RFC 6962 §2.1.2 consistency proof from the tree of `old` leaves to the tree of `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        if old > new || new > self.size() {
            return None;
        }
        let mut proof = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(self.subtree(lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, complete, out);
            out.push(self.subtree(lo + k, hi));
        } else {
            self.subproof(m - k, lo + k, hi, false, out);
            out.push(self.subtree(lo, lo + k));
        }
    }
}

/// Whether `proof` (leaf to root, as [`MerkleTree::inclusion_proof`] writes it) shows `leaf` at
/// `index` in the tree of `size` leaves whose root is `root`: the root is recomputed along the
/// same RFC 6962 splits the proof was made on, the top split's sibling being the proof's last hash.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    fn root_from(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Option<Hash> {
        if size == 1 {
            return proof.is_empty().then_some(*leaf);
        }
        let (sibling, below) = proof.split_last()?;
        let k = split(size);
        Some(if index < k {
            node_hash(&root_from(index, k, leaf, below)?, sibling)
        } else {
            node_hash(sibling, &root_from(index - k, size - k, leaf, below)?)
        })
    }
    index < size && root_from(index, size, leaf, proof).is_some_and(|r| r == *root)
}

/// Whether `proof` (as [`MerkleTree::consistency_proof`] writes it) shows the tree of `old` leaves
/// with root `old_root` to be a prefix of the tree of `new` leaves with root `new_root`. Both
/// roots are recomputed along the RFC 6962 SUBPROOF recursion the proof was made on, consuming the
/// proof from its end (the top split's sibling).
pub fn verify_consistency(old: u64, new: u64, proof: &[Hash], old_root: &Hash, new_root: &Hash) -> bool {
    /// (root of the old tree's part in this subtree, root of this subtree in the new tree).
    fn walk(m: u64, n: u64, complete: bool, proof: &[Hash], old_root: &Hash) -> Option<(Hash, Hash)> {
        if m == n {
            return match (complete, proof) {
                (true, []) => Some((*old_root, *old_root)),
                (false, [hash]) => Some((*hash, *hash)),
                _ => None,
            };
        }
        let (sibling, below) = proof.split_last()?;
        let k = split(n);
        if m <= k {
            let (old, new) = walk(m, k, complete, below, old_root)?;
            Some((old, node_hash(&new, sibling)))
        } else {
            let (old, new) = walk(m - k, n - k, false, below, old_root)?;
            Some((node_hash(sibling, &old), node_hash(sibling, &new)))
        }
    }
    match (old, new) {
        (o, n) if o > n => false,
        (0, _) => proof.is_empty(),
        (o, n) if o == n => proof.is_empty() && old_root == new_root,
        _ => walk(old, new, true, proof, old_root).is_some_and(|(o, n)| o == *old_root && n == *new_root),
    }
}
