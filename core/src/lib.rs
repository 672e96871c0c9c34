//! filegate's shared store: what the FTP and HTTP front ends both stand on.
//!
//! # Layout
//! - [`path`]: virtual paths, normalized and confined to a root.
//! - [`storage`]: the storage trait and its types; the front ends use nothing else for files.
//! - [`accounts`]: users, permissions and the account trait.
//! - [`password`]: argon2id hashing and verification.
//! - [`auth`]: logging in, the same way for both front ends.
//! - [`token`]: signed bearer tokens, verified without a session store.
//! - [`sled_store`]: the embedded implementation (sled metadata + blob files).
//! - [`error`]: the protocol-neutral error type.
//! - [`metrics`]: gauges both front ends update.
//! - [`services`]: the bundle a front end is handed.
//! - [`workers`]: the single-thread runtimes both front ends run their connections on.

pub mod accounts;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod password;
pub mod path;
pub mod services;
pub mod sled_store;
pub mod storage;
pub mod token;
pub mod workers;

pub use accounts::{AccountEvent, Accounts, Permissions, User};
pub use auth::{AnonymousAccess, AuthError, Authenticator, Principal};
pub use error::{StoreError, StoreResult};
pub use path::{PathError, VPath};
pub use services::Services;
pub use sled_store::{OpenReport, SledOptions, SledStore};
pub use storage::{
    BodyStream, ByteStream, Entry, Kind, Precondition, ReadHandle, Storage, Usage, WriteMode,
    WriteOutcome,
};

/// A body stream from one in-memory buffer (tests, small uploads).
pub fn body_from_bytes(data: impl Into<bytes::Bytes>) -> BodyStream {
    let data: bytes::Bytes = data.into();
    Box::pin(futures::stream::once(async move { Ok(data) }))
}

/// Collects a download into memory (tests, small files).
pub async fn read_to_vec(mut body: ByteStream) -> std::io::Result<Vec<u8>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}
