//! Directory listings: JSON for programs (when the client accepts `application/json`, or
//! `?format=json`), an HTML page for browsers (breadcrumbs, a sortable table, links, and an
//! upload form that posts multipart data back to the directory).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use filegate_core::{Entry, Kind, VPath};
use http::header::{HeaderMap, ACCEPT};
use serde::Serialize;

use crate::paths::{encode_query_value, href, query_param};
use crate::preconditions::etag;

/// Which form of listing to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
}

/// JSON if asked for by `?format=json`, or if the Accept header names `application/json` with
/// a higher (or equal) weight than `text/html`; HTML otherwise.
pub fn format(headers: &HeaderMap, query: Option<&str>) -> Format {
    match query_param(query, "format").as_deref() {
        Some("json") => return Format::Json,
        Some("html") => return Format::Html,
        _ => {}
    }
    let (mut json, mut html) = (None::<f32>, None::<f32>);
    for v in headers.get_all(ACCEPT) {
        let Ok(s) = v.to_str() else { continue };
        for item in s.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/json" => json = Some(json.map_or(q, |j| j.max(q))),
                "text/html" => html = Some(html.map_or(q, |h| h.max(q))),
                _ => {}
            }
        }
    }
    match (json, html) {
        (Some(j), h) if j > 0.0 && j >= h.unwrap_or(0.0) => Format::Json,
        _ => Format::Html,
    }
}

#[derive(Serialize)]
struct JsonListing<'a> {
    path: &'a str,
    entries: Vec<JsonEntry<'a>>,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    name: &'a str,
    kind: &'static str,
    size: u64,
    /// RFC 3339, UTC, whole seconds.
    modified: String,
    etag: String,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
    }
}

/// The JSON listing of `dir` (user view).
pub fn json(dir: &VPath, entries: &[Entry]) -> Vec<u8> {
    let listing = JsonListing {
        path: dir.as_str(),
        entries: entries
            .iter()
            .map(|e| JsonEntry {
                name: &e.name,
                kind: kind_name(e.kind),
                size: e.size,
                modified: rfc3339(e.modified),
                etag: etag(e),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&listing).unwrap_or_default();
    out.push(b'\n');
    out
}

/// What the HTML page may offer.
pub struct PageOptions<'a> {
    /// Show the upload form.
    pub can_upload: bool,
    /// A query token to carry along in every link (share links).
    pub token: Option<&'a str>,
}

/// The HTML listing of `dir` (user view).
pub fn html(dir: &VPath, entries: &[Entry], opts: &PageOptions<'_>) -> String {
    let suffix = opts
        .token
        .map(|t| format!("?token={}", encode_query_value(t)))
        .unwrap_or_default();
    let title = escape(&href_text(dir));
    let mut out = String::with_capacity(2048 + entries.len() * 256);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Index of {title}</title><style>{STYLE}</style></head>\n<body>\n<nav id=\"crumbs\">"
    );
    // Breadcrumbs: "/" then each ancestor.
    let _ = write!(out, "<a href=\"/{suffix}\">/</a>");
    let mut acc = VPath::root();
    for seg in dir.segments() {
        acc = acc.child(seg).unwrap_or_else(|_| acc.clone());
        let _ = write!(
            out,
            " <a href=\"{}{suffix}\">{}</a> /",
            escape(&href(&acc, true)),
            escape(seg)
        );
    }
    out.push_str("</nav>\n<table id=\"listing\"><thead><tr>\
        <th><button type=\"button\" data-sort=\"name\">Name</button></th>\
        <th><button type=\"button\" data-sort=\"size\">Size</button></th>\
        <th><button type=\"button\" data-sort=\"modified\">Modified</button></th></tr></thead>\n<tbody>\n");
    if let Some(parent) = dir.parent() {
        let _ = writeln!(
            out,
            "<tr class=\"up\"><td><a href=\"{}{suffix}\">../</a></td><td></td><td></td></tr>",
            escape(&href(&parent, true))
        );
    }
    for e in entries {
        let Ok(p) = dir.child(&e.name) else { continue };
        let is_dir = e.is_dir();
        let modified = e
            .modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr data-name=\"{name}\" data-size=\"{size}\" data-modified=\"{modified}\" data-kind=\"{kind}\">\
             <td><a href=\"{link}{suffix}\">{name}{slash}</a></td><td>{hsize}</td><td>{date}</td></tr>",
            name = escape(&e.name),
            size = if is_dir { 0 } else { e.size },
            kind = kind_name(e.kind),
            link = escape(&href(&p, is_dir)),
            slash = if is_dir { "/" } else { "" },
            hsize = if is_dir { String::new() } else { human_size(e.size) },
            date = rfc3339(e.modified),
        );
    }
    out.push_str("</tbody></table>\n");
    if opts.can_upload {
        let _ = writeln!(
            out,
            "<form id=\"upload\" method=\"post\" enctype=\"multipart/form-data\" action=\"{}{suffix}\">\
             <input type=\"file\" name=\"file\" id=\"file\" multiple> \
             <button type=\"submit\" id=\"upload-button\">Upload</button></form>",
            escape(&href(dir, true))
        );
    }
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

fn href_text(dir: &VPath) -> String {
    if dir.is_root() {
        "/".to_owned()
    } else {
        format!("{}/", dir.as_str())
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em}\
table{border-collapse:collapse;min-width:40em}td,th{padding:.2em .8em;text-align:left}\
th button{border:0;background:none;font-weight:bold;cursor:pointer;padding:0}\
tr:nth-child(even){background:#f4f4f4}td:nth-child(2){text-align:right}\
nav{margin-bottom:1em}form{margin-top:1.5em}";

/// Sorts the table by a column when its header is clicked (directories first).
const SCRIPT: &str = "document.querySelectorAll('th button').forEach(function(b){\
var asc=true;b.addEventListener('click',function(){var k=b.dataset.sort;\
var tb=document.querySelector('#listing tbody');\
var rows=Array.prototype.slice.call(tb.querySelectorAll('tr[data-name]'));\
rows.sort(function(x,y){var dx=x.dataset.kind==='dir'?0:1,dy=y.dataset.kind==='dir'?0:1;\
if(dx!==dy)return dx-dy;var a=x.dataset[k],c=y.dataset[k];\
var r=k==='name'?a.localeCompare(c):(Number(a)-Number(c));return asc?r:-r;});\
asc=!asc;rows.forEach(function(r){tb.appendChild(r);});});});";

/// Escapes text for HTML content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "1970-01-01T00:00:00Z");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(t(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(t(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn negotiates() {
        let f = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
            format(&h, None)
        };
        assert_eq!(f("application/json"), Format::Json);
        assert_eq!(f("text/html,application/xhtml+xml,*/*;q=0.8"), Format::Html);
        assert_eq!(f("*/*"), Format::Html);
        assert_eq!(f("text/html;q=0.5, application/json"), Format::Json);
        assert_eq!(f("application/json;q=0"), Format::Html);
        assert_eq!(format(&HeaderMap::new(), Some("format=json")), Format::Json);
    }

    #[test]
    fn html_escapes_names() {
        let e = Entry {
            name: "<script>\"x'&".into(),
            kind: Kind::File,
            size: 2048,
            modified: UNIX_EPOCH,
            tag: "t".into(),
            digest: None,
        };
        let page = html(
            &VPath::parse("/a b").unwrap(),
            &[e],
            &PageOptions {
                can_upload: true,
                token: Some("tok"),
            },
        );
        assert!(!page.contains("<script>\""), "{page}");
        assert!(page.contains("&lt;script&gt;&quot;x&#39;&amp;"));
        assert!(
            page.contains("href=\"/a%20b/%3Cscript%3E%22x%27%26?token=tok\""),
            "{page}"
        );
        assert!(page.contains("2.0 KiB"));
        assert!(page.contains("enctype=\"multipart/form-data\" action=\"/a%20b/?token=tok\""));
    }
}
