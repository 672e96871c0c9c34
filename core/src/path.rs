//! Virtual paths: the one path type both front ends use.
//!
//! A [`VPath`] is always absolute, normalized and valid: UTF-8, '/'-separated, no empty, `.` or `..`
//! segments, no NUL or control characters, segments of at most [`MAX_SEGMENT`] bytes and at most
//! [`MAX_PATH`] bytes in all. `..` is resolved lexically and stops at the root, so no spelling of a
//! path can climb above the root it is resolved against.

use std::fmt;

/// Longest allowed segment (file or directory name), in bytes.
pub const MAX_SEGMENT: usize = 255;
/// Longest allowed path, in bytes.
pub const MAX_PATH: usize = 4096;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path contains a control character")]
    Control,
    #[error("path segment longer than {MAX_SEGMENT} bytes")]
    SegmentTooLong,
    #[error("path longer than {MAX_PATH} bytes")]
    TooLong,
    #[error("path is not valid UTF-8")]
    NotUtf8,
}

/// An absolute, normalized virtual path ("/" or "/a/b").
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VPath(String);

impl VPath {
    /// The root, "/".
    pub fn root() -> Self {
        VPath("/".to_owned())
    }

    /// Parses `input` against the root: relative and absolute spellings mean the same.
    pub fn parse(input: &str) -> Result<Self, PathError> {
        Self::root().resolve(input)
    }

    /// Parses raw bytes, refusing anything that is not UTF-8.
    pub fn parse_bytes(input: &[u8]) -> Result<Self, PathError> {
        let s = std::str::from_utf8(input).map_err(|_| PathError::NotUtf8)?;
        Self::parse(s)
    }

    /// Resolves `input` relative to `self` (a working directory); an absolute `input` starts
    /// again from the root. `..` never climbs above the root.
    pub fn resolve(&self, input: &str) -> Result<Self, PathError> {
        if input.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        let mut segments: Vec<&str> = if input.starts_with('/') {
            Vec::new()
        } else {
            self.segments().collect()
        };
        for seg in input.split('/') {
            check_segment(seg)?;
            match seg {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        let mut out = String::with_capacity(input.len() + self.0.len() + 1);
        for seg in &segments {
            out.push('/');
            out.push_str(seg);
        }
        if out.is_empty() {
            out.push('/');
        }
        if out.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        Ok(VPath(out))
    }

    /// The path as a string, always starting with '/'.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for "/".
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The segments from the root down; empty for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment; `None` for the root.
    pub fn name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }

    /// The parent directory; `None` for the root.
    pub fn parent(&self) -> Option<VPath> {
        if self.is_root() {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) | None => Some(VPath::root()),
            Some(i) => Some(VPath(self.0[..i].to_owned())),
        }
    }

    /// Appends one already-valid name (a directory entry's name).
    pub fn child(&self, name: &str) -> Result<VPath, PathError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            // A name from a listing never looks like this; treat it as a path to stay safe.
            return self.resolve(&format!("./{name}"));
        }
        check_segment(name)?;
        let joined = if self.is_root() {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.0)
        };
        if joined.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        Ok(VPath(joined))
    }

    /// True if `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &VPath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// Maps a path as a user sees it (their root is "/") to the store path under `self` (their
    /// home). Because `user_path` is normalized, the result always lies under `self`.
    pub fn join_under(&self, user_path: &VPath) -> Result<VPath, PathError> {
        if self.is_root() {
            return Ok(user_path.clone());
        }
        if user_path.is_root() {
            return Ok(self.clone());
        }
        let joined = format!("{}{}", self.0, user_path.0);
        if joined.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        Ok(VPath(joined))
    }

    /// The inverse of [`join_under`](Self::join_under): the store path `store_path` as seen by a
    /// user whose root is `self`; `None` if it lies outside.
    pub fn strip_home(&self, store_path: &VPath) -> Option<VPath> {
        if !store_path.starts_with(self) {
            return None;
        }
        if self.is_root() {
            return Some(store_path.clone());
        }
        let rest = &store_path.0[self.0.len()..];
        if rest.is_empty() {
            Some(VPath::root())
        } else {
            Some(VPath(rest.to_owned()))
        }
    }
}

fn check_segment(seg: &str) -> Result<(), PathError> {
    if seg.len() > MAX_SEGMENT {
        return Err(PathError::SegmentTooLong);
    }
    for c in seg.chars() {
        if c == '\0' {
            return Err(PathError::Nul);
        }
        if c.is_control() {
            return Err(PathError::Control);
        }
    }
    Ok(())
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VPath({:?})", self.0)
    }
}

impl AsRef<str> for VPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for VPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> VPath {
        VPath::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn normalizes_lexically() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("a", "/a"),
            ("/a/b/", "/a/b"),
            ("/a//b", "/a/b"),
            ("/a/./b/.", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/..", "/"),
            ("../../..", "/"),
            ("/a/../../b", "/b"),
            ("...", "/..."),
            ("a\\..\\b", "/a\\..\\b"),
            ("/ü/名前", "/ü/名前"),
        ];
        for (input, want) in cases {
            assert_eq!(p(input).as_str(), want, "input {input:?}");
        }
    }

    #[test]
    fn resolves_against_working_directory() {
        let cwd = p("/home/x");
        assert_eq!(cwd.resolve("f").unwrap().as_str(), "/home/x/f");
        assert_eq!(cwd.resolve("../y").unwrap().as_str(), "/home/y");
        assert_eq!(cwd.resolve("/etc").unwrap().as_str(), "/etc");
        assert_eq!(cwd.resolve("../../../../..").unwrap().as_str(), "/");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(VPath::parse("a\0b"), Err(PathError::Nul));
        assert_eq!(VPath::parse("a\nb"), Err(PathError::Control));
        assert_eq!(VPath::parse("a\rb"), Err(PathError::Control));
        assert_eq!(VPath::parse("\u{7f}"), Err(PathError::Control));
        assert_eq!(VPath::parse("\u{85}"), Err(PathError::Control));
        assert_eq!(
            VPath::parse(&"a".repeat(256)),
            Err(PathError::SegmentTooLong)
        );
        assert!(VPath::parse(&"a".repeat(255)).is_ok());
        let long = "/abcdefg".repeat(513);
        assert_eq!(VPath::parse(&long), Err(PathError::TooLong));
        assert_eq!(VPath::parse_bytes(b"\xff"), Err(PathError::NotUtf8));
        // Resolving against a deep cwd can also overflow.
        let deep = VPath::parse(&"/abcdefg".repeat(500)).unwrap();
        assert_eq!(deep.resolve(&"x/".repeat(100)), Err(PathError::TooLong));
    }

    #[test]
    fn parent_name_child() {
        assert_eq!(p("/").parent(), None);
        assert_eq!(p("/a").parent(), Some(p("/")));
        assert_eq!(p("/a/b").parent(), Some(p("/a")));
        assert_eq!(p("/a/b").name(), Some("b"));
        assert_eq!(p("/").name(), None);
        assert_eq!(p("/a").child("b").unwrap(), p("/a/b"));
        assert_eq!(p("/").child("b").unwrap(), p("/b"));
        assert_eq!(p("/a").child("..").unwrap(), p("/"));
        assert_eq!(p("/a").child("x/../../..").unwrap(), p("/"));
    }

    #[test]
    fn home_mapping_never_escapes() {
        let home = p("/users/ann");
        for input in ["/", "..", "../bob", "/../../etc", "a/../../..", "x"] {
            let user = VPath::parse(input).unwrap();
            let store = home.join_under(&user).unwrap();
            assert!(store.starts_with(&home), "{input:?} -> {store}");
            assert_eq!(home.strip_home(&store), Some(user));
        }
        assert_eq!(home.strip_home(&p("/users/annex")), None);
        assert_eq!(home.strip_home(&p("/users")), None);
        assert_eq!(p("/").join_under(&p("/x")).unwrap(), p("/x"));
    }

    #[test]
    fn starts_with_is_segment_aware() {
        assert!(p("/a/b").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&p("/a")));
        assert!(!p("/ab").starts_with(&p("/a")));
        assert!(p("/ab").starts_with(&p("/")));
    }

    proptest! {
        #[test]
        fn resolve_is_idempotent_and_rooted(input in "[a-z./\\\\]{0,40}", cwd in "(/[a-z]{1,3}){0,3}") {
            let cwd = VPath::parse(&cwd).unwrap();
            let once = cwd.resolve(&input).unwrap();
            prop_assert!(once.as_str().starts_with('/'));
            prop_assert_eq!(VPath::parse(once.as_str()).unwrap(), once.clone());
            prop_assert!(!once.segments().any(|s| s == ".." || s == "." || s.is_empty()));
        }
    }
}
