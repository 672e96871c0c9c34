//! Conditional requests (RFC 9110 13): entity tags, dates, and the evaluation order of 13.2.2.
//! Pure functions of the headers and the current version.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use filegate_core::Entry;
use http::header::{
    HeaderMap, HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE,
};

/// The ETag of a version: the store's tag, quoted (always strong).
pub fn etag(entry: &Entry) -> String {
    format!("\"{}\"", entry.tag)
}

/// The Last-Modified value of a version.
pub fn last_modified(entry: &Entry) -> String {
    httpdate::fmt_http_date(whole_seconds(entry.modified))
}

/// Drops sub-second precision: HTTP dates have whole seconds.
fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

/// One entity tag from a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub weak: bool,
    pub opaque: String,
}

/// `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagList {
    Any,
    Tags(Vec<Tag>),
}

impl TagList {
    /// Strong comparison (If-Match): both strong and identical.
    pub fn strong_match(&self, tag: &str) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| !t.weak && t.opaque == tag),
        }
    }

    /// Weak comparison (If-None-Match): identical opaque tags, weak or not.
    pub fn weak_match(&self, tag: &str) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| t.opaque == tag),
        }
    }
}

/// Parses every `name` field as one list; `None` if absent, `Some(Err)` if malformed.
pub fn tag_list(headers: &HeaderMap, name: &HeaderName) -> Option<Result<TagList, ()>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut tags = Vec::new();
    let mut any = false;
    for v in values {
        let Ok(s) = v.to_str() else {
            return Some(Err(()));
        };
        let mut rest = s;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            if let Some(r) = rest.strip_prefix('*') {
                any = true;
                rest = r;
                continue;
            }
            let (weak, r) = match rest.strip_prefix("W/") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let Some(r) = r.strip_prefix('"') else {
                return Some(Err(()));
            };
            let Some(end) = r.find('"') else {
                return Some(Err(()));
            };
            tags.push(Tag {
                weak,
                opaque: r[..end].to_owned(),
            });
            rest = &r[end + 1..];
            if !(rest.is_empty() || rest.starts_with([' ', '\t', ','])) {
                return Some(Err(()));
            }
        }
    }
    match (any, tags.is_empty()) {
        (true, true) => Some(Ok(TagList::Any)),
        (false, false) => Some(Ok(TagList::Tags(tags))),
        // "*" mixed with tags, or an empty field.
        _ => Some(Err(())),
    }
}

/// A valid HTTP-date in the single `name` field; invalid or repeated fields are ignored.
fn date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut all = headers.get_all(name).iter();
    let v = all.next()?;
    if all.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(v.to_str().ok()?).ok()
}

/// The outcome of the preconditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 304 (GET and HEAD only).
    NotModified,
    /// 412.
    Failed,
}

/// Evaluates the preconditions in RFC 9110 13.2.2 order. `safe` is true for GET and HEAD;
/// `current` is the version now at the target, `None` if nothing is there.
pub fn evaluate(headers: &HeaderMap, safe: bool, current: Option<&Entry>) -> Verdict {
    // 1. If-Match
    if let Some(list) = tag_list(headers, &IF_MATCH) {
        let ok = match (list, current) {
            (Ok(TagList::Any), Some(_)) => true,
            (Ok(list), Some(e)) => !e.is_dir() && list.strong_match(&e.tag),
            _ => false,
        };
        if !ok {
            return Verdict::Failed;
        }
    } else if let Some(since) = date(headers, &IF_UNMODIFIED_SINCE) {
        // 2. If-Unmodified-Since, only without If-Match
        if let Some(e) = current {
            if whole_seconds(e.modified) > since {
                return Verdict::Failed;
            }
        }
    }
    // 3. If-None-Match
    if let Some(list) = tag_list(headers, &IF_NONE_MATCH) {
        if let (Ok(list), Some(e)) = (list, current) {
            let matched = match &list {
                TagList::Any => true,
                TagList::Tags(_) => !e.is_dir() && list.weak_match(&e.tag),
            };
            if matched {
                return if safe {
                    Verdict::NotModified
                } else {
                    Verdict::Failed
                };
            }
        }
    } else if safe {
        // 4. If-Modified-Since, only for GET/HEAD and only without If-None-Match
        if let (Some(since), Some(e)) = (date(headers, &IF_MODIFIED_SINCE), current) {
            if whole_seconds(e.modified) <= since {
                return Verdict::NotModified;
            }
        }
    }
    Verdict::Proceed
}

/// True unless an `If-Range` header names another version (then the whole representation is
/// sent instead of the ranges, RFC 9110 13.1.5).
pub fn if_range_holds(headers: &HeaderMap, entry: &Entry) -> bool {
    let Some(v) = headers.get(IF_RANGE) else {
        return true;
    };
    let Ok(s) = v.to_str() else {
        return false;
    };
    let s = s.trim();
    if s.starts_with('"') || s.starts_with("W/") {
        // Only a strong, identical tag holds.
        return s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) == Some(entry.tag.as_str());
    }
    match httpdate::parse_http_date(s) {
        Ok(t) => whole_seconds(entry.modified) == t,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filegate_core::Kind;
    use http::HeaderValue;

    fn entry(tag: &str, secs: u64) -> Entry {
        Entry {
            name: "f".into(),
            kind: Kind::File,
            size: 3,
            modified: UNIX_EPOCH + Duration::from_millis(secs * 1000 + 500),
            tag: tag.into(),
            digest: None,
        }
    }

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn date_str(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn parses_tag_lists() {
        let h = headers(&[(IF_MATCH, "\"a\", W/\"b\""), (IF_MATCH, "\"c\"")]);
        let list = tag_list(&h, &IF_MATCH).unwrap().unwrap();
        assert!(list.strong_match("a") && list.strong_match("c") && !list.strong_match("b"));
        assert!(list.weak_match("b"));
        assert_eq!(
            tag_list(&headers(&[(IF_NONE_MATCH, "*")]), &IF_NONE_MATCH),
            Some(Ok(TagList::Any))
        );
        for bad in ["a", "\"a", "\"a\"b", "*, \"a\"", ""] {
            assert!(
                tag_list(&headers(&[(IF_MATCH, bad)]), &IF_MATCH)
                    .unwrap()
                    .is_err(),
                "{bad:?}"
            );
        }
        assert!(tag_list(&HeaderMap::new(), &IF_MATCH).is_none());
    }

    #[test]
    fn evaluation_order() {
        let e = entry("v1", 1000);
        let ev = |pairs: &[(HeaderName, &str)], safe| evaluate(&headers(pairs), safe, Some(&e));
        assert_eq!(ev(&[], true), Verdict::Proceed);
        assert_eq!(ev(&[(IF_MATCH, "\"v1\"")], false), Verdict::Proceed);
        assert_eq!(ev(&[(IF_MATCH, "\"v0\"")], false), Verdict::Failed);
        assert_eq!(
            ev(&[(IF_MATCH, "W/\"v1\"")], true),
            Verdict::Failed,
            "weak never matches strongly"
        );
        assert_eq!(ev(&[(IF_MATCH, "*")], false), Verdict::Proceed);
        assert_eq!(
            evaluate(&headers(&[(IF_MATCH, "*")]), false, None),
            Verdict::Failed
        );
        assert_eq!(ev(&[(IF_NONE_MATCH, "\"v1\"")], true), Verdict::NotModified);
        assert_eq!(
            ev(&[(IF_NONE_MATCH, "W/\"v1\"")], true),
            Verdict::NotModified
        );
        assert_eq!(ev(&[(IF_NONE_MATCH, "\"v1\"")], false), Verdict::Failed);
        assert_eq!(ev(&[(IF_NONE_MATCH, "*")], false), Verdict::Failed);
        assert_eq!(
            evaluate(&headers(&[(IF_NONE_MATCH, "*")]), false, None),
            Verdict::Proceed
        );
        assert_eq!(ev(&[(IF_NONE_MATCH, "\"v0\"")], true), Verdict::Proceed);
        // If-Modified-Since: second granularity, ignored when If-None-Match is present.
        let same = date_str(1000);
        let before = date_str(999);
        assert_eq!(
            ev(&[(IF_MODIFIED_SINCE, &same)], true),
            Verdict::NotModified
        );
        assert_eq!(ev(&[(IF_MODIFIED_SINCE, &before)], true), Verdict::Proceed);
        assert_eq!(ev(&[(IF_MODIFIED_SINCE, &same)], false), Verdict::Proceed);
        assert_eq!(
            ev(&[(IF_MODIFIED_SINCE, "garbage")], true),
            Verdict::Proceed
        );
        assert_eq!(
            ev(
                &[(IF_NONE_MATCH, "\"v0\""), (IF_MODIFIED_SINCE, &same)],
                true
            ),
            Verdict::Proceed,
            "If-Modified-Since is ignored when If-None-Match is present"
        );
        assert_eq!(
            ev(&[(IF_UNMODIFIED_SINCE, &before)], false),
            Verdict::Failed
        );
        assert_eq!(ev(&[(IF_UNMODIFIED_SINCE, &same)], false), Verdict::Proceed);
        assert_eq!(
            ev(
                &[(IF_MATCH, "\"v1\""), (IF_UNMODIFIED_SINCE, &before)],
                false
            ),
            Verdict::Proceed,
            "If-Unmodified-Since is ignored when If-Match is present"
        );
    }

    #[test]
    fn if_range() {
        let e = entry("v1", 1000);
        let holds = |v: &str| if_range_holds(&headers(&[(IF_RANGE, v)]), &e);
        assert!(if_range_holds(&HeaderMap::new(), &e));
        assert!(holds("\"v1\""));
        assert!(!holds("\"v0\""));
        assert!(!holds("W/\"v1\""));
        assert!(holds(&date_str(1000)));
        assert!(!holds(&date_str(999)));
        assert!(!holds("nonsense"));
    }
}
