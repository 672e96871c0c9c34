//! Small blobs' bytes in memory, by blob id. A blob never changes once published, so an entry
//! can never be stale: it only saves the open, read and close of a small download (three
//! syscalls, a quarter of what the store cost per 4 KiB FTP download). Losing it costs nothing
//! else.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

pub(crate) struct SmallBlobs {
    /// Total bytes held at most (0: cache nothing).
    max_total: usize,
    /// Why a std mutex: held for one map operation, never across an await.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<u64, Bytes>,
    total: usize,
}

impl SmallBlobs {
    pub fn new(max_total: usize) -> SmallBlobs {
        SmallBlobs {
            max_total,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, id: u64) -> Option<Bytes> {
        if self.max_total == 0 {
            return None;
        }
        self.lock().map.get(&id).cloned()
    }

    pub fn insert(&self, id: u64, data: Bytes) {
        if data.len() > self.max_total {
            return;
        }
        let mut inner = self.lock();
        while inner.total + data.len() > self.max_total {
            // Whichever entry comes first: the map's order is arbitrary enough.
            let Some(victim) = inner.map.keys().next().copied() else {
                break;
            };
            if let Some(old) = inner.map.remove(&victim) {
                inner.total -= old.len();
            }
        }
        inner.total += data.len();
        if let Some(old) = inner.map.insert(id, data) {
            inner.total -= old.len();
        }
    }

    /// Drops blob `id` (it was unlinked).
    pub fn remove(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(&id) {
            inner.total -= old.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_forgets_removed_blobs() {
        let c = SmallBlobs::new(10);
        c.insert(1, Bytes::from_static(b"abcd"));
        c.insert(2, Bytes::from_static(b"efgh"));
        assert_eq!(c.get(1).as_deref(), Some(&b"abcd"[..]));
        c.insert(3, Bytes::from_static(b"ijkl"));
        assert!(c.lock().total <= 10);
        assert_eq!(c.get(3).as_deref(), Some(&b"ijkl"[..]));
        c.remove(3);
        assert!(c.get(3).is_none());
        c.insert(4, Bytes::from(vec![0u8; 11]));
        assert!(c.get(4).is_none(), "larger than the whole cache");
        c.insert(2, Bytes::from_static(b"efgh"));
        let total: usize = c.lock().map.values().map(Bytes::len).sum();
        assert_eq!(c.lock().total, total);
        assert!(SmallBlobs::new(0).get(2).is_none());
    }
}
