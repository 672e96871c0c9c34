//! Byte ranges (RFC 9110 14): parsing the `Range` header and resolving it against a length.
//! Pure functions, no I/O.

/// At most this many ranges are honoured in one request; more and the header is ignored (a
/// server may ignore Range, RFC 9110 14.2), which also stops many-small-ranges abuse.
pub const MAX_RANGES: usize = 16;

/// One range as written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `first-last`
    FromTo(u64, u64),
    /// `first-`
    From(u64),
    /// `-suffix_length`
    Suffix(u64),
}

/// A satisfiable range: `start..=end` within the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for a representation of `total` bytes.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, total)
    }
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The whole representation (no usable Range header).
    Full,
    /// 206 with one part.
    Single(ByteRange),
    /// 206 multipart/byteranges.
    Multi(Vec<ByteRange>),
    /// 416.
    Unsatisfiable,
}

/// Parses a `Range` value. `None` means "ignore the header": another unit, bad syntax, or too
/// many ranges.
pub fn parse(value: &str) -> Option<Vec<Spec>> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut out = Vec::new();
    for part in set.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue; // the list syntax allows empty elements
        }
        if out.len() == MAX_RANGES {
            return None;
        }
        let (a, b) = part.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        let spec = match (a.is_empty(), b.is_empty()) {
            (true, true) => return None,
            (true, false) => Spec::Suffix(digits(b)?),
            (false, true) => Spec::From(digits(a)?),
            (false, false) => {
                let (first, last) = (digits(a)?, digits(b)?);
                if last < first {
                    return None;
                }
                Spec::FromTo(first, last)
            }
        };
        out.push(spec);
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves `specs` against a representation of `len` bytes: a last position past the end is
/// clamped (RFC 9110 14.1.2); ranges starting at or past the end are dropped; none left gives
/// 416. Ranges whose total is more than twice the length are ignored (serve the whole).
pub fn resolve(specs: &[Spec], len: u64) -> Resolved {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let r = match *spec {
            Spec::FromTo(first, last) if first < len => Some(ByteRange {
                start: first,
                end: last.min(len - 1),
            }),
            Spec::From(first) if first < len => Some(ByteRange {
                start: first,
                end: len - 1,
            }),
            Spec::Suffix(n) if n > 0 && len > 0 => Some(ByteRange {
                start: len - n.min(len),
                end: len - 1,
            }),
            _ => None,
        };
        out.extend(r);
    }
    let total: u64 = out.iter().map(|r| r.len()).fold(0, u64::saturating_add);
    match out.len() {
        0 => Resolved::Unsatisfiable,
        _ if total > len.saturating_mul(2) => Resolved::Full,
        1 => Resolved::Single(out[0]),
        _ => Resolved::Multi(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn parses() {
        assert_eq!(parse("bytes=0-499"), Some(vec![Spec::FromTo(0, 499)]));
        assert_eq!(parse("bytes=500-"), Some(vec![Spec::From(500)]));
        assert_eq!(parse("bytes=-500"), Some(vec![Spec::Suffix(500)]));
        assert_eq!(
            parse("Bytes = 0-0 , -1,, 5-"),
            Some(vec![Spec::FromTo(0, 0), Spec::Suffix(1), Spec::From(5)])
        );
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse(&many), None);
    }

    #[test]
    fn resolves() {
        let res = |s: &str, len| resolve(&parse(s).unwrap(), len);
        assert_eq!(res("bytes=0-499", 1000), Resolved::Single(r(0, 499)));
        assert_eq!(
            res("bytes=0-5000", 1000),
            Resolved::Single(r(0, 999)),
            "clamped"
        );
        assert_eq!(res("bytes=-500", 1000), Resolved::Single(r(500, 999)));
        assert_eq!(res("bytes=-5000", 1000), Resolved::Single(r(0, 999)));
        assert_eq!(res("bytes=999-", 1000), Resolved::Single(r(999, 999)));
        assert_eq!(res("bytes=1000-", 1000), Resolved::Unsatisfiable);
        assert_eq!(res("bytes=1000-2000", 1000), Resolved::Unsatisfiable);
        assert_eq!(res("bytes=-0", 1000), Resolved::Unsatisfiable);
        assert_eq!(res("bytes=0-0", 0), Resolved::Unsatisfiable);
        assert_eq!(res("bytes=-1", 0), Resolved::Unsatisfiable);
        assert_eq!(
            res("bytes=0-1,5000-,4-5", 10),
            Resolved::Multi(vec![r(0, 1), r(4, 5)]),
            "unsatisfiable parts are dropped"
        );
        assert_eq!(res("bytes=0-,0-,0-", 10), Resolved::Full, "amplification");
    }
}
