//! Token verification: a token is accepted only if its MAC verifies under the key, and what is
//! accepted re-issues to a token that verifies to the same claims.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use filegate_core::token::{issue, verify, TokenKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (Ok(key), Ok(other)) = (TokenKey::new(&[7u8; 32]), TokenKey::new(&[8u8; 32])) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    if let Ok(claims) = verify(&key, text, now) {
        // The signature is really checked: another key refuses the same bytes.
        assert!(verify(&other, text, now).is_err());
        assert!(claims.expires >= 1_000);
        let again = issue(&key, &claims);
        assert_eq!(verify(&key, &again, now).ok(), Some(claims));
    }
    // Tokens made here always verify, and never under another key.
    let made = issue(
        &key,
        &filegate_core::token::Claims {
            user: text.chars().take(64).collect(),
            expires: 2_000,
            generation: data.len() as u64,
            read_only: data.first().is_some_and(|b| b & 1 == 1),
            prefix: None,
        },
    );
    assert!(verify(&key, &made, now).is_ok());
    assert!(verify(&other, &made, now).is_err());
});
