//! A bounded cache of small files' bytes, keyed by store path and checked against the version
//! tag from a fresh `stat`: a tag names one version's bytes forever, so a hit is never stale.
//! It only saves CPU (opening and reading the blob on the blocking pool); losing it costs
//! nothing else.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use filegate_core::VPath;
use http::HeaderMap;

/// Small files' bytes by path, with the tag of the version they belong to.
pub struct SmallFileCache {
    /// Files larger than this are never cached.
    max_file: u64,
    /// Total bytes held at most.
    max_total: usize,
    /// Why a std mutex: it is held for one map operation, never across an await.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<VPath, Cached>,
    total: usize,
}

/// One cached version: its bytes and the headers of its 200 response, built once.
struct Cached {
    tag: String,
    data: Bytes,
    headers: HeaderMap,
}

impl SmallFileCache {
    pub fn new(max_file: u64, max_total: usize) -> Self {
        SmallFileCache {
            max_file,
            max_total,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// True if a file of `size` bytes may be cached at all.
    pub fn admits(&self, size: u64) -> bool {
        self.max_total > 0 && size <= self.max_file
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Version `tag` of `path`, if cached: its bytes and the headers of its 200 response.
    pub fn get(&self, path: &VPath, tag: &str) -> Option<(Bytes, HeaderMap)> {
        let inner = self.lock();
        match inner.map.get(path) {
            Some(c) if c.tag == tag => Some((c.data.clone(), c.headers.clone())),
            _ => None,
        }
    }

    /// Remembers version `tag` of `path`: its bytes and its response headers.
    pub fn insert(&self, path: &VPath, tag: &str, data: Bytes, headers: HeaderMap) {
        if !self.admits(data.len() as u64) {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(path) {
            inner.total -= old.data.len();
        }
        while inner.total + data.len() > self.max_total {
            // Evict whichever entry comes first; the map's order is arbitrary enough.
            let Some(victim) = inner.map.keys().next().cloned() else {
                break;
            };
            if let Some(old) = inner.map.remove(&victim) {
                inner.total -= old.data.len();
            }
        }
        inner.total += data.len();
        inner.map.insert(
            path.clone(),
            Cached {
                tag: tag.to_owned(),
                data,
                headers,
            },
        );
    }

    pub fn total_bytes(&self) -> usize {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_version_and_stays_bounded() {
        let c = SmallFileCache::new(10, 25);
        let p = |s: &str| VPath::parse(s).unwrap();
        let h = HeaderMap::new;
        c.insert(&p("/a"), "t1", Bytes::from_static(b"0123456789"), h());
        assert_eq!(&c.get(&p("/a"), "t1").unwrap().0[..], b"0123456789");
        assert!(c.get(&p("/a"), "t2").is_none(), "another version");
        c.insert(&p("/big"), "t", Bytes::from(vec![0u8; 11]), h());
        assert!(c.get(&p("/big"), "t").is_none(), "too big to cache");
        c.insert(&p("/a"), "t2", Bytes::from_static(b"new"), h());
        assert!(c.get(&p("/a"), "t1").is_none());
        assert_eq!(c.total_bytes(), 3);
        for i in 0..10 {
            c.insert(&p(&format!("/f{i}")), "t", Bytes::from(vec![1u8; 10]), h());
            assert!(c.total_bytes() <= 25);
        }
        assert!(!SmallFileCache::new(10, 0).admits(1));
    }
}
