//! Who is asking, with no server-side session: HTTP Basic checked against the user records
//! (behind a bounded cache of already-verified credentials), Bearer tokens verified with the
//! store's key, tokens in `?token=` for share links, and anonymous read access when configured.
//!
//! The cache only saves CPU: it maps a keyed hash of (name, password) to the principal that
//! login produced, so a repeated Basic request costs no argon2. Losing it (a restart) costs one
//! verification per client. Entries expire, and an account change drops that user's entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use filegate_core::token::{self, TokenKey};
use filegate_core::{Accounts, AuthError, Authenticator, Principal, VPath};
use http::header::{HeaderMap, AUTHORIZATION};
use tokio::sync::Semaphore;

use crate::error::HttpError;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Basic,
    Bearer,
    /// A token in the `token` query parameter (a share link).
    QueryToken,
    Anonymous,
}

/// The acting user and the limits of the credential used.
#[derive(Debug, Clone)]
pub struct Identity {
    pub principal: Arc<Principal>,
    /// From a read-only token: only GET, HEAD and listings.
    pub read_only: bool,
    /// From a scoped token: only this user path and below.
    pub prefix: Option<VPath>,
    pub via: Via,
    /// The query token, so links in an HTML listing can carry it along.
    pub query_token: Option<String>,
}

impl Identity {
    /// True if `path` (user view) is within the credential's scope.
    pub fn allows_path(&self, path: &VPath) -> bool {
        self.prefix.as_ref().is_none_or(|p| path.starts_with(p))
    }
}

/// The credential checker shared by all connections.
pub struct Authn {
    auth: Authenticator,
    accounts: Arc<dyn Accounts>,
    key: TokenKey,
    cache: CredentialCache,
    /// Bounds the Basic checks this gateway has in flight. Core's hashing pool already bounds
    /// the CPU; this keeps a burst of requests with the same credentials from queueing one
    /// argon2 check each: whoever waits here finds the first one's result in the cache.
    logins: Semaphore,
}

impl Authn {
    pub fn new(
        auth: Authenticator,
        accounts: Arc<dyn Accounts>,
        key: TokenKey,
        cache_entries: usize,
        cache_ttl: Duration,
        max_concurrent_logins: usize,
    ) -> Self {
        Authn {
            auth,
            accounts,
            key,
            cache: CredentialCache::new(cache_entries, cache_ttl),
            logins: Semaphore::new(max_concurrent_logins.max(1)),
        }
    }

    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    pub fn accounts(&self) -> &Arc<dyn Accounts> {
        &self.accounts
    }

    pub fn cache(&self) -> &CredentialCache {
        &self.cache
    }

    /// Identifies the sender of a request: the Authorization header first, then a query
    /// token, then anonymous access if it is on; otherwise 401.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        query_token: Option<String>,
    ) -> Result<Identity, HttpError> {
        match credentials(headers)? {
            Some(Credentials::Basic { user, pass }) => Ok(Identity {
                principal: self.basic(&user, &pass).await?,
                read_only: false,
                prefix: None,
                via: Via::Basic,
                query_token: None,
            }),
            Some(Credentials::Bearer(t)) => self.bearer(&t, Via::Bearer, None).await,
            None => match query_token {
                Some(t) => self.bearer(&t, Via::QueryToken, Some(t.clone())).await,
                None => match self.auth.anonymous() {
                    Some(p) => Ok(Identity {
                        principal: Arc::new(p),
                        read_only: true,
                        prefix: None,
                        via: Via::Anonymous,
                        query_token: None,
                    }),
                    None => Err(HttpError::unauthorized("authentication required", false)),
                },
            },
        }
    }

    /// Basic credentials only (minting a token needs the password).
    pub async fn basic_only(&self, headers: &HeaderMap) -> Result<Arc<Principal>, HttpError> {
        match credentials(headers)? {
            Some(Credentials::Basic { user, pass }) => self.basic(&user, &pass).await,
            _ => Err(HttpError::unauthorized("Basic credentials required", false)),
        }
    }

    async fn basic(&self, user: &str, pass: &str) -> Result<Arc<Principal>, HttpError> {
        let digest = self.cache.digest(user, pass);
        if let Some(p) = self.cache.get(&digest) {
            return Ok(p);
        }
        let _permit = self
            .logins
            .acquire()
            .await
            .map_err(|_| HttpError::internal("login limiter closed"))?;
        // Another request may have verified the same credentials while this one waited.
        if let Some(p) = self.cache.get(&digest) {
            return Ok(p);
        }
        match self.auth.login(user, pass).await {
            Ok(p) => {
                let p = Arc::new(p);
                self.cache.insert(digest, Arc::clone(&p));
                Ok(p)
            }
            Err(AuthError::Denied) => Err(HttpError::unauthorized("login incorrect", false)),
            Err(AuthError::Store(e)) => {
                tracing::error!(error = %e, "account lookup failed");
                Err(HttpError::internal("account lookup failed"))
            }
        }
    }

    async fn bearer(
        &self,
        t: &str,
        via: Via,
        query_token: Option<String>,
    ) -> Result<Identity, HttpError> {
        let refused = |e: token::TokenError| HttpError::unauthorized(e.to_string(), true);
        let claims = token::verify(&self.key, t, SystemTime::now()).map_err(refused)?;
        let user = self
            .accounts
            .user(&claims.user)
            .await
            .map_err(|e| HttpError::from_store(e, crate::error::Op::Read))?
            .ok_or_else(|| refused(token::TokenError::UnknownUser))?;
        claims
            .check_generation(user.token_generation)
            .map_err(refused)?;
        let principal =
            Principal::for_user(&user).ok_or_else(|| refused(token::TokenError::UnknownUser))?;
        Ok(Identity {
            principal: Arc::new(principal),
            read_only: claims.read_only,
            prefix: claims.prefix,
            via,
            query_token,
        })
    }
}

/// Credentials from the Authorization header.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    Basic { user: String, pass: String },
    Bearer(String),
}

/// Parses the Authorization header: `None` if absent; 400 if repeated; 401 if unusable.
fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, HttpError> {
    let mut all = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(HttpError::bad_request("more than one Authorization header"));
    }
    let bad = || HttpError::unauthorized("unusable Authorization header", false);
    let s = value.to_str().map_err(|_| bad())?.trim();
    let (scheme, rest) = s.split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = STANDARD.decode(rest).map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        Ok(Some(Credentials::Basic {
            user: user.to_owned(),
            pass: pass.to_owned(),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Some(Credentials::Bearer(rest.to_owned())))
    } else {
        Err(bad())
    }
}

/// Verified credentials: keyed hash of (name, password) to the principal login made.
pub struct CredentialCache {
    /// A random key per process, so the map's keys say nothing about the passwords.
    key: [u8; 32],
    /// Why a std mutex: the lock is held only for a map operation, never across an await.
    map: Mutex<HashMap<[u8; 32], Cached>>,
    capacity: usize,
    ttl: Duration,
}

struct Cached {
    principal: Arc<Principal>,
    at: Instant,
}

impl CredentialCache {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        CredentialCache {
            key: rand::random(),
            map: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    fn digest(&self, user: &str, pass: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(pass.as_bytes());
        *h.finalize().as_bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        // A panic while holding the lock cannot leave the map inconsistent; keep using it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        let map = self.lock();
        let c = map.get(digest)?;
        (c.at.elapsed() < self.ttl).then(|| Arc::clone(&c.principal))
    }

    fn insert(&self, digest: [u8; 32], principal: Arc<Principal>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, c| c.at.elapsed() < ttl);
        }
        if map.len() >= self.capacity {
            // Still full of live entries: drop a quarter, whichever they are.
            let drop: Vec<[u8; 32]> = map.keys().take(self.capacity / 4 + 1).copied().collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert(
            digest,
            Cached {
                principal,
                at: Instant::now(),
            },
        );
    }

    /// Forgets every entry of `user` (after a change to the account).
    pub fn invalidate_user(&self, user: &str) {
        self.lock().retain(|_, c| c.principal.name != user);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filegate_core::Permissions;
    use http::{HeaderValue, StatusCode};

    fn principal(name: &str) -> Arc<Principal> {
        Arc::new(Principal {
            name: name.into(),
            home: VPath::root(),
            permissions: Permissions::all(),
            anonymous: false,
            token_generation: 0,
        })
    }

    #[test]
    fn parses_authorization() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            credentials(&m)
        };
        assert_eq!(
            h("Basic YWRtaW46cDpx").unwrap(),
            Some(Credentials::Basic {
                user: "admin".into(),
                pass: "p:q".into()
            })
        );
        assert_eq!(
            h("bearer abc").unwrap(),
            Some(Credentials::Bearer("abc".into()))
        );
        for bad in [
            "Basic",
            "Basic !!!",
            "Basic YWRtaW4=",
            "Digest x",
            "Basic //79",
        ] {
            assert_eq!(
                h(bad).unwrap_err().status,
                StatusCode::UNAUTHORIZED,
                "{bad:?}"
            );
        }
        let mut m = HeaderMap::new();
        m.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        m.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(credentials(&m).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(credentials(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn cache_is_bounded_keyed_and_invalidated() {
        let c = CredentialCache::new(8, Duration::from_secs(60));
        let d = c.digest("ann", "pw");
        assert_ne!(d, c.digest("ann", "pw2"));
        assert_ne!(
            c.digest("an", "npw"),
            c.digest("ann", "pw"),
            "length-prefixed"
        );
        assert_ne!(
            d,
            CredentialCache::new(8, Duration::from_secs(60)).digest("ann", "pw")
        );
        assert!(c.get(&d).is_none());
        c.insert(d, principal("ann"));
        assert_eq!(c.get(&d).unwrap().name, "ann");
        for i in 0..100 {
            c.insert(c.digest(&format!("u{i}"), "x"), principal(&format!("u{i}")));
            assert!(c.len() <= 8);
        }
        c.insert(d, principal("ann"));
        c.invalidate_user("ann");
        assert!(c.get(&d).is_none());
        let short = CredentialCache::new(8, Duration::ZERO);
        short.insert(d, principal("ann"));
        assert!(short.get(&d).is_none(), "expired");
    }
}
