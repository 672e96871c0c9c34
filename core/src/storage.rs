//! The storage trait: the only way the front ends touch files and directories.
//!
//! It is async and streaming and names no backend type, so the embedded sled store and an
//! object store can both implement it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::error::StoreResult;
use crate::path::VPath;

/// A file body coming out of the store.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// A file body going into the store. An `Err` item aborts the upload; the previous version stays.
pub type BodyStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// File or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
}

/// Metadata of one file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The last path segment ("" for the root).
    pub name: String,
    pub kind: Kind,
    /// Bytes for a file, 0 for a directory.
    pub size: u64,
    pub modified: SystemTime,
    /// A strong version tag: different for every version ever written to this store, so it can
    /// be used as an HTTP ETag (without the quotes) and an MLST `unique` fact.
    pub tag: String,
    /// BLAKE3 digest of a file's content, computed while it was written.
    pub digest: Option<[u8; 32]>,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// The digest as lower-case hex, if this is a file.
    pub fn digest_hex(&self) -> Option<String> {
        self.digest.map(hex::encode)
    }
}

/// How an upload combines with what is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create the file or replace it whole.
    Replace,
    /// Add to the end of the current version (create the file if missing).
    Append,
    /// Keep the first `n` bytes of the current version and write the body from there (FTP REST
    /// then STOR). `n` must not be past the end.
    At(u64),
}

/// A condition checked atomically with the publish step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// Fail with `PreconditionFailed` if the path exists (HTTP `If-None-Match: *`, FTP STOU).
    MustNotExist,
    /// Fail with `PreconditionFailed` unless the path is a file whose tag is this one.
    MustMatch(String),
    /// Fail with `PreconditionFailed` unless the path exists.
    MustExist,
}

/// An open download: the version it reads and its bytes.
pub struct ReadHandle {
    /// The version being read; it stays readable to this handle even if it is replaced or
    /// deleted meanwhile.
    pub entry: Entry,
    /// First byte of the body within the file.
    pub offset: u64,
    /// Bytes the body will yield.
    pub len: u64,
    pub body: ByteStream,
    /// For backends that keep the version in a local file: that file, so a front end may
    /// `sendfile` it instead of copying through `body`. The same `offset` and `len` apply.
    pub local_file: Option<Arc<std::fs::File>>,
}

impl std::fmt::Debug for ReadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHandle")
            .field("entry", &self.entry)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The result of an upload.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The version now published.
    pub entry: Entry,
    /// True if the path did not exist before.
    pub created: bool,
}

/// Totals for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Files and directories. Every mutation is atomic and durable when it returns `Ok`.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Metadata of `path` (the root is a directory).
    async fn stat(&self, path: &VPath) -> StoreResult<Entry>;

    /// The entries of directory `path`, sorted by name.
    async fn list(&self, path: &VPath) -> StoreResult<Vec<Entry>>;

    /// Opens the current version of file `path` for reading from `offset`, at most `len` bytes
    /// (to the end if `None`). An offset equal to the size gives an empty body; past it,
    /// `OffsetPastEnd`.
    async fn read(&self, path: &VPath, offset: u64, len: Option<u64>) -> StoreResult<ReadHandle>;

    /// Writes file `path` from `body` and publishes it in one atomic step once the body has
    /// ended, checking `precondition` in that same step. The parent directory must exist.
    async fn write(
        &self,
        path: &VPath,
        mode: WriteMode,
        precondition: Precondition,
        body: BodyStream,
    ) -> StoreResult<WriteOutcome>;

    /// Creates directory `path`; its parent must exist.
    async fn mkdir(&self, path: &VPath) -> StoreResult<Entry>;

    /// Removes the empty directory `path`.
    async fn rmdir(&self, path: &VPath) -> StoreResult<()>;

    /// Removes file `path`.
    async fn delete(&self, path: &VPath) -> StoreResult<()>;

    /// Moves a file or a whole directory atomically. If `to` exists it is replaced when
    /// `overwrite` holds (a directory only by a directory, and only if empty), otherwise the
    /// call fails with `AlreadyExists`.
    async fn rename(&self, from: &VPath, to: &VPath, overwrite: bool) -> StoreResult<Entry>;

    /// Counts of files, directories and bytes in the store.
    async fn usage(&self) -> StoreResult<Usage>;

    /// Makes every completed change durable (used at shutdown).
    async fn flush(&self) -> StoreResult<()>;
}
