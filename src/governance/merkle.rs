//! The RFC 6962 Merkle tree over the audit log, so an exported log can prove that an entry is
//! in it without handing over the rest.
//!
//! A leaf is an entry's canonical bytes (the same bytes the hash chain covers); its leaf hash is
//! `SHA-256(0x00 ‖ canonical)` and an interior node is `SHA-256(0x01 ‖ left ‖ right)`, with the
//! RFC 6962 split (the left subtree holds the largest power of two below the size). The root of
//! a growing log is kept incrementally by [`Frontier`] (one perfect subtree per set bit of the
//! size); inclusion proofs of a whole in-memory log come from `ct-merkle`, which is tested
//! against the transparency-dev known-answer vectors, as is this module (see the tests).
//! [`InclusionBuilder`] proves one entry of a stored log from its leaf hashes streamed in order,
//! in O(log n) memory, and is tested against `ct-merkle`'s proofs.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub(crate) fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a log that grows one leaf at a time, in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    /// Roots of the perfect subtrees, largest first, with their heights.
    peaks: Vec<(u32, [u8; 32])>,
    size: u64,
}

impl Frontier {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf (its canonical bytes).
    pub fn push(&mut self, leaf: &[u8]) {
        self.push_leaf_hash(leaf_hash(leaf));
    }

    /// Appends one leaf by its [`leaf_hash`] (computed elsewhere, e.g. on the caller's thread).
    pub fn push_leaf_hash(&mut self, leaf: [u8; 32]) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.peaks.last() {
            if height != node.0 {
                break;
            }
            self.peaks.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// The roots of the perfect subtrees, largest first (hex), from which [`Frontier::from_peaks`]
    /// rebuilds the frontier; their heights follow from the size's set bits.
    pub fn peaks(&self) -> Vec<String> {
        self.peaks.iter().map(|(_, h)| hex::encode(h)).collect()
    }

    /// Rebuilds a frontier of `size` leaves from [`Frontier::peaks`]. `None` when the number of
    /// peaks does not match the size or a peak is not 32 bytes of hex. The caller authenticates
    /// the result by comparing [`Frontier::root`] with a signed tree head.
    pub fn from_peaks(size: u64, peaks: &[String]) -> Option<Self> {
        let heights: Vec<u32> = (0..64u32)
            .rev()
            .filter(|bit| size & (1u64 << bit) != 0)
            .collect();
        if heights.len() != peaks.len() {
            return None;
        }
        let mut out = Vec::with_capacity(peaks.len());
        for (height, peak) in heights.into_iter().zip(peaks) {
            let bytes: [u8; 32] = hex::decode(peak).ok()?.try_into().ok()?;
            out.push((height, bytes));
        }
        Some(Frontier { peaks: out, size })
    }

    /// The RFC 6962 tree head: `SHA-256("")` for an empty log.
    pub fn root(&self) -> [u8; 32] {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = peaks.next() else {
            return Sha256::digest([]).into();
        };
        for (_, left) in peaks {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// An inclusion proof of one entry in a log of `tree_size` entries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inclusion {
    /// Sequence number of the entry (its leaf index is `seq - 1`).
    pub seq: u64,
    /// Entries in the tree the proof is for.
    pub tree_size: u64,
    /// Tree head (hex).
    pub root: String,
    /// `SHA-256(0x00 ‖ canonical)` of the entry (hex).
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up (hex), as RFC 6962 orders them.
    pub path: Vec<String>,
}

/// Builds the tree over `leaves` (canonical bytes, in order) and proves leaf `index`.
/// `None` when `index` is out of range.
pub fn prove(leaves: Vec<Vec<u8>>, index: usize) -> Option<Inclusion> {
    if index >= leaves.len() {
        return None;
    }
    let leaf = leaf_hash(&leaves[index]);
    let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for l in leaves {
        tree.push(l);
    }
    let root = tree.root();
    let proof = tree.prove_inclusion(index);
    Some(Inclusion {
        seq: index as u64 + 1,
        tree_size: root.num_leaves(),
        root: hex::encode(root.as_bytes()),
        leaf_hash: hex::encode(leaf),
        path: proof.as_bytes().chunks(32).map(hex::encode).collect(),
    })
}

/// Builds the inclusion proof of leaf `index` in a tree of `size` leaves from the leaf hashes
/// alone, fed in order by [`InclusionBuilder::push`], in O(log n) memory: each hash of the path
/// is the root of a run of leaves that does not hold `index` (RFC 6962 `PATH`), folded as its
/// leaves go by. Reading the leaves is O(n); nothing but their hashes is needed.
#[derive(Debug)]
pub struct InclusionBuilder {
    index: u64,
    size: u64,
    /// The runs of leaves whose roots form the path, from the leaf up.
    path: Vec<PathRun>,
    /// Which run of `path` the next leaf belongs to (they do not come in path order).
    run: Option<(usize, Frontier)>,
    leaf: Option<[u8; 32]>,
    pushed: u64,
}

impl InclusionBuilder {
    /// A builder for leaf `index` (from 0) of a tree of `size` leaves; `None` when `index` is
    /// not below `size`.
    pub fn new(index: u64, size: u64) -> Option<Self> {
        if index >= size {
            return None;
        }
        let mut runs = Vec::new();
        path_runs(index, 0, size, &mut runs);
        Some(InclusionBuilder {
            index,
            size,
            path: runs
                .into_iter()
                .map(|(start, end)| PathRun {
                    start,
                    end,
                    root: None,
                })
                .collect(),
            run: None,
            leaf: None,
            pushed: 0,
        })
    }

    /// The next leaf's hash ([`leaf_hash`]); leaves past `size` are ignored. Returns `false`
    /// once every leaf has been taken.
    pub fn push(&mut self, leaf: [u8; 32]) -> bool {
        let at = self.pushed;
        if at >= self.size {
            return false;
        }
        self.pushed += 1;
        if at == self.index {
            self.leaf = Some(leaf);
            return self.pushed < self.size;
        }
        if self.run.is_none() {
            let found = self
                .path
                .iter()
                .position(|run| (run.start..run.end).contains(&at));
            self.run = found.map(|i| (i, Frontier::new()));
        }
        if let Some((i, frontier)) = &mut self.run {
            frontier.push_leaf_hash(leaf);
            if at + 1 == self.path[*i].end {
                self.path[*i].root = Some(frontier.root());
                self.run = None;
            }
        }
        self.pushed < self.size
    }

    /// The proof, once all `size` leaves were pushed; `None` before.
    pub fn finish(self) -> Option<Inclusion> {
        let leaf = self.leaf?;
        if self.pushed < self.size {
            return None;
        }
        let mut root = leaf;
        let mut path = Vec::with_capacity(self.path.len());
        for run in self.path {
            let hash = run.root?;
            root = if run.start > self.index {
                node_hash(&root, &hash)
            } else {
                node_hash(&hash, &root)
            };
            path.push(hex::encode(hash));
        }
        Some(Inclusion {
            seq: self.index + 1,
            tree_size: self.size,
            root: hex::encode(root),
            leaf_hash: hex::encode(leaf),
            path,
        })
    }
}

/// Leaves `[start, end)` whose root is one hash of an inclusion path; `root` once all went by.
#[derive(Debug)]
struct PathRun {
    start: u64,
    end: u64,
    root: Option<[u8; 32]>,
}

/// The runs of leaves `[start, end)` whose roots form the RFC 6962 path of leaf `index` in the
/// subtree `[lo, hi)`, from the leaf up.
pub(crate) fn path_runs(index: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    // The largest power of two below n.
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    if index < lo + k {
        path_runs(index, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        path_runs(index, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// Builds the tree over `leaves` once and proves every leaf, in order.
pub fn prove_many(leaves: Vec<Vec<u8>>) -> Vec<Inclusion> {
    let hashes: Vec<String> = leaves.iter().map(|l| hex::encode(leaf_hash(l))).collect();
    let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for l in leaves {
        tree.push(l);
    }
    let root = tree.root();
    let root_hex = hex::encode(root.as_bytes());
    hashes
        .into_iter()
        .enumerate()
        .map(|(index, leaf_hash)| Inclusion {
            seq: index as u64 + 1,
            tree_size: root.num_leaves(),
            root: root_hex.clone(),
            leaf_hash,
            path: tree
                .prove_inclusion(index)
                .as_bytes()
                .chunks(32)
                .map(hex::encode)
                .collect(),
        })
        .collect()
}

/// Checks that `canonical` is entry `seq` of the tree with head `root` (hex) and size
/// `tree_size`, by the proof's path.
pub fn verify(canonical: &[u8], proof: &Inclusion) -> bool {
    let Ok(root) = hex::decode(&proof.root) else {
        return false;
    };
    let Ok(root) = <[u8; 32]>::try_from(root.as_slice()) else {
        return false;
    };
    let mut path = Vec::with_capacity(proof.path.len() * 32);
    for step in &proof.path {
        match hex::decode(step) {
            Ok(bytes) if bytes.len() == 32 => path.extend_from_slice(&bytes),
            _ => return false,
        }
    }
    let Ok(path) = InclusionProof::<Sha256>::try_from_bytes(path) else {
        return false;
    };
    let head = RootHash::<Sha256>::new(root.into(), proof.tree_size);
    proof.seq >= 1
        && head
            .verify_inclusion(&canonical, proof.seq - 1, &path)
            .is_ok()
}

#[cfg(test)]
mod tests;
