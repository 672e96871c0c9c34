//! Recent path lookups (path to record), so a `stat` or `read` of a busy file skips walking
//! sled one segment at a time: that walk was the largest part of serving a small cached file.
//!
//! Correctness rests on one counter: every namespace commit bumps it (before the call that
//! committed returns, and before a replaced blob is unlinked), and an entry is served only if
//! it was looked up under the current value. A lookup reads the counter before walking, so a
//! commit racing with the walk leaves an entry that is never served. Any commit invalidates
//! everything: simple, and cheap for the read-mostly load where the cache pays.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::node::Node;
use crate::path::VPath;
use crate::storage::Entry;

/// One resolved path: its record and the entry built from it.
#[derive(Clone)]
pub(crate) struct Hit {
    pub node: Node,
    pub entry: Entry,
}

pub(crate) struct Lookups {
    generation: AtomicU64,
    /// Entries kept at most; a full map is emptied rather than managed.
    max: usize,
    /// Why a std mutex: held for one map operation, never across an await.
    map: Mutex<HashMap<VPath, (u64, Hit)>>,
}

impl Lookups {
    pub fn new(max: usize) -> Lookups {
        Lookups {
            generation: AtomicU64::new(0),
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The counter to pass to [`Lookups::insert`]; read it before walking the path.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Call after every commit that may change what a path resolves to.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets `path` (its blob turned out to be gone).
    pub fn forget(&self, path: &VPath) {
        self.lock().remove(path);
    }

    pub fn get(&self, path: &VPath) -> Option<Hit> {
        if self.max == 0 {
            return None;
        }
        let map = self.lock();
        match map.get(path) {
            Some((g, hit)) if *g == self.generation() => Some(hit.clone()),
            _ => None,
        }
    }

    /// Remembers `hit` for `path`, as looked up under `generation`.
    pub fn insert(&self, generation: u64, path: &VPath, hit: &Hit) {
        if self.max == 0 || generation != self.generation() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.max && !map.contains_key(path) {
            map.clear();
        }
        map.insert(path.clone(), (generation, hit.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VPath, (u64, Hit)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64) -> Hit {
        let node = Node {
            dir: false,
            id,
            size: 1,
            mtime_ns: 0,
            children: 0,
            digest: None,
        };
        Hit {
            entry: node.entry("f", 7),
            node,
        }
    }

    #[test]
    fn a_commit_hides_everything_looked_up_before_it() {
        let l = Lookups::new(2);
        let p = |s: &str| VPath::parse(s).unwrap();
        let g = l.generation();
        l.insert(g, &p("/a"), &hit(1));
        assert_eq!(l.get(&p("/a")).map(|h| h.node.id), Some(1));
        l.invalidate();
        assert!(l.get(&p("/a")).is_none(), "stale after a commit");
        // A walk that began before the commit must not be remembered.
        l.insert(g, &p("/a"), &hit(1));
        assert!(l.get(&p("/a")).is_none());
        let g = l.generation();
        l.insert(g, &p("/a"), &hit(2));
        l.insert(g, &p("/b"), &hit(3));
        l.insert(g, &p("/c"), &hit(4));
        assert!(l.lock().len() <= 2, "bounded");
        assert_eq!(l.get(&p("/c")).map(|h| h.node.id), Some(4));
        l.forget(&p("/c"));
        assert!(l.get(&p("/c")).is_none());
        assert!(Lookups::new(0).get(&p("/a")).is_none());
    }
}
