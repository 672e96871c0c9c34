//! The gateway's own endpoints under `/_/`: health, Prometheus metrics (loopback only unless
//! configured otherwise), minting tokens (`POST /_/token`) and revoking all of one's tokens
//! (`POST /_/revoke`), both with Basic credentials.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use filegate_core::token::{self, IssueRequest, TokenError};
use filegate_core::VPath;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use crate::body::Body;
use crate::error::HttpError;
use crate::listing::rfc3339;
use crate::paths::{encode_query_value, href, query_param};
use crate::routing::Gateway;

pub async fn handle(
    gw: &Gateway,
    req: &Parts,
    peer: SocketAddr,
) -> Result<Response<Body>, HttpError> {
    let path = req.uri.path();
    let method = &req.method;
    let read = method == Method::GET || method == Method::HEAD;
    match path {
        "/_/health" if read => health(gw, method == Method::HEAD).await,
        "/_/metrics" if read => metrics(gw, peer, method == Method::HEAD).await,
        "/_/token" if method == Method::POST => mint(gw, req).await,
        "/_/revoke" if method == Method::POST => revoke(gw, req).await,
        "/_/health" | "/_/metrics" => Err(HttpError::method_not_allowed("GET, HEAD")),
        "/_/token" | "/_/revoke" => Err(HttpError::method_not_allowed("POST")),
        _ => Err(HttpError::not_found()),
    }
}

fn text(status: StatusCode, ct: &'static str, body: String, head: bool) -> Response<Body> {
    let len = body.len();
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::full(body)
    });
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn health(gw: &Gateway, head: bool) -> Result<Response<Body>, HttpError> {
    match gw.services().storage.stat(&VPath::root()).await {
        Ok(_) => Ok(text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok\n".into(),
            head,
        )),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "store unavailable\n".into(),
                head,
            ))
        }
    }
}

async fn metrics(gw: &Gateway, peer: SocketAddr, head: bool) -> Result<Response<Body>, HttpError> {
    let loopback = peer.ip().is_loopback()
        || match peer.ip() {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
            std::net::IpAddr::V4(_) => false,
        };
    if !loopback && !gw.config().metrics_public {
        return Err(HttpError::forbidden(
            "metrics are served to loopback clients only",
        ));
    }
    let usage = match gw.services().storage.usage().await {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!(error = %e, "store usage unavailable for metrics");
            None
        }
    };
    let body = gw.metrics().render(&gw.services().gauges, usage);
    Ok(text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        body,
        head,
    ))
}

fn flag(v: Option<String>) -> Result<bool, HttpError> {
    match v.as_deref() {
        None | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("") | Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(_) => Err(HttpError::bad_request("read_only must be true or false")),
    }
}

/// `POST /_/revoke` with Basic credentials: every token the caller holds stops working (the
/// same generation bump as `filegate token revoke`, for a running server).
async fn revoke(gw: &Gateway, req: &Parts) -> Result<Response<Body>, HttpError> {
    let principal = gw.authn().basic_only(&req.headers).await?;
    if principal.anonymous {
        return Err(HttpError::forbidden("anonymous users have no tokens"));
    }
    let generation = token::revoke(&**gw.authn().accounts(), &principal.name)
        .await
        .map_err(|e| match e {
            TokenError::Store(s) => HttpError::from_store(s, crate::error::Op::Write),
            TokenError::UnknownUser => HttpError::unauthorized("login incorrect", false),
            other => HttpError::bad_request(other.to_string()),
        })?;
    let body = serde_json::json!({ "user": principal.name, "token_generation": generation });
    let mut text_body =
        serde_json::to_string_pretty(&body).map_err(|e| HttpError::internal(e.to_string()))?;
    text_body.push('\n');
    Ok(text(StatusCode::OK, "application/json", text_body, false))
}

/// `POST /_/token?ttl=1h&read_only=true&prefix=/dir` with Basic credentials: a signed token
/// for the caller, as JSON.
async fn mint(gw: &Gateway, req: &Parts) -> Result<Response<Body>, HttpError> {
    let principal = gw.authn().basic_only(&req.headers).await?;
    if principal.anonymous {
        return Err(HttpError::forbidden("anonymous users cannot get tokens"));
    }
    let q = req.uri.query();
    let ttl = match query_param(q, "ttl") {
        Some(t) => token::parse_ttl(&t).map_err(|e| HttpError::bad_request(e.to_string()))?,
        None => Duration::from_secs(3600),
    };
    if ttl > Duration::from_secs(gw.config().token_max_ttl_secs) {
        return Err(HttpError::bad_request(format!(
            "ttl longer than the configured maximum of {} seconds",
            gw.config().token_max_ttl_secs
        )));
    }
    let read_only = flag(query_param(q, "read_only"))?;
    let prefix = query_param(q, "prefix").filter(|p| !p.is_empty());
    let request = IssueRequest {
        ttl,
        read_only,
        prefix,
    };
    let (tok, claims) = token::issue_for_user(
        &**gw.authn().accounts(),
        &principal.name,
        &request,
        SystemTime::now(),
    )
    .await
    .map_err(|e| match e {
        TokenError::Store(s) => HttpError::from_store(s, crate::error::Op::Read),
        TokenError::UnknownUser => HttpError::unauthorized("login incorrect", false),
        other => HttpError::bad_request(other.to_string()),
    })?;
    let share_path = claims.prefix.clone().unwrap_or_else(VPath::root);
    let share = format!(
        "{}?token={}",
        href(&share_path, false),
        encode_query_value(&tok)
    );
    let body = serde_json::json!({
        "token": tok,
        "user": claims.user,
        "expires": claims.expires,
        "expires_at": rfc3339(claims.expires_at()),
        "read_only": claims.read_only,
        "prefix": claims.prefix.as_ref().map(|p| p.as_str()),
        "share_path": share,
    });
    let mut text_body =
        serde_json::to_string_pretty(&body).map_err(|e| HttpError::internal(e.to_string()))?;
    text_body.push('\n');
    Ok(text(StatusCode::OK, "application/json", text_body, false))
}
