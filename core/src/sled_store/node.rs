//! The records kept in sled: one [`Node`] per file or directory, keyed by its parent
//! directory's id and its name, so a directory rename touches one key whatever its size.

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::storage::{Entry, Kind};

/// Id of the root directory, which has no record of its own.
pub(crate) const ROOT_ID: u64 = 0;

/// First byte of every record, so the format can change later.
const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub dir: bool,
    /// A directory: the key prefix of its children. A file: its version, which is also the
    /// name of its blob.
    pub id: u64,
    pub size: u64,
    pub mtime_ns: u64,
    /// Directories: number of entries, kept so emptiness is checked inside a transaction.
    pub children: u64,
    pub digest: Option<[u8; 32]>,
}

impl Node {
    pub fn encode(&self) -> StoreResult<Vec<u8>> {
        let mut out = vec![FORMAT];
        out.extend(postcard::to_stdvec(self)?);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> StoreResult<Node> {
        match bytes.split_first() {
            Some((&FORMAT, rest)) => Ok(postcard::from_bytes(rest)?),
            _ => Err(StoreError::Corrupt("node record of unknown format".into())),
        }
    }

    pub fn entry(&self, name: &str, nonce: u32) -> Entry {
        Entry {
            name: name.to_owned(),
            kind: if self.dir { Kind::Dir } else { Kind::File },
            size: if self.dir { 0 } else { self.size },
            modified: std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.mtime_ns),
            tag: tag(nonce, self.id),
            digest: self.digest,
        }
    }
}

/// The version tag of node id `id` in the store with `nonce`.
pub(crate) fn tag(nonce: u32, id: u64) -> String {
    format!("{nonce:08x}{id:x}")
}

/// The key of entry `name` in directory `parent`.
pub(crate) fn key(parent: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + name.len());
    k.extend_from_slice(&parent.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// The name part of a key.
pub(crate) fn key_name(key: &[u8]) -> StoreResult<&str> {
    key.get(8..)
        .and_then(|n| std::str::from_utf8(n).ok())
        .ok_or_else(|| StoreError::Corrupt("malformed entry key".into()))
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let n = Node {
            dir: false,
            id: 7,
            size: 65537,
            mtime_ns: 1_700_000_000_123_456_789,
            children: 0,
            digest: Some([3; 32]),
        };
        assert_eq!(Node::decode(&n.encode().unwrap()).unwrap(), n);
        assert!(Node::decode(&[9, 1, 2]).is_err());
        assert!(Node::decode(&[]).is_err());
        assert_eq!(key_name(&key(5, "名前")).unwrap(), "名前");
        assert!(key_name(&[1, 2]).is_err());
    }
}
