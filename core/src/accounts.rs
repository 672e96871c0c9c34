//! Users and the account trait: who may log in, where their root is, what they may do.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;
use crate::path::VPath;

bitflags::bitflags! {
    /// What a user may do.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct Permissions: u8 {
        const LIST = 1;
        const READ = 1 << 1;
        const WRITE = 1 << 2;
        const DELETE = 1 << 3;
        const MKDIR = 1 << 4;
        const RENAME = 1 << 5;
    }
}

impl Permissions {
    /// The names used on the command line, in order.
    pub const NAMES: [(&'static str, Permissions); 6] = [
        ("list", Permissions::LIST),
        ("read", Permissions::READ),
        ("write", Permissions::WRITE),
        ("delete", Permissions::DELETE),
        ("mkdir", Permissions::MKDIR),
        ("rename", Permissions::RENAME),
    ];

    /// Parses "list,read" or "all" or "none" (also "read-only" = list,read).
    pub fn parse_list(s: &str) -> Result<Self, String> {
        let mut out = Permissions::empty();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => out |= Permissions::all(),
                "none" => {}
                "read-only" | "ro" => out |= Permissions::LIST | Permissions::READ,
                w => match Self::NAMES.iter().find(|(n, _)| *n == w) {
                    Some((_, p)) => out |= *p,
                    None => {
                        return Err(format!(
                            "unknown permission {w:?}; known: all, none, read-only, list, read, write, delete, mkdir, rename"
                        ))
                    }
                },
            }
        }
        Ok(out)
    }

    /// "list,read,..." or "none".
    pub fn to_list(self) -> String {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(_, p)| self.contains(*p))
            .map(|(n, _)| *n)
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(",")
        }
    }
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// argon2id hash in PHC string form.
    pub password_hash: String,
    /// The user's root in the store; they cannot leave it.
    pub home: String,
    pub permissions: Permissions,
    pub disabled: bool,
    /// Bumped to revoke every bearer token issued before.
    pub token_generation: u64,
}

impl User {
    /// The home as a path (a stored home that no longer parses is treated as disabled by
    /// [`crate::auth::Authenticator`]).
    pub fn home_path(&self) -> Result<VPath, crate::path::PathError> {
        VPath::parse(&self.home)
    }
}

/// What changed about an account, for front ends that hold sessions (FTP closes a revoked
/// user's sessions at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// The user was changed (password, permissions, disabled flag, home) or deleted.
    Changed { name: String },
}

/// Where accounts and small secrets live.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    async fn user(&self, name: &str) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Adds a new user; `AlreadyExists` if the name is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// Replaces an existing user; `NotFound` if missing.
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    /// Removes a user; `NotFound` if missing.
    async fn delete_user(&self, name: &str) -> StoreResult<()>;
    /// Increments the user's token generation and returns the new one.
    async fn bump_token_generation(&self, name: &str) -> StoreResult<u64>;
    /// A random secret of `len` bytes stored under `name`, created on first use.
    async fn secret(&self, name: &str, len: usize) -> StoreResult<Vec<u8>>;
    /// Account changes made through this handle from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<AccountEvent>;
}

/// Checks a user name for the CLI and the store: 1-64 bytes of letters, digits, '.', '_', '-',
/// '@'.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_lists_round_trip() {
        assert_eq!(Permissions::parse_list("all").unwrap(), Permissions::all());
        assert_eq!(
            Permissions::parse_list("read-only").unwrap(),
            Permissions::LIST | Permissions::READ
        );
        let p = Permissions::parse_list("read, write,delete").unwrap();
        assert_eq!(p.to_list(), "read,write,delete");
        assert_eq!(Permissions::parse_list(&p.to_list()).unwrap(), p);
        assert_eq!(Permissions::empty().to_list(), "none");
        assert!(Permissions::parse_list("fly").is_err());
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("admin"));
        assert!(valid_user_name("a.b-c_d@e"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("a b"));
        assert!(!valid_user_name("a/b"));
        assert!(!valid_user_name(&"x".repeat(65)));
    }
}
