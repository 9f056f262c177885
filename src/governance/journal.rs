//! The undo journal: the content a tool call replaced, kept beside the audit entry that records
//! the call.
//!
//! `file_write` and `file_delete` put the SHA-256 of what they replaced in their
//! `TOOL_INVOCATION` entry's metadata; the bytes themselves go here as a [`JournalBlob`], keyed
//! by that entry's sequence number. The SQLite store commits a blob in the same transaction as
//! its entry (table `tool_journal`), so the blob is durable exactly when the entry is; the
//! memory store keeps a map.
//!
//! The journal is not part of the hash chain (it can be large, and a later Veyra may prune it),
//! so a blob is trusted only when its SHA-256 equals the one the chained, signed entry holds:
//! [`JournalBlob::matches`]. Whoever can write the store's directory can delete or swap a blob;
//! that makes an undo refuse, never restore the wrong bytes.

use std::fmt;

use sha2::{Digest, Sha256};

/// Bytes a tool call replaced, with their SHA-256 as recorded when they were kept.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalBlob {
    /// The content, exactly as it was.
    pub content: Vec<u8>,
    /// SHA-256 of `content` (64 lowercase hex digits) as recorded; informational only, see
    /// [`JournalBlob::matches`].
    pub sha256: String,
}

impl JournalBlob {
    /// A blob of `content`, its hash computed.
    pub fn new(content: Vec<u8>) -> Self {
        let sha256 = sha256_hex(&content);
        JournalBlob { content, sha256 }
    }

    /// True when the content's SHA-256, computed now, is `expected` (the hash the audit entry
    /// holds). The stored `sha256` column is not trusted for this.
    pub fn matches(&self, expected: &str) -> bool {
        sha256_hex(&self.content) == expected
    }
}

/// Never prints the content (file contents stay out of logs): its size and hash only.
impl fmt::Debug for JournalBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalBlob")
            .field("bytes", &self.content.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_matches_its_own_hash_only_and_never_prints_its_content() {
        let blob = JournalBlob::new(b"launch codes".to_vec());
        assert!(blob.matches(&sha256_hex(b"launch codes")));
        let mut swapped = blob.clone();
        swapped.content = b"something else".to_vec();
        // The recorded column still says the old hash; the content decides.
        assert!(!swapped.matches(&blob.sha256));
        assert!(!format!("{blob:?}").contains("launch"));
    }
}
