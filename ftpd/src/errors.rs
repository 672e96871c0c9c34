//! The one place where the store's protocol-neutral errors become FTP replies.

use filegate_core::{AuthError, PathError, StoreError};

use crate::reply::{Code, Reply};

/// The reply for a failed store operation.
pub fn store_error_reply(e: &StoreError) -> Reply {
    let (code, text): (Code, &str) = match e {
        StoreError::NotFound => (Code::FileNotAvailable, "No such file or directory"),
        StoreError::AlreadyExists => (Code::FileNotAvailable, "File exists"),
        StoreError::NotADirectory => (Code::FileNotAvailable, "Not a directory"),
        StoreError::IsADirectory => (Code::FileNotAvailable, "Is a directory"),
        StoreError::NotEmpty => (Code::FileNotAvailable, "Directory not empty"),
        StoreError::PreconditionFailed => {
            (Code::FileUnavailable, "File changed or exists; try again")
        }
        StoreError::Conflict => (Code::FileUnavailable, "File changed meanwhile; try again"),
        StoreError::OffsetPastEnd { .. } => (
            Code::InvalidRestParameter,
            "Restart offset is past the end of the file",
        ),
        StoreError::InvalidPath(_) => (Code::FileNameNotAllowed, "File name not allowed"),
        StoreError::NotPermitted => (Code::FileNotAvailable, "Operation not permitted"),
        StoreError::StorageFull => (Code::InsufficientStorage, "Insufficient storage space"),
        StoreError::Interrupted(_) => (
            Code::TransferAborted,
            "Transfer aborted; the previous version is kept",
        ),
        StoreError::InUse(_) | StoreError::Corrupt(_) | StoreError::Io(_) | StoreError::Db(_) => {
            (Code::LocalError, "Local error in processing")
        }
    };
    Reply::new(code, text)
}

/// The reply for a path the store would never accept.
pub fn path_error_reply(e: &PathError) -> Reply {
    Reply::new(
        Code::FileNameNotAllowed,
        format!("File name not allowed: {e}"),
    )
}

/// The reply for a failed login (never says which part was wrong).
pub fn auth_error_reply(e: &AuthError) -> Reply {
    match e {
        AuthError::Denied => Reply::new(Code::NotLoggedIn, "Login incorrect"),
        AuthError::Store(_) => Reply::new(
            Code::ServiceNotAvailable,
            "Cannot check logins now; try later",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_failure_code() {
        let io = || std::io::Error::other("x");
        let all = [
            (StoreError::NotFound, 550),
            (StoreError::AlreadyExists, 550),
            (StoreError::NotADirectory, 550),
            (StoreError::IsADirectory, 550),
            (StoreError::NotEmpty, 550),
            (StoreError::PreconditionFailed, 450),
            (StoreError::Conflict, 450),
            (StoreError::OffsetPastEnd { offset: 2, size: 1 }, 554),
            (StoreError::InvalidPath(PathError::Nul), 553),
            (StoreError::NotPermitted, 550),
            (StoreError::StorageFull, 452),
            (StoreError::Interrupted(io()), 426),
            (StoreError::Io(io()), 451),
            (StoreError::Db("x".into()), 451),
        ];
        for (e, code) in all {
            assert_eq!(store_error_reply(&e).code.as_u16(), code, "{e}");
        }
    }
}
