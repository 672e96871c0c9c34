//! Uploads: PUT (streamed, published atomically, with lost-update protection through If-Match
//! and create-only through `If-None-Match: *`) and the HTML form's multipart POST.

use std::sync::Arc;

use filegate_core::{BodyStream, Permissions, Precondition, StoreError, WriteMode};
use futures::StreamExt as _;
use http::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HOST,
    IF_MATCH, IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LOCATION, ORIGIN,
};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use crate::body::{upload_stream, Body, BodyError, Leftover};
use crate::error::{HttpError, Op};
use crate::paths::{encode_query_value, href};
use crate::preconditions::{self, TagList, Verdict};
use crate::routing::Ctx;

/// The request body, taken once.
fn take_body(body: &mut Option<Incoming>) -> Result<Incoming, HttpError> {
    body.take()
        .ok_or_else(|| HttpError::internal("request body already taken"))
}

/// 413 now if the declared length is over the cap.
fn check_declared_length(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<(), HttpError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    match (ctx.upload_limits().max_bytes, declared) {
        (Some(max), Some(n)) if n > max => Err(HttpError::payload_too_large()),
        _ => Ok(()),
    }
}

fn body_stream(ctx: &Ctx<'_>, body: Incoming, leftover: Option<Leftover>) -> BodyStream {
    upload_stream(
        body,
        ctx.upload_limits(),
        Arc::clone(&ctx.gw.metrics().received),
        leftover,
    )
}

pub async fn put(
    ctx: &Ctx<'_>,
    req: &Parts,
    body: &mut Option<Incoming>,
) -> Result<Response<Body>, HttpError> {
    ctx.require(Permissions::WRITE)?;
    let headers = &req.headers;
    if headers.contains_key(CONTENT_RANGE) {
        // RFC 9110 14.5: partial PUT is not supported; never treat it as a whole replacement.
        return Err(HttpError::bad_request(
            "PUT with Content-Range is not supported",
        ));
    }
    if ctx.user_path.is_root() || ctx.trailing_slash {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "cannot PUT a directory",
        ));
    }
    check_declared_length(ctx, headers)?;
    // A missing parent is found before the body is taken, so the client gets its 409.
    if let Some(parent) = ctx.store_path.parent() {
        match ctx.storage().stat(&parent).await {
            Ok(e) if e.is_dir() => {}
            Ok(_) | Err(StoreError::NotFound) | Err(StoreError::NotADirectory) => {
                return Err(HttpError::from_store(StoreError::NotFound, Op::Write));
            }
            Err(e) => return Err(HttpError::from_store(e, Op::Write)),
        }
    }
    let precondition = put_precondition(ctx, headers).await?;
    let leftover = Leftover::default();
    let body = body_stream(ctx, take_body(body)?, Some(Arc::clone(&leftover)));
    let written = ctx
        .storage()
        .write(&ctx.store_path, WriteMode::Replace, precondition, body)
        .await;
    let outcome = match written {
        Ok(outcome) => outcome,
        Err(e) => {
            // The store stopped reading mid-body (a full disk, say): read the rest so the
            // client sees the answer rather than a reset.
            let rest = leftover.lock().ok().and_then(|mut slot| slot.take());
            if let Some(rest) = rest {
                crate::body::drain_unread(rest).await;
            }
            return Err(HttpError::from_store(e, Op::Write));
        }
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    };
    if let Ok(v) = HeaderValue::from_str(&preconditions::etag(&outcome.entry)) {
        resp.headers_mut().insert(ETAG, v);
    }
    if outcome.created {
        if let Ok(v) = HeaderValue::from_str(&href(&ctx.user_path, false)) {
            resp.headers_mut().insert(LOCATION, v);
        }
    }
    Ok(resp)
}

/// Evaluates the conditional headers of a PUT against the current version and turns what must
/// still hold at publish time into the store's atomic precondition.
async fn put_precondition(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Precondition, HttpError> {
    let has_if_match = headers.contains_key(IF_MATCH);
    let has_ius = headers.contains_key(IF_UNMODIFIED_SINCE);
    let inm = preconditions::tag_list(headers, &IF_NONE_MATCH);
    if !has_if_match && !has_ius && inm.is_none() {
        return Ok(Precondition::None);
    }
    let current = match ctx.storage().stat(&ctx.store_path).await {
        Ok(e) => Some(e),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(HttpError::from_store(e, Op::Write)),
    };
    if preconditions::evaluate(headers, false, current.as_ref()) == Verdict::Failed {
        return Err(HttpError::precondition_failed());
    }
    let if_match_any = matches!(
        preconditions::tag_list(headers, &IF_MATCH),
        Some(Ok(TagList::Any))
    );
    Ok(match current {
        // The version the client saw must still be the one replaced (lost-update protection).
        Some(_) if if_match_any => Precondition::MustExist,
        Some(e) if has_if_match || has_ius => Precondition::MustMatch(e.tag),
        // "If-None-Match: *": create only, checked again at publish time.
        None if matches!(inm, Some(Ok(TagList::Any))) => Precondition::MustNotExist,
        _ => Precondition::None,
    })
}

#[derive(Serialize)]
struct Stored {
    name: String,
    size: u64,
    etag: String,
}

/// The HTML form's upload: a multipart POST to a directory; each file part is streamed into
/// the store under its (base) file name.
pub async fn post(
    ctx: &Ctx<'_>,
    req: &Parts,
    body: &mut Option<Incoming>,
) -> Result<Response<Body>, HttpError> {
    let headers = &req.headers;
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST takes multipart/form-data (an upload form)",
        ));
    }
    ctx.require(Permissions::WRITE)?;
    check_origin(headers, req.uri.authority().map(|a| a.as_str()))?;
    check_declared_length(ctx, headers)?;
    let dir = ctx
        .storage()
        .stat(&ctx.store_path)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Read))?;
    if !dir.is_dir() {
        return Err(HttpError::method_not_allowed(
            "GET, HEAD, PUT, DELETE, MOVE, COPY, OPTIONS",
        ));
    }
    let boundary =
        multer::parse_boundary(ct).map_err(|_| HttpError::bad_request("no multipart boundary"))?;
    let browser = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut form = multer::Multipart::new(body_stream(ctx, take_body(body)?, None), boundary);
    let mut stored = Vec::new();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let Some(raw_name) = field.file_name() else {
            continue; // not a file
        };
        // Browsers send the base name; older ones a whole client path: keep its last part.
        let name = raw_name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        if name.is_empty() {
            continue; // the form was sent with no file chosen
        }
        if name == "." || name == ".." {
            return Err(HttpError::bad_request("invalid file name"));
        }
        let invalid =
            |e: filegate_core::PathError| HttpError::bad_request(format!("invalid file name: {e}"));
        let user_path = ctx.user_path.child(&name).map_err(invalid)?;
        let store_path = ctx.store_path_of(&user_path)?;
        let data: BodyStream = Box::pin(field.map(|r| r.map_err(std::io::Error::other)));
        let outcome = ctx
            .storage()
            .write(&store_path, WriteMode::Replace, Precondition::None, data)
            .await
            .map_err(|e| HttpError::from_store(e, Op::Write))?;
        stored.push(Stored {
            name,
            size: outcome.entry.size,
            etag: preconditions::etag(&outcome.entry),
        });
    }
    if stored.is_empty() {
        return Err(HttpError::bad_request("the form held no file"));
    }
    if browser {
        // Back to the listing, which now shows the files (303: GET it).
        let mut location = href(&ctx.user_path, true);
        if let Some(t) = &ctx.identity.query_token {
            location.push_str("?token=");
            location.push_str(&encode_query_value(t));
        }
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(LOCATION, v);
        }
        return Ok(resp);
    }
    let mut json = serde_json::to_vec_pretty(&serde_json::json!({ "stored": stored }))
        .map_err(|e| HttpError::internal(e.to_string()))?;
    json.push(b'\n');
    let mut resp = Response::new(Body::full(json));
    *resp.status_mut() = StatusCode::CREATED;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

fn multipart_error(e: multer::Error) -> HttpError {
    match BodyError::find(&e) {
        Some(BodyError::TooLarge) => HttpError::payload_too_large(),
        Some(BodyError::Timeout) => {
            HttpError::new(StatusCode::REQUEST_TIMEOUT, "request body stalled")
        }
        _ => HttpError::bad_request(format!("malformed multipart body: {e}")),
    }
}

/// A form POST from another site (a browser sends its Origin) is refused: the browser may hold
/// this site's Basic credentials.
fn check_origin(headers: &HeaderMap, authority: Option<&str>) -> Result<(), HttpError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null");
    let origin_authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or(authority);
    match (origin_authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(HttpError::forbidden("cross-origin form posts are refused")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let h = |origin: Option<&str>, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                m.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            check_origin(&m, None).is_ok()
        };
        assert!(h(None, "a:1"));
        assert!(h(Some("http://a:1"), "a:1"));
        assert!(h(Some("http://A:1"), "a:1"));
        assert!(!h(Some("http://evil:1"), "a:1"));
        assert!(!h(Some("null"), "a:1"));
    }
}
