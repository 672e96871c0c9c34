//! Bearer tokens: signed with HMAC-SHA256, so any gateway holding the key verifies one without a
//! session store.
//!
//! A token is `fgt1.<payload>.<mac>`, both parts base64url without padding. The payload is the
//! postcard encoding of [`Claims`] (user, expiry, scope, the user's token generation); the MAC
//! covers `fgt1.<payload>`. Revocation is the one piece of state: `filegate token revoke` bumps
//! the user's token generation in the store, and a token whose generation is not the user's
//! current one is refused ([`Claims::check_generation`]).
//!
//! The key is a random secret kept in the store ([`TokenKey::load`]), created on first use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::accounts::Accounts;
use crate::error::StoreError;
use crate::path::VPath;

/// Name of the store secret that keys the MAC.
pub const KEY_SECRET: &str = "token-key";
/// Length of that secret in bytes.
pub const KEY_LEN: usize = 32;
/// The longest lifetime [`parse_ttl`] accepts.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 4096;

const PREFIX: &str = "fgt1.";

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("no such user (or the user is disabled)")]
    UnknownUser,
    #[error("invalid prefix: {0}")]
    InvalidPrefix(String),
    #[error(
        "invalid lifetime {0:?}; use seconds or a number with s, m, h or d (at most 366 days)"
    )]
    InvalidTtl(String),
    #[error("the token key is too short")]
    InvalidKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The MAC key, prepared once. Its `Debug` form hides it.
#[derive(Clone)]
pub struct TokenKey(HmacSha256);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from raw bytes (at least 16).
    pub fn new(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() < 16 {
            return Err(TokenError::InvalidKey);
        }
        <HmacSha256 as Mac>::new_from_slice(bytes)
            .map(TokenKey)
            .map_err(|_| TokenError::InvalidKey)
    }

    /// The store's key, created on first use.
    pub async fn load(accounts: &dyn Accounts) -> Result<Self, TokenError> {
        Self::new(&accounts.secret(KEY_SECRET, KEY_LEN).await?)
    }

    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user the token acts as.
    pub user: String,
    /// Seconds since the Unix epoch after which the token is refused.
    pub expires: u64,
    /// The user's token generation at issue time; revocation bumps the stored one.
    pub generation: u64,
    /// Only reads (GET, HEAD, listings) are allowed.
    pub read_only: bool,
    /// Only this path (in the user's view) and what lies below it are reachable.
    pub prefix: Option<VPath>,
}

/// The signed form of [`Claims`].
#[derive(Serialize, Deserialize)]
struct Wire {
    user: String,
    expires: u64,
    generation: u64,
    read_only: bool,
    prefix: Option<String>,
}

impl Claims {
    /// Refuses a token issued before the user's tokens were last revoked.
    pub fn check_generation(&self, current: u64) -> Result<(), TokenError> {
        if self.generation == current {
            Ok(())
        } else {
            Err(TokenError::Revoked)
        }
    }

    /// True if `user_path` (in the user's view) is within the token's prefix.
    pub fn allows_path(&self, user_path: &VPath) -> bool {
        self.prefix
            .as_ref()
            .is_none_or(|p| user_path.starts_with(p))
    }

    /// The expiry as a time.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.expires)
    }
}

/// Signs `claims` into a token string.
pub fn issue(key: &TokenKey, claims: &Claims) -> String {
    let wire = Wire {
        user: claims.user.clone(),
        expires: claims.expires,
        generation: claims.generation,
        read_only: claims.read_only,
        prefix: claims.prefix.as_ref().map(|p| p.as_str().to_owned()),
    };
    // Encoding a struct of strings and integers into a Vec cannot fail.
    let payload = postcard::to_allocvec(&wire).unwrap_or_default();
    let mut out = String::with_capacity(PREFIX.len() + payload.len() * 2 + 48);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let mut mac = key.mac();
    mac.update(out.as_bytes());
    let tag = mac.finalize().into_bytes();
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut out);
    out
}

/// Checks the signature and the expiry of `token` at `now` and returns its claims. The caller
/// then checks the generation against the user's current one ([`Claims::check_generation`]).
pub fn verify(key: &TokenKey, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN || !token.starts_with(PREFIX) {
        return Err(TokenError::Malformed);
    }
    let dot = token.rfind('.').ok_or(TokenError::Malformed)?;
    let (signed, tag_b64) = (&token[..dot], &token[dot + 1..]);
    if signed.len() <= PREFIX.len() {
        return Err(TokenError::Malformed);
    }
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = key.mac();
    mac.update(signed.as_bytes());
    mac.verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(&signed[PREFIX.len()..])
        .map_err(|_| TokenError::Malformed)?;
    let wire: Wire = postcard::from_bytes(&payload).map_err(|_| TokenError::Malformed)?;
    let prefix = match wire.prefix {
        Some(p) => Some(VPath::parse(&p).map_err(|_| TokenError::Malformed)?),
        None => None,
    };
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now_secs >= wire.expires {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        user: wire.user,
        expires: wire.expires,
        generation: wire.generation,
        read_only: wire.read_only,
        prefix,
    })
}

/// What to put in a new token besides the user.
#[derive(Debug, Clone, Default)]
pub struct IssueRequest {
    pub ttl: Duration,
    pub read_only: bool,
    /// A path in the user's view ("/dir"); `None` for the whole home.
    pub prefix: Option<String>,
}

/// Issues a token for stored user `user` with the store's key and the user's current token
/// generation (what `filegate token issue` and `POST /_/token` do).
pub async fn issue_for_user(
    accounts: &dyn Accounts,
    user: &str,
    request: &IssueRequest,
    now: SystemTime,
) -> Result<(String, Claims), TokenError> {
    let record = accounts
        .user(user)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(TokenError::UnknownUser)?;
    let prefix = match &request.prefix {
        Some(p) => Some(VPath::parse(p).map_err(|e| TokenError::InvalidPrefix(e.to_string()))?),
        None => None,
    };
    if request.ttl.is_zero() || request.ttl > MAX_TTL {
        return Err(TokenError::InvalidTtl(format!(
            "{}s",
            request.ttl.as_secs()
        )));
    }
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        user: record.name.clone(),
        expires: now_secs.saturating_add(request.ttl.as_secs().max(1)),
        generation: record.token_generation,
        read_only: request.read_only,
        prefix,
    };
    let key = TokenKey::load(accounts).await?;
    Ok((issue(&key, &claims), claims))
}

/// Revokes every token of `user` issued so far (what `filegate token revoke` does); returns the
/// new generation.
pub async fn revoke(accounts: &dyn Accounts, user: &str) -> Result<u64, TokenError> {
    match accounts.bump_token_generation(user).await {
        Ok(g) => Ok(g),
        Err(StoreError::NotFound) => Err(TokenError::UnknownUser),
        Err(e) => Err(e.into()),
    }
}

/// Parses a lifetime: "3600" (seconds), "90s", "15m", "1h", "7d"; at most [`MAX_TTL`].
pub fn parse_ttl(input: &str) -> Result<Duration, TokenError> {
    let bad = || TokenError::InvalidTtl(input.to_owned());
    let s = input.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    let ttl = Duration::from_secs(secs);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(bad());
    }
    Ok(ttl)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            user: "ann".into(),
            expires: 2_000,
            generation: 3,
            read_only: true,
            prefix: Some(VPath::parse("/shared/x").unwrap()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn round_trip() {
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let t = issue(&key, &claims());
        assert!(t.starts_with("fgt1."), "{t}");
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let c = verify(&key, &t, at(1_999)).unwrap();
        assert_eq!(c, claims());
        c.check_generation(3).unwrap();
        assert!(c.allows_path(&VPath::parse("/shared/x/y").unwrap()));
        assert!(!c.allows_path(&VPath::parse("/shared/xy").unwrap()));
    }

    #[test]
    fn expiry() {
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let t = issue(&key, &claims());
        assert!(matches!(
            verify(&key, &t, at(2_000)),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            verify(&key, &t, at(9_999)),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn wrong_key() {
        let t = issue(&TokenKey::new(&[7u8; 32]).unwrap(), &claims());
        let other = TokenKey::new(&[8u8; 32]).unwrap();
        assert!(matches!(
            verify(&other, &t, at(1)),
            Err(TokenError::BadSignature)
        ));
    }

    #[test]
    fn wrong_generation() {
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let c = verify(&key, &issue(&key, &claims()), at(1)).unwrap();
        assert!(matches!(c.check_generation(4), Err(TokenError::Revoked)));
        assert!(matches!(c.check_generation(2), Err(TokenError::Revoked)));
    }

    #[test]
    fn tampering() {
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let t = issue(&key, &claims());
        // Flip every character of the payload and the MAC in turn.
        for i in PREFIX.len()..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(s) = String::from_utf8(bytes) else {
                continue;
            };
            if s == t {
                continue;
            }
            assert!(verify(&key, &s, at(1)).is_err(), "accepted a change at {i}");
        }
        // A payload re-signed with another key, and a payload swapped between two tokens.
        let mut c2 = claims();
        c2.read_only = false;
        let t2 = issue(&key, &c2);
        let (p1, _) = t.rsplit_once('.').unwrap();
        let (_, m2) = t2.rsplit_once('.').unwrap();
        assert!(verify(&key, &format!("{p1}.{m2}"), at(1)).is_err());
        for junk in [
            "",
            "fgt1.",
            "fgt1..",
            "fgt1.a.b",
            "x.y.z",
            "fgt1.@@.@@",
            &"a".repeat(5000),
        ] {
            assert!(verify(&key, junk, at(1)).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86400));
        for bad in [
            "",
            "0",
            "h",
            "1w",
            "-1",
            "400d",
            "99999999999999999999",
            "1.5h",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }
}
