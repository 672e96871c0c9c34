//! Request targets: the URL path decoded once into a [`VPath`], query parameters, and the
//! reverse (paths into hrefs).
//!
//! Each segment is percent-decoded on its own, so an encoded `/` (`%2f`) can never split or
//! join segments; a decoded segment that is `.` or `..`, or holds `/`, `\` or NUL, is refused
//! (400) rather than interpreted. The core's path rules then apply (no control characters,
//! lengths), and the result is joined under the user's home, so nothing reaches outside it.

use filegate_core::VPath;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::HttpError;

/// A request path in the user's view, and whether it was written with a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPath {
    pub path: VPath,
    pub trailing_slash: bool,
}

/// Decodes the path of a request target (no query) into a user path.
pub fn decode(raw: &str) -> Result<UserPath, HttpError> {
    if !raw.starts_with('/') {
        return Err(HttpError::bad_request(
            "the request target must be an absolute path",
        ));
    }
    let mut out = String::with_capacity(raw.len());
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        let bytes: Vec<u8> = percent_decode_str(seg).collect();
        let s = String::from_utf8(bytes)
            .map_err(|_| HttpError::bad_request("the path is not valid UTF-8"))?;
        if s == "." || s == ".." {
            return Err(HttpError::bad_request(
                "dot segments are not allowed in paths",
            ));
        }
        if s.contains(['/', '\\', '\0']) {
            return Err(HttpError::bad_request(
                "a path segment holds '/', '\\' or NUL",
            ));
        }
        out.push('/');
        out.push_str(&s);
    }
    if out.is_empty() {
        out.push('/');
    }
    let path =
        VPath::parse(&out).map_err(|e| HttpError::bad_request(format!("invalid path: {e}")))?;
    Ok(UserPath {
        trailing_slash: raw.len() > 1 && raw.ends_with('/'),
        path,
    })
}

/// The value of query parameter `name` (the first one), percent-decoded, `+` as space.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != name {
            return None;
        }
        let v = v.replace('+', " ");
        Some(percent_decode_str(&v).decode_utf8_lossy().into_owned())
    })
}

/// Characters kept as they are in a path segment of an href: unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An absolute href for `path` (user view); directories get a trailing slash.
pub fn href(path: &VPath, dir: bool) -> String {
    let mut out = String::with_capacity(path.as_str().len() + 8);
    for seg in path.segments() {
        out.push('/');
        out.extend(utf8_percent_encode(seg, SEGMENT));
    }
    if out.is_empty() || dir {
        out.push('/');
    }
    out
}

/// Percent-encodes a query value.
pub fn encode_query_value(v: &str) -> String {
    utf8_percent_encode(v, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once() {
        let d = |s: &str| decode(s).map(|u| u.path.as_str().to_owned());
        assert_eq!(d("/").unwrap(), "/");
        assert_eq!(d("/a/b").unwrap(), "/a/b");
        assert_eq!(d("//a///b/").unwrap(), "/a/b");
        assert_eq!(d("/a%20b/%C3%BC").unwrap(), "/a b/ü");
        assert_eq!(d("/%252e%252e").unwrap(), "/%2e%2e", "decoded once only");
        assert!(decode("/dir/").unwrap().trailing_slash);
        assert!(!decode("/dir").unwrap().trailing_slash);
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/%2E%2e",
            "/.",
            "/a/%2e",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/a%0ab",
            "/%ff",
            "a",
            "",
            "*",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("/{}", "a".repeat(300));
        assert!(decode(&long).is_err());
    }

    #[test]
    fn queries() {
        assert_eq!(
            query_param(Some("a=1&token=x%2By&b"), "token").as_deref(),
            Some("x+y")
        );
        assert_eq!(
            query_param(Some("token=a+b"), "token").as_deref(),
            Some("a b")
        );
        assert_eq!(query_param(Some("b"), "b").as_deref(), Some(""));
        assert_eq!(query_param(None, "token"), None);
        assert_eq!(query_param(Some("tokens=1"), "token"), None);
    }

    #[test]
    fn hrefs_round_trip() {
        for p in ["/", "/a b/ü", "/x?#%&", "/a'\"<>"] {
            let v = VPath::parse(p).unwrap();
            let h = href(&v, false);
            assert!(!h.contains(['?', '#', ' ', '"', '\'', '<', '>']), "{h}");
            assert_eq!(decode(&h).unwrap().path, v);
        }
        assert_eq!(href(&VPath::parse("/d").unwrap(), true), "/d/");
        assert_eq!(href(&VPath::root(), true), "/");
    }
}
