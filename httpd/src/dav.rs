//! DELETE, MKCOL, MOVE and COPY (the WebDAV verbs of RFC 4918 that curl users reach for; no
//! properties, no locks).

use filegate_core::{Permissions, Precondition, StoreError, VPath, WriteMode};
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, LOCATION, TRANSFER_ENCODING};
use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{HttpError, Op};
use crate::paths::{self, href};
use crate::preconditions::{self, Verdict};
use crate::routing::Ctx;

/// Most entries one directory COPY copies.
const MAX_COPY_ENTRIES: usize = 10_000;

fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    resp
}

/// DELETE of a file, or of an empty directory (409 if not empty).
pub async fn delete(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response<Body>, HttpError> {
    ctx.require(Permissions::DELETE)?;
    if ctx.user_path.is_root() {
        return Err(HttpError::forbidden("cannot delete the root"));
    }
    let storage = ctx.storage();
    let entry = storage
        .stat(&ctx.store_path)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Read))?;
    if preconditions::evaluate(headers, false, Some(&entry)) == Verdict::Failed {
        return Err(HttpError::precondition_failed());
    }
    let r = if entry.is_dir() {
        storage.rmdir(&ctx.store_path).await
    } else {
        storage.delete(&ctx.store_path).await
    };
    r.map_err(|e| HttpError::from_store(e, Op::Read))?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// MKCOL: a new directory; 405 if something is there, 409 if the parent is missing.
pub async fn mkcol(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response<Body>, HttpError> {
    ctx.require(Permissions::MKDIR)?;
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "MKCOL takes no body",
        ));
    }
    if ctx.user_path.is_root() {
        return Err(HttpError::method_not_allowed(crate::error::ALLOWED_METHODS));
    }
    ctx.storage()
        .mkdir(&ctx.store_path)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Mkcol))?;
    let mut resp = status(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(&href(&ctx.user_path, true)) {
        resp.headers_mut().insert(LOCATION, v);
    }
    Ok(resp)
}

/// The path of a Destination header: an absolute URI or an absolute path.
fn destination_path(value: &str) -> Result<&str, HttpError> {
    let bad = || HttpError::bad_request("invalid Destination header");
    let rest = if let Some(r) = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
    {
        // Skip the authority.
        match r.find('/') {
            Some(i) => &r[i..],
            None => "/",
        }
    } else if value.starts_with('/') {
        value
    } else {
        return Err(bad());
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Ok(&rest[..end])
}

/// MOVE (the store's atomic rename) and COPY, with `Destination` and `Overwrite`.
pub async fn move_or_copy(
    ctx: &Ctx<'_>,
    headers: &HeaderMap,
    is_move: bool,
) -> Result<Response<Body>, HttpError> {
    if is_move {
        ctx.require(Permissions::RENAME)?;
    } else {
        ctx.require(Permissions::READ)?;
        ctx.require(Permissions::WRITE)?;
    }
    let dest_raw = headers
        .get("destination")
        .ok_or_else(|| HttpError::bad_request("a Destination header is required"))?
        .to_str()
        .map_err(|_| HttpError::bad_request("invalid Destination header"))?;
    let dest_user = paths::decode(destination_path(dest_raw.trim())?)?.path;
    let dest = ctx.store_path_of(&dest_user)?;
    let overwrite = match headers.get("overwrite").map(|v| v.as_bytes()) {
        None | Some(b"T") | Some(b"t") => true,
        Some(b"F") | Some(b"f") => false,
        Some(_) => return Err(HttpError::bad_request("Overwrite must be T or F")),
    };
    if ctx.user_path.is_root() || dest_user.is_root() {
        return Err(HttpError::forbidden(
            "cannot move or copy onto or from the root",
        ));
    }
    if dest == ctx.store_path {
        return Err(HttpError::forbidden("source and destination are the same"));
    }
    let storage = ctx.storage();
    let src = storage
        .stat(&ctx.store_path)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Read))?;
    if preconditions::evaluate(headers, false, Some(&src)) == Verdict::Failed {
        return Err(HttpError::precondition_failed());
    }
    let existed = match storage.stat(&dest).await {
        Ok(_) => true,
        Err(StoreError::NotFound) | Err(StoreError::NotADirectory) => false,
        Err(e) => return Err(HttpError::from_store(e, Op::Write)),
    };
    if existed && !overwrite {
        return Err(HttpError::precondition_failed());
    }
    if src.is_dir() && dest.starts_with(&ctx.store_path) {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "cannot move or copy a directory into itself",
        ));
    }
    if is_move {
        storage
            .rename(&ctx.store_path, &dest, overwrite)
            .await
            .map_err(|e| HttpError::from_store(e, Op::Write))?;
    } else if src.is_dir() {
        if existed {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                "COPY of a directory onto an existing one is not supported",
            ));
        }
        ctx.require(Permissions::MKDIR)?;
        copy_tree(ctx, &ctx.store_path, &dest).await?;
    } else {
        copy_file(ctx, &ctx.store_path, &dest, overwrite).await?;
    }
    let mut resp = status(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    });
    if !existed {
        if let Ok(v) = HeaderValue::from_str(&href(&dest_user, src.is_dir())) {
            resp.headers_mut().insert(LOCATION, v);
        }
    }
    Ok(resp)
}

async fn copy_file(
    ctx: &Ctx<'_>,
    from: &VPath,
    to: &VPath,
    overwrite: bool,
) -> Result<(), HttpError> {
    let storage = ctx.storage();
    let h = storage
        .read(from, 0, None)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Read))?;
    let pre = if overwrite {
        Precondition::None
    } else {
        Precondition::MustNotExist
    };
    storage
        .write(to, WriteMode::Replace, pre, h.body)
        .await
        .map_err(|e| HttpError::from_store(e, Op::Write))?;
    Ok(())
}

/// Copies a directory tree breadth-first into a new directory `to`.
async fn copy_tree(ctx: &Ctx<'_>, from: &VPath, to: &VPath) -> Result<(), HttpError> {
    let storage = ctx.storage();
    let mut queue = vec![(from.clone(), to.clone())];
    let mut copied = 0usize;
    while let Some((src, dst)) = queue.pop() {
        storage
            .mkdir(&dst)
            .await
            .map_err(|e| HttpError::from_store(e, Op::Write))?;
        let entries = storage
            .list(&src)
            .await
            .map_err(|e| HttpError::from_store(e, Op::Read))?;
        for e in entries {
            copied += 1;
            if copied > MAX_COPY_ENTRIES {
                return Err(HttpError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "directory too large to copy in one request",
                ));
            }
            let invalid = |e: filegate_core::PathError| HttpError::internal(e.to_string());
            let (s, d) = (
                src.child(&e.name).map_err(invalid)?,
                dst.child(&e.name).map_err(invalid)?,
            );
            if e.is_dir() {
                queue.push((s, d));
            } else {
                copy_file(ctx, &s, &d, false).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(destination_path("http://h:1/a/b?x#y").unwrap(), "/a/b");
        assert_eq!(destination_path("https://h").unwrap(), "/");
        assert_eq!(destination_path("/a%20b").unwrap(), "/a%20b");
        assert!(destination_path("a/b").is_err());
        assert!(destination_path("ftp://h/a").is_err());
    }
}
