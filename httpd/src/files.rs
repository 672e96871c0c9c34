//! GET and HEAD: files streamed from the store with validators (ETag, Last-Modified), ranges
//! (one part or multipart/byteranges), conditional requests; directories as listings.

use bytes::Bytes;
use filegate_core::{Entry, Permissions, ReadHandle, StoreError};
use http::header::{
    HeaderMap, HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, LAST_MODIFIED, RANGE, VARY,
};
use http::{Response, StatusCode};

use crate::body::{self, Body};
use crate::error::{HttpError, Op};
use crate::listing::{self, Format, PageOptions};
use crate::preconditions::{self, Verdict};
use crate::ranges::{self, ByteRange, Resolved};
use crate::routing::Ctx;

/// Tries before giving up on a file that changes between stat and open.
const ATTEMPTS: usize = 4;

pub async fn get(
    ctx: &Ctx<'_>,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response<Body>, HttpError> {
    let storage = ctx.storage();
    let wants_range = !head && headers.contains_key(RANGE);
    if !head && !wants_range && ctx.identity.principal.can(Permissions::READ) {
        // A small file seen before: a stat (no open, no read) and the bytes from memory.
        if ctx.gw.cache().admits(0) {
            let entry = storage
                .stat(&ctx.store_path)
                .await
                .map_err(|e| HttpError::from_store(e, Op::Read))?;
            if entry.is_dir() {
                return listing(ctx, headers, head).await;
            }
            if let Some((data, cached_headers)) = ctx.gw.cache().get(&ctx.store_path, &entry.tag) {
                return match preconditions::evaluate(headers, true, Some(&entry)) {
                    Verdict::Proceed => {
                        let mut resp = Response::new(Body::full(data));
                        *resp.headers_mut() = cached_headers;
                        Ok(resp)
                    }
                    Verdict::NotModified => Ok(not_modified(&entry)),
                    Verdict::Failed => Err(HttpError::precondition_failed()),
                };
            }
        }
        // Otherwise one store call: open, then decide.
        return match storage.read(&ctx.store_path, 0, None).await {
            Ok(h) => match preconditions::evaluate(headers, true, Some(&h.entry)) {
                Verdict::Proceed if ctx.gw.cache().admits(h.entry.size) => {
                    let entry = h.entry.clone();
                    let data = collect(h.body, entry.size).await?;
                    let resp = from_memory(&entry, data.clone());
                    ctx.gw.cache().insert(
                        &ctx.store_path,
                        &entry.tag,
                        data,
                        resp.headers().clone(),
                    );
                    Ok(resp)
                }
                Verdict::Proceed => Ok(whole(h)),
                Verdict::NotModified => Ok(not_modified(&h.entry)),
                Verdict::Failed => Err(HttpError::precondition_failed()),
            },
            Err(StoreError::IsADirectory) => listing(ctx, headers, head).await,
            Err(e) => Err(HttpError::from_store(e, Op::Read)),
        };
    }
    for _ in 0..ATTEMPTS {
        let entry = storage
            .stat(&ctx.store_path)
            .await
            .map_err(|e| HttpError::from_store(e, Op::Read))?;
        if entry.is_dir() {
            return listing(ctx, headers, head).await;
        }
        ctx.require(Permissions::READ)?;
        match preconditions::evaluate(headers, true, Some(&entry)) {
            Verdict::Proceed => {}
            Verdict::NotModified => return Ok(not_modified(&entry)),
            Verdict::Failed => return Err(HttpError::precondition_failed()),
        }
        if head {
            let mut resp = Response::new(Body::empty());
            file_headers(resp.headers_mut(), &entry);
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(entry.size));
            return Ok(resp);
        }
        let resolved = match headers
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(ranges::parse)
        {
            Some(specs) if preconditions::if_range_holds(headers, &entry) => {
                ranges::resolve(&specs, entry.size)
            }
            _ => Resolved::Full,
        };
        let read = |start: u64, len: Option<u64>| async move {
            storage
                .read(&ctx.store_path, start, len)
                .await
                .map_err(|e| HttpError::from_store(e, Op::Read))
        };
        match resolved {
            Resolved::Unsatisfiable => return Err(HttpError::range_not_satisfiable(entry.size)),
            Resolved::Full => {
                let h = read(0, None).await?;
                if h.entry.tag == entry.tag {
                    return Ok(whole(h));
                }
            }
            Resolved::Single(r) => {
                let h = read(r.start, Some(r.len())).await?;
                if h.entry.tag == entry.tag {
                    return Ok(single(h, r));
                }
            }
            Resolved::Multi(rs) => {
                let mut handles = Vec::with_capacity(rs.len());
                for r in &rs {
                    handles.push(read(r.start, Some(r.len())).await?);
                }
                if handles.iter().all(|h| h.entry.tag == entry.tag) {
                    return Ok(multi(&entry, rs, handles));
                }
            }
        }
        // The file was replaced between the stat and the open: start over with the new one.
    }
    Err(HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the file keeps changing; try again",
    ))
}

/// A small file's body whole in memory (at most `size` bytes are taken).
async fn collect(mut body: filegate_core::ByteStream, size: u64) -> Result<Bytes, HttpError> {
    use futures::StreamExt as _;
    let failed = |e: std::io::Error| {
        tracing::error!(error = %e, "reading a small file failed");
        HttpError::internal("read failed")
    };
    let Some(first) = body.next().await.transpose().map_err(failed)? else {
        return Ok(Bytes::new());
    };
    if first.len() as u64 >= size {
        return Ok(first);
    }
    let mut buf = bytes::BytesMut::from(&first[..]);
    while let Some(chunk) = body.next().await.transpose().map_err(failed)? {
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 >= size {
            break;
        }
    }
    Ok(buf.freeze())
}

fn from_memory(entry: &Entry, data: Bytes) -> Response<Body> {
    let len = data.len() as u64;
    let mut resp = Response::new(Body::full(data));
    file_headers(resp.headers_mut(), entry);
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Headers every file response carries.
fn file_headers(h: &mut HeaderMap, entry: &Entry) {
    validators(h, entry);
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_TYPE, content_type(&entry.name));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // Stored HTML must not run scripts with the gateway's origin (and the user's credentials).
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("sandbox"),
    );
}

fn validators(h: &mut HeaderMap, entry: &Entry) {
    if let Ok(v) = HeaderValue::from_str(&preconditions::etag(entry)) {
        h.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&preconditions::last_modified(entry)) {
        h.insert(LAST_MODIFIED, v);
    }
}

fn content_type(name: &str) -> HeaderValue {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let text = if mime.type_() == mime_guess::mime::TEXT && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

fn not_modified(entry: &Entry) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    validators(resp.headers_mut(), entry);
    resp
}

/// Reads at least this long of a local file are sent with sendfile (HTTP/1.x) or read in
/// large pieces (HTTP/2) instead of through the store's stream.
const DIRECT_READ_MIN: u64 = 256 * 1024;

/// The body of a read handle.
fn handle_body(h: ReadHandle) -> Body {
    match h.local_file {
        Some(file) if h.len >= DIRECT_READ_MIN => {
            drop(h.body); // the file's cursor is ours alone now
            Body::local_file(file, h.offset, h.len)
        }
        _ => Body::stream(h.body, Some(h.len)),
    }
}

fn whole(h: ReadHandle) -> Response<Body> {
    let len = h.len;
    let entry = h.entry.clone();
    let mut resp = Response::new(handle_body(h));
    file_headers(resp.headers_mut(), &entry);
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

fn single(h: ReadHandle, r: ByteRange) -> Response<Body> {
    let entry = h.entry.clone();
    let total = entry.size;
    let mut resp = Response::new(handle_body(h));
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    let hm = resp.headers_mut();
    file_headers(hm, &entry);
    hm.insert(CONTENT_LENGTH, HeaderValue::from(r.len()));
    if let Ok(v) = HeaderValue::from_str(&r.content_range(total)) {
        hm.insert(CONTENT_RANGE, v);
    }
    resp
}

/// multipart/byteranges (RFC 9110 14.6): a part header, then the bytes, for each range.
fn multi(entry: &Entry, rs: Vec<ByteRange>, handles: Vec<ReadHandle>) -> Response<Body> {
    let boundary = format!("filegate-{:016x}", rand::random::<u64>());
    let ct = content_type(&entry.name);
    let ct = ct.to_str().unwrap_or("application/octet-stream");
    let mut parts = Vec::with_capacity(rs.len() * 2 + 1);
    let mut total = 0u64;
    for (i, (r, h)) in rs.iter().zip(handles).enumerate() {
        let head = format!(
            "{}--{boundary}\r\nContent-Type: {ct}\r\nContent-Range: {}\r\n\r\n",
            if i == 0 { "" } else { "\r\n" },
            r.content_range(entry.size)
        );
        total += head.len() as u64 + r.len();
        parts.push(body::once(Bytes::from(head)));
        parts.push(h.body);
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    total += tail.len() as u64;
    parts.push(body::once(Bytes::from(tail)));
    let mut resp = Response::new(Body::stream(body::chain(parts), Some(total)));
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    let hm = resp.headers_mut();
    validators(hm, entry);
    hm.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    hm.insert(CONTENT_LENGTH, HeaderValue::from(total));
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")) {
        hm.insert(CONTENT_TYPE, v);
    }
    resp
}

async fn listing(
    ctx: &Ctx<'_>,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response<Body>, HttpError> {
    ctx.require(Permissions::LIST)?;
    let entries = ctx
        .storage()
        .list(&ctx.store_path)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Read))?;
    let (ct, data) = match listing::format(headers, ctx.query.as_deref()) {
        Format::Json => ("application/json", listing::json(&ctx.user_path, &entries)),
        Format::Html => {
            let opts = PageOptions {
                can_upload: !ctx.identity.read_only
                    && ctx.identity.principal.can(Permissions::WRITE),
                token: ctx.identity.query_token.as_deref(),
            };
            (
                "text/html; charset=utf-8",
                listing::html(&ctx.user_path, &entries, &opts).into_bytes(),
            )
        }
    };
    let len = data.len() as u64;
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::full(data)
    });
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(VARY, HeaderValue::from_static("Accept"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}
