//! Password hashing: argon2id at OWASP's minimum parameters (m = 19 MiB, t = 2, p = 1), which
//! is what `Argon2::default()` is. Hashing costs tens of milliseconds of CPU, so callers in async
//! code use the `_async` forms, which run on the blocking pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::StoreError;

/// Hashes `password` into a PHC string.
pub fn hash(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Db(format!("password hashing failed: {e}")))
}

/// True if `password` matches the PHC string `phc`. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// [`hash`] on the blocking pool.
pub async fn hash_async(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| StoreError::Db(format!("hashing task failed: {e}")))?
}

/// [`verify`] on the blocking pool.
pub async fn verify_async(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &phc))
        .await
        .unwrap_or(false)
}

/// A fixed hash to verify against when the user does not exist, so that a wrong user name
/// costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("filegate-dummy-password").unwrap_or_default())
}

/// A random password for generated accounts: 20 characters from an unambiguous alphabet.
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("s3cret", &h));
        assert!(!verify("s3cret ", &h));
        assert!(!verify("s3cret", "not a hash"));
        assert_ne!(hash("s3cret").unwrap(), h, "salted");
    }

    #[test]
    fn random_passwords_differ() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
    }
}
