//! The RFC 6962 Merkle tree over the audit log, so an exported log can prove that an entry is
//! in it without handing over the rest.
//!
//! A leaf is an entry's canonical bytes (the same bytes the hash chain covers); its leaf hash is
//! `SHA-256(0x00 ‖ canonical)` and an interior node is `SHA-256(0x01 ‖ left ‖ right)`, with the
//! RFC 6962 split (the left subtree holds the largest power of two below the size). The root of
//! a growing log is kept incrementally by [`Frontier`] (one perfect subtree per set bit of the
//! size); inclusion proofs come from `ct-merkle`, which is tested against the transparency-dev
//! known-answer vectors, as is this module (see the tests).

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
fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
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
