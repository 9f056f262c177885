//! Cheap inclusion proofs. After verifying the log in full, the trail keeps its Merkle tree as
//! verified, coarsely: the roots of its aligned blocks of [`BLOCK`] entries and of every larger
//! aligned subtree (about one hash per 32 entries). Proving an entry then reads the entry's own
//! block and the log's last, partial block from the store (at most 2 × [`BLOCK`] entries, by
//! seeking) and O(log n) kept hashes, instead of verifying and reading the whole log each time
//! the console shows an entry. A [`Proved`] says which verification stands behind its tree
//! head, when it was made and how many entries came after it.

use chrono::{DateTime, Utc};

use super::super::AuditError;
use super::super::merkle::{Frontier, Inclusion, node_hash, path_runs};

/// Entries per block of the kept tree: a proof reads at most two blocks of entries, and the
/// tree kept is one hash per `BLOCK / 2` entries.
pub(super) const BLOCK: u64 = 64;

/// An inclusion proof of one entry, and the full verification its tree head comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Proved {
    /// The RFC 6962 proof, against the tree head of the verified log.
    pub inclusion: Inclusion,
    /// When the log was verified in full (every entry, checkpoint and anchor, as
    /// `veyra audit verify` does) up to the proof's tree head.
    pub verified_at: DateTime<Utc>,
    /// Entries that verification covered: the proof's tree size.
    pub verified_entries: u64,
    /// Entries appended since that verification, not checked by it.
    pub appended_since: u64,
    /// True when this proof verified the log itself; false when it reused the trail's last
    /// verification (and read only the entries its proof needs).
    pub fresh: bool,
}

/// The Merkle tree of the log as last verified, kept coarsely (see the module's note).
#[derive(Debug)]
pub(super) struct VerifiedTree {
    /// Entries verified.
    pub size: u64,
    /// The tree head over them.
    pub root: [u8; 32],
    /// When the verification started.
    pub at: DateTime<Utc>,
    /// `levels[k][i]`: the root of leaves `[i·BLOCK·2^k, (i+1)·BLOCK·2^k)`, for every such
    /// subtree inside the verified log.
    levels: Vec<Vec<[u8; 32]>>,
}

/// Builds a [`VerifiedTree`] from the verified log's leaf hashes, in order.
#[derive(Debug)]
pub(super) struct TreeBuilder {
    size: u64,
    pushed: u64,
    all: Frontier,
    block: Frontier,
    levels: Vec<Vec<[u8; 32]>>,
}

impl TreeBuilder {
    /// A builder of the tree over the first `size` leaves.
    pub fn new(size: u64) -> Self {
        TreeBuilder {
            size,
            pushed: 0,
            all: Frontier::new(),
            block: Frontier::new(),
            levels: Vec::new(),
        }
    }

    /// The next leaf hash; leaves past `size` are ignored. False once every leaf was taken.
    pub fn push(&mut self, leaf: [u8; 32]) -> bool {
        if self.pushed >= self.size {
            return false;
        }
        self.pushed += 1;
        self.all.push_leaf_hash(leaf);
        self.block.push_leaf_hash(leaf);
        if self.block.size() == BLOCK {
            let root = std::mem::take(&mut self.block).root();
            self.add(0, root);
        }
        self.pushed < self.size
    }

    fn add(&mut self, level: usize, node: [u8; 32]) {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        let row = &mut self.levels[level];
        row.push(node);
        if row.len().is_multiple_of(2) {
            let parent = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            self.add(level + 1, parent);
        }
    }

    /// The tree, once all `size` leaves were pushed (`None` before: the store held fewer).
    pub fn finish(self, at: DateTime<Utc>) -> Option<VerifiedTree> {
        (self.pushed == self.size).then(|| VerifiedTree {
            size: self.size,
            root: self.all.root(),
            at,
            levels: self.levels,
        })
    }
}

/// The leaf hashes of one block: its first leaf and the hashes.
type Leaves = (u64, Vec<[u8; 32]>);

impl VerifiedTree {
    /// The inclusion proof of leaf `index` against this tree's head. `read` gives the leaf
    /// hashes of leaves `[start, end)` (one block at most) as the store holds them now; `None`
    /// when `index` is outside the tree or the store did not give every leaf asked for.
    pub fn prove(
        &self,
        index: u64,
        read: &mut dyn FnMut(u64, u64) -> Result<Vec<[u8; 32]>, AuditError>,
    ) -> Result<Option<Inclusion>, AuditError> {
        if index >= self.size {
            return Ok(None);
        }
        let block = |start: u64| (start, (start + BLOCK).min(self.size));
        let own = block(index / BLOCK * BLOCK);
        let tail = block(self.size / BLOCK * BLOCK);
        let mut blocks: Vec<Leaves> = vec![(own.0, read(own.0, own.1)?)];
        if tail.0 < tail.1 && tail.0 != own.0 {
            blocks.push((tail.0, read(tail.0, tail.1)?));
        }
        let leaf = |i: u64| {
            blocks.iter().find_map(|(start, hashes)| {
                i.checked_sub(*start)
                    .and_then(|at| hashes.get(usize::try_from(at).ok()?))
                    .copied()
            })
        };
        let Some(leaf_hash) = leaf(index) else {
            return Ok(None);
        };
        let mut runs = Vec::new();
        path_runs(index, 0, self.size, &mut runs);
        let mut root = leaf_hash;
        let mut path = Vec::with_capacity(runs.len());
        for (start, end) in runs {
            let Some(hash) = self.subtree(start, end, &leaf) else {
                return Ok(None);
            };
            root = if start > index {
                node_hash(&root, &hash)
            } else {
                node_hash(&hash, &root)
            };
            path.push(hex::encode(hash));
        }
        Ok(Some(Inclusion {
            seq: index + 1,
            tree_size: self.size,
            root: hex::encode(root),
            leaf_hash: hex::encode(leaf_hash),
            path,
        }))
    }

    /// The RFC 6962 root of leaves `[lo, hi)`, a node of the tree: kept when it is a whole
    /// aligned subtree of at least a block, else made from its halves down to the leaves (only
    /// ever inside the proved entry's block or the last, partial block).
    fn subtree(
        &self,
        lo: u64,
        hi: u64,
        leaf: &dyn Fn(u64) -> Option<[u8; 32]>,
    ) -> Option<[u8; 32]> {
        let n = hi - lo;
        if n == 1 {
            return leaf(lo);
        }
        if n.is_power_of_two() && n >= BLOCK && lo.is_multiple_of(n) {
            let level = usize::try_from((n / BLOCK).trailing_zeros()).ok()?;
            let at = usize::try_from(lo / n).ok()?;
            return self.levels.get(level)?.get(at).copied();
        }
        // The largest power of two below n (RFC 6962's split).
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        Some(node_hash(
            &self.subtree(lo, lo + k, leaf)?,
            &self.subtree(lo + k, hi, leaf)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::merkle::{self, leaf_hash};

    #[test]
    fn proofs_from_the_kept_tree_are_the_proofs_of_the_whole_tree() {
        for size in [1u64, 2, 3, 63, 64, 65, 127, 128, 129, 200, 64 * 5 + 7] {
            let leaves: Vec<Vec<u8>> = (0..size)
                .map(|i| format!("entry {i}").into_bytes())
                .collect();
            let hashes: Vec<[u8; 32]> = leaves.iter().map(|l| leaf_hash(l)).collect();
            let mut builder = TreeBuilder::new(size);
            for h in &hashes {
                builder.push(*h);
            }
            let tree = builder.finish(Utc::now()).expect("every leaf pushed");
            let read_leaves = std::cell::Cell::new(0);
            let mut read = |start: u64, end: u64| {
                read_leaves.set(read_leaves.get() + end - start);
                Ok(hashes[start as usize..end as usize].to_vec())
            };
            for index in 0..size {
                let proof = tree.prove(index, &mut read).unwrap().expect("a proof");
                let whole = merkle::prove(leaves.clone(), index as usize).unwrap();
                assert_eq!(proof, whole, "size {size}, leaf {index}");
            }
            assert!(
                read_leaves.get() <= size * 2 * BLOCK,
                "at most two blocks a proof"
            );
            assert_eq!(tree.prove(size, &mut read).unwrap(), None);
        }
    }
}
