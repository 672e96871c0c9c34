//! Logging in: turns a name and password (or anonymous access) into a [`Principal`], the same
//! way for both front ends.

use std::sync::Arc;

use crate::accounts::{Accounts, Permissions, User};
use crate::error::StoreError;
use crate::password;
use crate::path::VPath;

/// Who is acting, with what root and rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    /// Store path of the user's root; every user path is resolved under it.
    pub home: VPath,
    pub permissions: Permissions,
    pub anonymous: bool,
    /// The user's token generation when this principal was made.
    pub token_generation: u64,
}

impl Principal {
    /// The principal for a stored user, or `None` if the user is disabled or their home is
    /// unusable.
    pub fn for_user(user: &User) -> Option<Principal> {
        if user.disabled {
            return None;
        }
        Some(Principal {
            name: user.name.clone(),
            home: user.home_path().ok()?,
            permissions: user.permissions,
            anonymous: false,
            token_generation: user.token_generation,
        })
    }

    /// Maps a path the user typed (relative to `cwd`, both in the user's view) to a store path.
    pub fn store_path(&self, cwd: &VPath, input: &str) -> Result<VPath, crate::path::PathError> {
        let user_path = cwd.resolve(input)?;
        self.home.join_under(&user_path)
    }

    pub fn can(&self, p: Permissions) -> bool {
        self.permissions.contains(p)
    }
}

/// Anonymous read-only access, when the operator turns it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousAccess {
    /// Store path anonymous users see as "/".
    pub root: VPath,
}

/// Why a login failed. Deliberately coarse: a client learns nothing about which part was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("login incorrect")]
    Denied,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks credentials against the accounts.
#[derive(Clone)]
pub struct Authenticator {
    accounts: Arc<dyn Accounts>,
    anonymous: Option<AnonymousAccess>,
}

/// Names that mean "anonymous" (RFC 1635).
pub const ANONYMOUS_NAMES: [&str; 2] = ["anonymous", "ftp"];

impl Authenticator {
    pub fn new(accounts: Arc<dyn Accounts>, anonymous: Option<AnonymousAccess>) -> Self {
        Authenticator {
            accounts,
            anonymous,
        }
    }

    pub fn accounts(&self) -> &Arc<dyn Accounts> {
        &self.accounts
    }

    /// The anonymous principal, if anonymous access is on.
    pub fn anonymous(&self) -> Option<Principal> {
        self.anonymous.as_ref().map(|a| Principal {
            name: "anonymous".to_owned(),
            home: a.root.clone(),
            permissions: Permissions::LIST | Permissions::READ,
            anonymous: true,
            token_generation: 0,
        })
    }

    /// True if `name` is an anonymous login name and anonymous access is on.
    pub fn is_anonymous_name(&self, name: &str) -> bool {
        self.anonymous.is_some() && ANONYMOUS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Verifies `name` and `password`. Anonymous names accept any password when anonymous access
    /// is on. A missing user costs the same hash time as a wrong password.
    pub async fn login(&self, name: &str, password: &str) -> Result<Principal, AuthError> {
        if self.is_anonymous_name(name) {
            return self.anonymous().ok_or(AuthError::Denied);
        }
        let user = self.accounts.user(name).await?;
        let phc = match &user {
            Some(u) => u.password_hash.clone(),
            None => password::dummy_hash().to_owned(),
        };
        let ok = password::verify_async(password.to_owned(), phc).await;
        match user {
            Some(u) if ok => Principal::for_user(&u).ok_or(AuthError::Denied),
            _ => Err(AuthError::Denied),
        }
    }
}
