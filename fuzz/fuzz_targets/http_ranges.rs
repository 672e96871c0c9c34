//! HTTP Range and conditional headers: every range produced lies inside 0..len, and the
//! precondition verdict follows RFC 9110 13.2.2 on the cases that decide it outright.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use filegate_core::{Entry, Kind};
use filegate_httpd::preconditions::{evaluate, Verdict};
use filegate_httpd::ranges::{parse, resolve, Resolved};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap_or_default()) % (1 << 40);
    let Ok(text) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    let mut lines = text.split('\n');
    let range = lines.next().unwrap_or_default();
    if let Some(specs) = parse(range) {
        match resolve(&specs, len) {
            Resolved::Full | Resolved::Unsatisfiable => {}
            Resolved::Single(r) => {
                assert!(r.start <= r.end && r.end < len, "{r:?} outside 0..{len}");
            }
            Resolved::Multi(rs) => {
                assert!(rs.len() >= 2);
                for r in rs {
                    assert!(r.start <= r.end && r.end < len, "{r:?} outside 0..{len}");
                }
            }
        }
    }
    // The remaining lines are conditional headers.
    let mut headers = HeaderMap::new();
    for line in lines.take(16) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.trim()), HeaderValue::from_str(value.trim())) {
            headers.append(n, v);
        }
    }
    let entry = Entry {
        name: "f".into(),
        kind: Kind::File,
        size: len,
        modified: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        tag: "abc".into(),
        digest: None,
    };
    for safe in [true, false] {
        let with = evaluate(&headers, safe, Some(&entry));
        let without = evaluate(&headers, safe, None);
        if !safe {
            assert_ne!(with, Verdict::NotModified, "304 only for GET and HEAD");
            assert_ne!(without, Verdict::NotModified);
        }
        if headers.contains_key(http::header::IF_MATCH) {
            assert_eq!(without, Verdict::Failed, "If-Match on nothing fails");
        }
    }
});
