//! The embedded store: sled for the namespace, metadata and accounts; blob files for bodies.
//!
//! # Layout
//! - `node`: the record kept per file or directory, and its key.
//! - `blobs`: the immutable blob files and the temporary files uploads go through.
//! - `accounts`: the [`Accounts`](crate::accounts::Accounts) implementation.
//!
//! Every change commits in one sled transaction and is flushed before the call returns. A
//! blob is durable on disk before the transaction that refers to it, and a replaced blob is
//! unlinked only after the transaction that dropped it is durable, so after a crash the
//! metadata never points at a missing blob; blobs nothing points at are removed at open.

mod accounts;
mod blobs;
mod direct_buffers;
mod lookups;
mod node;
mod sink;
mod small_blobs;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sled::transaction::{
    abort, ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree, UnabortableTransactionError,
};

use self::blobs::{Base, BlobDir};
use self::lookups::{Hit, Lookups};
use self::node::{key, key_name, now_ns, Node, ROOT_ID};
use crate::accounts::AccountEvent;
use crate::error::{StoreError, StoreResult};
use crate::path::VPath;
use crate::storage::{
    BodyStream, Entry, Kind, Precondition, ReadHandle, Storage, Usage, WriteMode, WriteOutcome,
};

/// Tunables of the embedded store.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache, in bytes. Only metadata lives in sled, so this stays small.
    pub cache_capacity: u64,
    /// Path lookups remembered between commits (0: none).
    pub lookup_cache_entries: usize,
    /// Bytes of small files (64 KiB or less) kept in memory by version (0: none).
    pub small_blob_cache_bytes: usize,
    /// Memory for large uploads' direct writes, 4 MiB per upload (rounded down to whole
    /// uploads); an upload that finds it all in use when it passes 8 MiB goes through the page
    /// cache (under 4 MiB: all do).
    pub direct_write_bytes: usize,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: 64 * 1024 * 1024,
            lookup_cache_entries: 8192,
            small_blob_cache_bytes: 32 << 20,
            direct_write_bytes: 64 << 20,
        }
    }
}

/// The store: one per data directory and process.
pub struct SledStore {
    db: sled::Db,
    /// Entries, keyed by parent directory id and name.
    ns: sled::Tree,
    users: sled::Tree,
    /// Store-wide values: nonce, creation time, secrets.
    meta: sled::Tree,
    blobs: BlobDir,
    /// Random per store, part of every version tag, so tags never repeat across stores.
    nonce: u32,
    created_ns: u64,
    /// Running totals, computed at open and kept up to date after each commit (a counter in
    /// sled would make every upload conflict with every other).
    usage: Mutex<Usage>,
    /// Recent path lookups, valid until the next commit.
    lookups: Lookups,
    events: tokio::sync::broadcast::Sender<AccountEvent>,
    data_dir: PathBuf,
    /// Held for the store's lifetime: a second process fails on it with a clear message.
    _lock: std::fs::File,
}

/// What opening found and cleaned up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub orphan_blobs_removed: usize,
    pub temp_files_removed: usize,
}

impl SledStore {
    /// Opens (creating if needed) the store in `data_dir`, removing what a crash left behind.
    /// Blocking: call it before the runtime serves anyone, or from `spawn_blocking`.
    pub fn open(data_dir: &Path, options: &SledOptions) -> StoreResult<(SledStore, OpenReport)> {
        std::fs::create_dir_all(data_dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("LOCK"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse(data_dir.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let db = open_sled(&data_dir.join("db"), options)?;
        let ns = db.open_tree("ns")?;
        let users = db.open_tree("users")?;
        let meta = db.open_tree("meta")?;
        let nonce = match meta.get("nonce")? {
            Some(v) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            _ => {
                let n: u32 = rand::random();
                meta.insert("nonce", &n.to_be_bytes())?;
                meta.insert("created", &now_ns().to_be_bytes())?;
                db.flush()?;
                n
            }
        };
        let created_ns = meta
            .get("created")?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let blobs = BlobDir::open(
            data_dir,
            options.small_blob_cache_bytes,
            options.direct_write_bytes,
        )?;
        let mut referenced = HashSet::new();
        let mut usage = Usage::default();
        for item in ns.iter() {
            let (_, v) = item?;
            let n = Node::decode(&v)?;
            if n.dir {
                usage.dirs += 1;
            } else {
                usage.files += 1;
                usage.bytes += n.size;
                referenced.insert(n.id);
            }
        }
        let report = OpenReport {
            temp_files_removed: blobs.clear_tmp()?,
            orphan_blobs_removed: blobs.sweep(&referenced)?,
        };
        if report != OpenReport::default() {
            tracing::info!(?report, "removed what an interrupted run left behind");
        }
        let (events, _) = tokio::sync::broadcast::channel(256);
        Ok((
            SledStore {
                db,
                ns,
                users,
                meta,
                blobs,
                nonce,
                created_ns,
                usage: Mutex::new(usage),
                lookups: Lookups::new(options.lookup_cache_entries),
                events,
                data_dir: data_dir.to_owned(),
                _lock: lock,
            },
            report,
        ))
    }

    /// The data directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn new_id(&self) -> StoreResult<u64> {
        // sled's ids start at 0, which is the root's.
        Ok(self.db.generate_id()? + 1)
    }

    fn root_entry(&self) -> Entry {
        Entry {
            name: String::new(),
            kind: Kind::Dir,
            size: 0,
            modified: std::time::UNIX_EPOCH + Duration::from_nanos(self.created_ns),
            tag: node::tag(self.nonce, ROOT_ID),
            digest: None,
        }
    }

    async fn durable(&self) -> StoreResult<()> {
        // Not `flush_async`: in sled 0.34.7 seven or more concurrent `flush_async` calls can
        // take all of sled's I/O threads and deadlock (sled issue 1308; reproduced by
        // `cargo run -p filegate-bench --bin sled_flush -- --flush async`). A blocking flush on
        // tokio's blocking pool does not.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        Ok(())
    }

    /// What `path` (not the root) names now, if anything.
    fn lookup(&self, path: &VPath) -> StoreResult<Option<Hit>> {
        if let Some(hit) = self.lookups.get(path) {
            return Ok(Some(hit));
        }
        let generation = self.lookups.generation();
        let r = resolve(&self.ns, path)??;
        let Some(node) = r.node else {
            return Ok(None);
        };
        let hit = Hit {
            entry: node.entry(&r.name, self.nonce),
            node,
        };
        self.lookups.insert(generation, path, &hit);
        Ok(Some(hit))
    }

    /// Runs one namespace transaction; whatever it did, cached lookups are stale afterwards.
    fn transact<T>(
        &self,
        f: impl Fn(&TransactionalTree) -> ConflictableTransactionResult<T, StoreError>,
    ) -> StoreResult<T> {
        let r = tx_result(self.ns.transaction(f));
        self.lookups.invalidate();
        r
    }

    fn adjust_usage(&self, f: impl FnOnce(&mut Usage)) {
        // Never held across an await.
        if let Ok(mut u) = self.usage.lock() {
            f(&mut u);
        }
    }

    /// The id of directory `path`.
    fn dir_id(&self, path: &VPath) -> StoreResult<u64> {
        if path.is_root() {
            return Ok(ROOT_ID);
        }
        let r = resolve(&self.ns, path)??;
        match r.node {
            Some(n) if n.dir => Ok(n.id),
            Some(_) => Err(StoreError::NotADirectory),
            None => Err(StoreError::NotFound),
        }
    }
}

fn open_sled(path: &Path, options: &SledOptions) -> StoreResult<sled::Db> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity)
        .flush_every_ms(Some(1000));
    // We hold the store's own lock, so a lock error from sled can only be its background thread
    // still releasing the lock of a store this process just closed: wait for it, briefly.
    let mut attempts = 0;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::Other
                    && e.to_string().contains("could not acquire lock")
                    && attempts < 100 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                return Err(StoreError::InUse(path.display().to_string()))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Read access shared by sled trees and transactional trees, so one path walk serves both.
trait Get {
    type Error;
    fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, Self::Error>;
}

impl Get for sled::Tree {
    type Error = sled::Error;
    fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, sled::Error> {
        self.get(key)
    }
}

impl Get for TransactionalTree {
    type Error = UnabortableTransactionError;
    fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, UnabortableTransactionError> {
        self.get(key)
    }
}

/// A non-root path, walked down to its last segment.
struct Resolved {
    /// Key and record of the parent directory; `None` if the parent is the root.
    parent: Option<(Vec<u8>, Node)>,
    key: Vec<u8>,
    name: String,
    node: Option<Node>,
}

/// Walks `path` (not the root). The outer error is the database's; the inner one says the
/// path cannot exist (a missing or non-directory parent).
fn resolve<G: Get>(g: &G, path: &VPath) -> Result<StoreResult<Resolved>, G::Error> {
    let segments: Vec<&str> = path.segments().collect();
    let Some((last, dirs)) = segments.split_last() else {
        return Ok(Err(StoreError::NotPermitted));
    };
    let mut parent: Option<(Vec<u8>, Node)> = None;
    let mut parent_id = ROOT_ID;
    for seg in dirs {
        let k = key(parent_id, seg);
        let Some(raw) = g.get_raw(&k)? else {
            return Ok(Err(StoreError::NotFound));
        };
        let n = match Node::decode(&raw) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if !n.dir {
            return Ok(Err(StoreError::NotADirectory));
        }
        parent_id = n.id;
        parent = Some((k, n));
    }
    let k = key(parent_id, last);
    let node = match g.get_raw(&k)? {
        Some(raw) => match Node::decode(&raw) {
            Ok(n) => Some(n),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    Ok(Ok(Resolved {
        parent,
        key: k,
        name: (*last).to_owned(),
        node,
    }))
}

/// Turns a store error into a transaction abort.
fn ab<T>(r: StoreResult<T>) -> ConflictableTransactionResult<T, StoreError> {
    r.map_err(ConflictableTransactionError::Abort)
}

fn tx_result<T>(r: Result<T, TransactionError<StoreError>>) -> StoreResult<T> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

/// Adds `delta` to a parent directory's child count (the root keeps none).
fn bump_children(
    tx: &TransactionalTree,
    parent: &Option<(Vec<u8>, Node)>,
    delta: i64,
) -> ConflictableTransactionResult<(), StoreError> {
    if let Some((k, n)) = parent {
        let mut n = n.clone();
        n.children = n.children.saturating_add_signed(delta);
        tx.insert(k.as_slice(), ab(n.encode())?)?;
    }
    Ok(())
}

fn check_precondition(node: &Option<Node>, pre: &Precondition, nonce: u32) -> StoreResult<()> {
    let ok = match (pre, node) {
        (Precondition::None, _) => true,
        (Precondition::MustNotExist, n) => n.is_none(),
        (Precondition::MustExist, n) => n.is_some(),
        (Precondition::MustMatch(tag), Some(n)) => !n.dir && node::tag(nonce, n.id) == *tag,
        (Precondition::MustMatch(_), None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::PreconditionFailed)
    }
}

#[async_trait]
impl Storage for SledStore {
    async fn stat(&self, path: &VPath) -> StoreResult<Entry> {
        if path.is_root() {
            return Ok(self.root_entry());
        }
        self.lookup(path)?
            .map(|h| h.entry)
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, path: &VPath) -> StoreResult<Vec<Entry>> {
        let id = self.dir_id(path)?;
        let mut out = Vec::new();
        for item in self.ns.scan_prefix(id.to_be_bytes()) {
            let (k, v) = item?;
            out.push(Node::decode(&v)?.entry(key_name(&k)?, self.nonce));
        }
        Ok(out)
    }

    async fn read(&self, path: &VPath, offset: u64, len: Option<u64>) -> StoreResult<ReadHandle> {
        if path.is_root() {
            return Err(StoreError::IsADirectory);
        }
        // A concurrent overwrite may unlink the blob between the lookup and the open; the next
        // lookup then finds the newer version.
        for _ in 0..8 {
            let Hit { node: n, entry } = self.lookup(path)?.ok_or(StoreError::NotFound)?;
            if n.dir {
                return Err(StoreError::IsADirectory);
            }
            if offset > n.size {
                return Err(StoreError::OffsetPastEnd {
                    offset,
                    size: n.size,
                });
            }
            let avail = n.size - offset;
            let want = len.map_or(avail, |l| l.min(avail));
            match self.blobs.open_read(n.id, n.size, offset, want).await {
                Ok((file, body)) => {
                    return Ok(ReadHandle {
                        entry,
                        offset,
                        len: want,
                        body,
                        local_file: file,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.lookups.forget(path);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn write(
        &self,
        path: &VPath,
        mode: WriteMode,
        precondition: Precondition,
        body: BodyStream,
    ) -> StoreResult<WriteOutcome> {
        if path.is_root() {
            return Err(StoreError::IsADirectory);
        }
        // Check what can be checked before taking the body, so a doomed upload fails fast.
        let r = resolve(&self.ns, path)??;
        check_precondition(&r.node, &precondition, self.nonce)?;
        if r.node.as_ref().is_some_and(|n| n.dir) {
            return Err(StoreError::IsADirectory);
        }
        let base = match (mode, &r.node) {
            (WriteMode::Replace, _) | (WriteMode::Append, None) | (WriteMode::At(0), None) => None,
            (WriteMode::Append, Some(n)) => Some(Base {
                blob: n.id,
                keep: n.size,
            }),
            (WriteMode::At(off), Some(n)) if off <= n.size => Some(Base {
                blob: n.id,
                keep: off,
            }),
            (WriteMode::At(offset), n) => {
                return Err(StoreError::OffsetPastEnd {
                    offset,
                    size: n.as_ref().map_or(0, |n| n.size),
                })
            }
        };
        let builds_on = mode != WriteMode::Replace;
        let base_version = base.as_ref().map(|b| b.blob);
        let id = self.new_id()?;
        let written = self.blobs.write(id, base, body).await?;
        let node = Node {
            dir: false,
            id,
            size: written.size,
            mtime_ns: now_ns(),
            children: 0,
            digest: Some(written.digest),
        };
        let encoded = node.encode()?;
        let committed = self.transact(|tx| {
            let r = ab(resolve(tx, path)?)?;
            ab(check_precondition(&r.node, &precondition, self.nonce))?;
            if r.node.as_ref().is_some_and(|n| n.dir) {
                return abort(StoreError::IsADirectory);
            }
            // Append and write-from-offset were built on one version: it must still be current.
            if builds_on && r.node.as_ref().map(|n| n.id) != base_version {
                return abort(StoreError::Conflict);
            }
            tx.insert(r.key.as_slice(), encoded.as_slice())?;
            if r.node.is_none() {
                bump_children(tx, &r.parent, 1)?;
            }
            Ok((r.name, r.node))
        });
        let (name, old) = match committed {
            Ok(v) => v,
            Err(e) => {
                self.blobs.remove(id);
                return Err(e);
            }
        };
        self.durable().await?;
        if let Some(old) = &old {
            self.blobs.remove(old.id);
        }
        self.adjust_usage(|u| {
            u.bytes = u.bytes + node.size - old.as_ref().map_or(0, |o| o.size);
            if old.is_none() {
                u.files += 1;
            }
        });
        Ok(WriteOutcome {
            entry: node.entry(&name, self.nonce),
            created: old.is_none(),
        })
    }

    async fn mkdir(&self, path: &VPath) -> StoreResult<Entry> {
        if path.is_root() {
            return Err(StoreError::AlreadyExists);
        }
        let node = Node {
            dir: true,
            id: self.new_id()?,
            size: 0,
            mtime_ns: now_ns(),
            children: 0,
            digest: None,
        };
        let encoded = node.encode()?;
        let name = self.transact(|tx| {
            let r = ab(resolve(tx, path)?)?;
            if r.node.is_some() {
                return abort(StoreError::AlreadyExists);
            }
            tx.insert(r.key.as_slice(), encoded.as_slice())?;
            bump_children(tx, &r.parent, 1)?;
            Ok(r.name)
        })?;
        self.durable().await?;
        self.adjust_usage(|u| u.dirs += 1);
        Ok(node.entry(&name, self.nonce))
    }

    async fn rmdir(&self, path: &VPath) -> StoreResult<()> {
        if path.is_root() {
            return Err(StoreError::NotPermitted);
        }
        self.transact(|tx| {
            let r = ab(resolve(tx, path)?)?;
            match &r.node {
                None => return abort(StoreError::NotFound),
                Some(n) if !n.dir => return abort(StoreError::NotADirectory),
                Some(n) if n.children > 0 => return abort(StoreError::NotEmpty),
                Some(_) => {}
            }
            tx.remove(r.key.as_slice())?;
            bump_children(tx, &r.parent, -1)?;
            Ok(())
        })?;
        self.durable().await?;
        self.adjust_usage(|u| u.dirs = u.dirs.saturating_sub(1));
        Ok(())
    }

    async fn delete(&self, path: &VPath) -> StoreResult<()> {
        if path.is_root() {
            return Err(StoreError::IsADirectory);
        }
        let old = self.transact(|tx| {
            let r = ab(resolve(tx, path)?)?;
            let n = match r.node {
                None => return abort(StoreError::NotFound),
                Some(n) if n.dir => return abort(StoreError::IsADirectory),
                Some(n) => n,
            };
            tx.remove(r.key.as_slice())?;
            bump_children(tx, &r.parent, -1)?;
            Ok(n)
        })?;
        self.durable().await?;
        self.blobs.remove(old.id);
        self.adjust_usage(|u| {
            u.files = u.files.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(old.size);
        });
        Ok(())
    }

    async fn rename(&self, from: &VPath, to: &VPath, overwrite: bool) -> StoreResult<Entry> {
        if from.is_root() || to.is_root() {
            return Err(StoreError::NotPermitted);
        }
        if to != from && to.starts_with(from) {
            return Err(StoreError::Conflict);
        }
        let (moved, replaced, name) = self.transact(|tx| {
            let rf = ab(resolve(tx, from)?)?;
            let Some(moving) = rf.node.clone() else {
                return abort(StoreError::NotFound);
            };
            if from == to {
                return Ok((moving, None, rf.name));
            }
            let rt = ab(resolve(tx, to)?)?;
            if let Some(existing) = &rt.node {
                if !overwrite {
                    return abort(StoreError::AlreadyExists);
                }
                match (moving.dir, existing.dir) {
                    (false, true) => return abort(StoreError::IsADirectory),
                    (true, false) => return abort(StoreError::NotADirectory),
                    (true, true) if existing.children > 0 => return abort(StoreError::NotEmpty),
                    _ => {}
                }
            }
            tx.remove(rf.key.as_slice())?;
            tx.insert(rt.key.as_slice(), ab(moving.encode())?)?;
            let same_parent = rf.parent.as_ref().map(|p| &p.0) == rt.parent.as_ref().map(|p| &p.0);
            let added = i64::from(rt.node.is_none());
            if same_parent {
                bump_children(tx, &rf.parent, added - 1)?;
            } else {
                bump_children(tx, &rf.parent, -1)?;
                bump_children(tx, &rt.parent, added)?;
            }
            Ok((moving, rt.node, rt.name))
        })?;
        self.durable().await?;
        if let Some(old) = &replaced {
            if old.dir {
                self.adjust_usage(|u| u.dirs = u.dirs.saturating_sub(1));
            } else {
                self.blobs.remove(old.id);
                self.adjust_usage(|u| {
                    u.files = u.files.saturating_sub(1);
                    u.bytes = u.bytes.saturating_sub(old.size);
                });
            }
        }
        Ok(moved.entry(&name, self.nonce))
    }

    async fn usage(&self) -> StoreResult<Usage> {
        self.usage
            .lock()
            .map(|u| *u)
            .map_err(|_| StoreError::Db("usage counters poisoned".into()))
    }

    async fn flush(&self) -> StoreResult<()> {
        self.durable().await
    }
}

#[cfg(test)]
mod tests;
