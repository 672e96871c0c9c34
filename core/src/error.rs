//! The store's errors: protocol-neutral, so each front end maps them to its own codes in one place.

use crate::path::PathError;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such file or directory")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    #[error("directory not empty")]
    NotEmpty,
    /// A condition the caller set (version match, create-only) does not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The file changed under an operation that was based on an earlier version (append, write
    /// from an offset) or a rename would move a directory into itself.
    #[error("conflicting change")]
    Conflict,
    /// A read or write offset past the end of the file.
    #[error("offset {offset} is past the end of the file ({size} bytes)")]
    OffsetPastEnd { offset: u64, size: u64 },
    #[error("invalid path: {0}")]
    InvalidPath(#[from] PathError),
    /// The operation is not allowed on this object (the root, for example).
    #[error("operation not permitted")]
    NotPermitted,
    /// The disk or a quota is full.
    #[error("no space left in the store")]
    StorageFull,
    /// The body stream of an upload failed (the client went away, a front-end limit tripped).
    #[error("upload interrupted: {0}")]
    Interrupted(std::io::Error),
    /// Another process holds the store.
    #[error("the store at {0} is in use by another process")]
    InUse(String),
    #[error("store corrupted: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    #[error("database error: {0}")]
    Db(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => StoreError::StorageFull,
            _ => StoreError::Io(e),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => StoreError::from(io),
            sled::Error::Corruption { .. } => StoreError::Corrupt(e.to_string()),
            other => StoreError::Db(other.to_string()),
        }
    }
}

impl From<postcard::Error> for StoreError {
    fn from(e: postcard::Error) -> Self {
        StoreError::Corrupt(format!("undecodable record: {e}"))
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
