//! Virtual path resolution: whatever the input, a resolved path never escapes its root, is
//! normalized, and resolving it again changes nothing.
#![no_main]

use filegate_core::path::{MAX_PATH, MAX_SEGMENT};
use filegate_core::VPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First line: a working directory; second: a home; the rest: the input.
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(cwd), Some(home), Some(input)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(cwd), Ok(home)) = (VPath::parse_bytes(cwd), VPath::parse_bytes(home)) else {
        return;
    };
    let Ok(input) = std::str::from_utf8(input) else {
        assert!(VPath::parse_bytes(input).is_err());
        return;
    };
    let Ok(resolved) = cwd.resolve(input) else {
        return;
    };
    let s = resolved.as_str();
    assert!(s.starts_with('/'));
    assert!(s.len() <= MAX_PATH);
    assert!(s == "/" || !s.ends_with('/'));
    for seg in resolved.segments() {
        assert!(!seg.is_empty() && seg != "." && seg != "..");
        assert!(seg.len() <= MAX_SEGMENT);
        assert!(!seg.chars().any(|c| c == '\0' || c.is_control()));
    }
    // Idempotent, from any working directory.
    assert_eq!(VPath::parse(s).ok().as_ref(), Some(&resolved));
    assert_eq!(cwd.resolve(s).ok().as_ref(), Some(&resolved));
    // Confined under a home, and reversible.
    if let Ok(store_path) = home.join_under(&resolved) {
        assert!(store_path.starts_with(&home));
        assert_eq!(home.strip_home(&store_path).as_ref(), Some(&resolved));
    }
    if let Some(parent) = resolved.parent() {
        assert!(resolved.starts_with(&parent));
        let name = resolved.name().unwrap_or_default();
        assert_eq!(parent.child(name).ok().as_ref(), Some(&resolved));
    }
});
