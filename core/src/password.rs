//! Password hashing: argon2id at OWASP's minimum parameters (m = 19 MiB, t = 2, p = 1), which
//! is what `Argon2::default()` is. Hashing costs tens of milliseconds of CPU, so callers in async
//! code use the `_async` forms, which run on a small pool of dedicated threads.
//!
//! Why a pool of its own: every check allocates 19 MiB. On tokio's blocking pool a burst of
//! logins ran hundreds of checks at once (gigabytes), and the freed buffers stayed in the malloc
//! arenas of as many threads. Here a few threads do all the hashing and reuse their memory, and a
//! login flood waits in a bounded queue instead of taking every core and the memory with it.

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

/// [`hash`] on the hashing pool.
pub async fn hash_async(password: String) -> Result<String, StoreError> {
    run_in_pool(move || hash(&password))
        .await
        .ok_or_else(|| StoreError::Db("the password hashing pool is gone".into()))?
}

/// [`verify`] on the hashing pool.
pub async fn verify_async(password: String, phc: String) -> bool {
    run_in_pool(move || verify(&password, &phc))
        .await
        .unwrap_or(false)
}

type Job = Box<dyn FnOnce() + Send>;

/// Checks waiting for a hashing thread; beyond this, callers wait to queue.
const QUEUE: usize = 1024;

/// The process-wide hashing threads: one per core, at most four.
fn pool() -> &'static tokio::sync::mpsc::Sender<Job> {
    static POOL: std::sync::OnceLock<tokio::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        for i in 0..threads {
            let rx = std::sync::Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, never while hashing.
                    let job = match rx.lock() {
                        Ok(mut rx) => rx.blocking_recv(),
                        Err(_) => None,
                    };
                    match job {
                        Some(job) => job(),
                        None => break,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        tx
    })
}

/// Runs `f` on the hashing pool; `None` if the pool is unavailable.
async fn run_in_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(f());
    });
    pool().send(job).await.ok()?;
    rx.await.ok()
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

    #[tokio::test]
    async fn pool_runs_many_checks() {
        let h = hash_async("pw".into()).await.unwrap();
        let checks: Vec<_> = (0..8)
            .map(|i| {
                tokio::spawn(verify_async(
                    if i % 2 == 0 { "pw" } else { "no" }.into(),
                    h.clone(),
                ))
            })
            .collect();
        for (i, c) in checks.into_iter().enumerate() {
            assert_eq!(c.await.unwrap(), i % 2 == 0);
        }
    }

    #[test]
    fn random_passwords_differ() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
    }
}
