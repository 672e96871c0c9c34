//! The per-request service: request hygiene (Host), the internal endpoints, path decoding,
//! authentication and scope, then dispatch by method to [`files`](crate::files),
//! [`write`](crate::write) and [`dav`](crate::dav).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use filegate_core::token::TokenKey;
use filegate_core::{Permissions, Services, VPath};
use http::header::{HeaderValue, ALLOW, HOST};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use crate::auth::{Authn, Identity};
use crate::body::{Body, UploadLimits};
use crate::cache::SmallFileCache;
use crate::error::{HttpError, ALLOWED_METHODS};
use crate::metrics::Metrics;
use crate::{dav, files, internal, paths, write, HttpConfig};

/// The gateway: cheap to clone, one per server, shared by every connection.
#[derive(Clone)]
pub struct Gateway(Arc<Shared>);

struct Shared {
    config: HttpConfig,
    services: Services,
    authn: Authn,
    metrics: Metrics,
    cache: SmallFileCache,
}

/// One authenticated request's target.
pub struct Ctx<'a> {
    pub gw: &'a Gateway,
    pub identity: Identity,
    /// The path as the user sees it (their home is "/").
    pub user_path: VPath,
    /// The same path in the store.
    pub store_path: VPath,
    /// The request target was written with a trailing slash.
    pub trailing_slash: bool,
    pub query: Option<String>,
}

impl Ctx<'_> {
    /// 403 unless the user holds `p` (and, for anything but reading, the credential is not
    /// read-only).
    pub fn require(&self, p: Permissions) -> Result<(), HttpError> {
        let read = (Permissions::READ | Permissions::LIST).contains(p);
        if self.identity.read_only && !read {
            return Err(HttpError::forbidden("this credential is read-only"));
        }
        if !self.identity.principal.can(p) {
            return Err(HttpError::forbidden("permission denied"));
        }
        Ok(())
    }

    /// Maps another user path (a MOVE/COPY destination) into the store, within scope.
    pub fn store_path_of(&self, user_path: &VPath) -> Result<VPath, HttpError> {
        if !self.identity.allows_path(user_path) {
            return Err(HttpError::forbidden("outside the token's scope"));
        }
        self.identity
            .principal
            .home
            .join_under(user_path)
            .map_err(|e| HttpError::bad_request(format!("invalid path: {e}")))
    }

    pub fn storage(&self) -> &Arc<dyn filegate_core::Storage> {
        &self.gw.services().storage
    }

    pub fn upload_limits(&self) -> UploadLimits {
        let c = self.gw.config();
        UploadLimits {
            max_bytes: (c.max_body_bytes > 0).then_some(c.max_body_bytes),
            idle: c.body_idle(),
        }
    }
}

impl Gateway {
    pub fn new(config: HttpConfig, services: Services, key: TokenKey) -> Self {
        let authn = Authn::new(
            services.auth.clone(),
            Arc::clone(&services.accounts),
            key,
            config.credential_cache_entries,
            Duration::from_secs(config.credential_cache_secs),
            config.max_concurrent_logins,
        );
        let cache = SmallFileCache::new(config.small_file_max_bytes, config.small_file_cache_bytes);
        Gateway(Arc::new(Shared {
            config,
            services,
            authn,
            metrics: Metrics::default(),
            cache,
        }))
    }

    pub fn services(&self) -> &Services {
        &self.0.services
    }

    pub fn config(&self) -> &HttpConfig {
        &self.0.config
    }

    pub fn authn(&self) -> &Authn {
        &self.0.authn
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn cache(&self) -> &SmallFileCache {
        &self.0.cache
    }

    /// Answers one request; never fails (errors become responses).
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let method = req.method().clone();
        let resp = match self.route(req, peer).await {
            Ok(r) => r,
            Err(e) => {
                if e.status.is_server_error() {
                    tracing::warn!(%peer, %method, error = %e, "request failed");
                }
                e.into_response()
            }
        };
        self.metrics().record(&method, resp.status());
        resp
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, HttpError> {
        let (parts, body) = req.into_parts();
        let mut body = Some(body);
        let result = self.route_parts(&parts, &mut body, peer).await;
        if result.is_err() {
            if let Some(b) = body.take() {
                // Read what the client is still sending, so it sees the error instead of a
                // reset connection.
                crate::body::drain(b, &parts.headers).await;
            }
        }
        result
    }

    async fn route_parts(
        &self,
        req: &Parts,
        body: &mut Option<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, HttpError> {
        check_head_size(
            req,
            self.config().max_header_bytes,
            self.config().max_headers,
        )?;
        check_host(&req.headers, req.version)?;
        let raw_path = req.uri.path();
        if raw_path == "/_" || raw_path.starts_with("/_/") {
            return internal::handle(self, req, peer).await;
        }
        let target = paths::decode(raw_path)?;
        let method = req.method.clone();
        if method == Method::OPTIONS {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            return Ok(resp);
        }
        let known = [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::POST,
        ];
        let webdav = matches!(method.as_str(), "MKCOL" | "MOVE" | "COPY");
        if !known.contains(&method) && !webdav {
            return Err(HttpError::method_not_allowed(ALLOWED_METHODS));
        }
        let query = req.uri.query().map(str::to_owned);
        let token = paths::query_param(query.as_deref(), "token");
        let identity = self.authn().identify(&req.headers, token).await?;
        if !identity.allows_path(&target.path) {
            return Err(HttpError::forbidden("outside the token's scope"));
        }
        let store_path = identity
            .principal
            .home
            .join_under(&target.path)
            .map_err(|e| HttpError::bad_request(format!("invalid path: {e}")))?;
        let ctx = Ctx {
            gw: self,
            identity,
            user_path: target.path,
            store_path,
            trailing_slash: target.trailing_slash,
            query,
        };
        match method.as_str() {
            "GET" => files::get(&ctx, &req.headers, false).await,
            "HEAD" => files::get(&ctx, &req.headers, true).await,
            "PUT" => write::put(&ctx, req, body).await,
            "POST" => write::post(&ctx, req, body).await,
            "DELETE" => dav::delete(&ctx, &req.headers).await,
            "MKCOL" => dav::mkcol(&ctx, &req.headers).await,
            "MOVE" => dav::move_or_copy(&ctx, &req.headers, true).await,
            "COPY" => dav::move_or_copy(&ctx, &req.headers, false).await,
            _ => Err(HttpError::method_not_allowed(ALLOWED_METHODS)),
        }
    }
}

/// The request head within `max` bytes (counted as on the HTTP/1.1 wire) and `max_fields`
/// fields. hyper's own limits are wider (its read buffer, kept large so request bodies are read
/// in large pieces, and its fixed header array); these are the configured ones.
fn check_head_size(req: &Parts, max: usize, max_fields: usize) -> Result<(), HttpError> {
    if req.headers.len() > max_fields {
        return Err(HttpError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too many header fields",
        ));
    }
    let uri = req.uri.path_and_query().map_or(1, |p| p.as_str().len())
        + req.uri.authority().map_or(0, |a| a.as_str().len() + 8);
    let line = req.method.as_str().len() + uri + 12;
    let fields: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if line + fields + 2 > max {
        return Err(HttpError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large",
        ));
    }
    Ok(())
}

/// RFC 9112 3.2: an HTTP/1.1 request needs exactly one Host field; no version may send two.
/// A present value must be a valid authority (or empty).
fn check_host(headers: &http::HeaderMap, version: Version) -> Result<(), HttpError> {
    let mut hosts = headers.get_all(HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(HttpError::bad_request("more than one Host header"));
    }
    match first {
        None if version == Version::HTTP_11 => Err(HttpError::bad_request(
            "an HTTP/1.1 request needs a Host header",
        )),
        Some(v) if !v.is_empty() => {
            let ok = v
                .to_str()
                .ok()
                .and_then(|s| s.parse::<http::uri::Authority>().ok())
                .is_some_and(|a| !a.as_str().contains('@'));
            if ok {
                Ok(())
            } else {
                Err(HttpError::bad_request("invalid Host header"))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules() {
        let req = |version, hosts: &[&str]| {
            let mut b = Request::builder().version(version).uri("/");
            for h in hosts {
                b = b.header(HOST, *h);
            }
            b.body(()).unwrap()
        };
        let check_host = |r: &Request<()>| super::check_host(r.headers(), r.version());
        assert!(check_host(&req(Version::HTTP_11, &["a:1"])).is_ok());
        assert!(check_host(&req(Version::HTTP_11, &[])).is_err());
        assert!(check_host(&req(Version::HTTP_11, &["a", "a"])).is_err());
        assert!(check_host(&req(Version::HTTP_11, &["a b"])).is_err());
        assert!(check_host(&req(Version::HTTP_11, &["u@a"])).is_err());
        assert!(check_host(&req(Version::HTTP_10, &[])).is_ok());
        assert!(check_host(&req(Version::HTTP_2, &[])).is_ok());
        assert!(check_host(&req(Version::HTTP_2, &["a", "b"])).is_err());
    }
}
