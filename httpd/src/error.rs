//! Errors as HTTP responses, and the one place where store errors become status codes.

use std::borrow::Cow;

use filegate_core::StoreError;
use http::header::{HeaderValue, ALLOW, CONTENT_RANGE, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::Body;

/// The methods the gateway implements, for `Allow` headers.
pub const ALLOWED_METHODS: &str = "GET, HEAD, PUT, DELETE, MKCOL, MOVE, COPY, POST, OPTIONS";

/// A request that ends in an error response.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    /// Extra headers this status needs (WWW-Authenticate, Allow, Content-Range).
    extra: Extra,
}

#[derive(Debug, Clone)]
enum Extra {
    None,
    /// 401: which challenge to send.
    Challenge {
        bearer_error: bool,
    },
    /// 405: the methods the resource allows.
    Allow(&'static str),
    /// 416: the representation's length.
    Unsatisfiable(u64),
}

/// What the failing store call was doing, where that changes the status: a missing parent
/// directory is a 409 for a write but a 404 for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// GET, HEAD, a listing, the source of MOVE/COPY, DELETE.
    Read,
    /// PUT, a form upload, the destination of MOVE/COPY.
    Write,
    /// MKCOL.
    Mkcol,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        HttpError {
            status,
            message: message.into(),
            extra: Extra::None,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no such file or directory")
    }

    pub fn precondition_failed() -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "precondition failed")
    }

    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    }

    /// 401 with a Basic and a Bearer challenge; `bearer_error` marks a token that was refused.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>, bearer_error: bool) -> Self {
        HttpError {
            extra: Extra::Challenge { bearer_error },
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    /// 405 with the methods this resource allows.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        HttpError {
            extra: Extra::Allow(allow),
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
    }

    /// 416 for a representation of `len` bytes.
    pub fn range_not_satisfiable(len: u64) -> Self {
        HttpError {
            extra: Extra::Unsatisfiable(len),
            ..Self::new(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
        }
    }

    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The mapping from store errors to statuses: the only one in the gateway.
    pub fn from_store(e: StoreError, op: Op) -> Self {
        use StatusCode as S;
        let (status, msg): (StatusCode, Cow<'static, str>) = match (&e, op) {
            (StoreError::NotFound, Op::Read) => (S::NOT_FOUND, "no such file or directory".into()),
            (StoreError::NotFound, _) => {
                (S::CONFLICT, "the parent directory does not exist".into())
            }
            (StoreError::AlreadyExists, Op::Mkcol) => {
                return Self::method_not_allowed(ALLOWED_METHODS);
            }
            (StoreError::AlreadyExists, _) => {
                (S::PRECONDITION_FAILED, "the destination exists".into())
            }
            (StoreError::NotADirectory, Op::Read) => {
                (S::NOT_FOUND, "no such file or directory".into())
            }
            (StoreError::NotADirectory, _) => (S::CONFLICT, "a parent is not a directory".into()),
            (StoreError::IsADirectory, _) => (S::CONFLICT, "is a directory".into()),
            (StoreError::NotEmpty, _) => (S::CONFLICT, "directory not empty".into()),
            (StoreError::PreconditionFailed, _) => {
                (S::PRECONDITION_FAILED, "precondition failed".into())
            }
            (StoreError::Conflict, _) => (S::CONFLICT, "conflicting change".into()),
            (StoreError::OffsetPastEnd { size, .. }, _) => {
                return Self::range_not_satisfiable(*size)
            }
            (StoreError::InvalidPath(p), _) => {
                (S::BAD_REQUEST, format!("invalid path: {p}").into())
            }
            (StoreError::NotPermitted, _) => (S::FORBIDDEN, "operation not permitted".into()),
            (StoreError::StorageFull, _) => {
                (S::INSUFFICIENT_STORAGE, "no space left in the store".into())
            }
            (StoreError::Interrupted(io), _) => return Self::from_body_error(io),
            (StoreError::InUse(_), _)
            | (StoreError::Corrupt(_), _)
            | (StoreError::Io(_), _)
            | (StoreError::Db(_), _) => {
                tracing::error!(error = %e, "store error");
                (S::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        Self::new(status, msg)
    }

    /// An upload whose body failed: too large, too slow, or the client went away.
    pub fn from_body_error(e: &std::io::Error) -> Self {
        match crate::body::BodyError::find(e) {
            Some(crate::body::BodyError::TooLarge) => Self::payload_too_large(),
            Some(crate::body::BodyError::Timeout) => {
                Self::new(StatusCode::REQUEST_TIMEOUT, "request body stalled")
            }
            _ => Self::bad_request("request body interrupted"),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let text = format!(
            "{} {}: {}\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            self.message
        );
        let mut resp = Response::new(Body::full(text));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self.extra {
            Extra::None => {}
            Extra::Challenge { bearer_error } => {
                h.append(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"filegate\", charset=\"UTF-8\""),
                );
                h.append(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(if bearer_error {
                        "Bearer realm=\"filegate\", error=\"invalid_token\""
                    } else {
                        "Bearer realm=\"filegate\""
                    }),
                );
            }
            Extra::Allow(allow) => {
                h.insert(ALLOW, HeaderValue::from_static(allow));
            }
            Extra::Unsatisfiable(len) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    h.insert(CONTENT_RANGE, v);
                }
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_by_operation() {
        let s = |e, op| HttpError::from_store(e, op).status;
        assert_eq!(s(StoreError::NotFound, Op::Read), StatusCode::NOT_FOUND);
        assert_eq!(s(StoreError::NotFound, Op::Write), StatusCode::CONFLICT);
        assert_eq!(s(StoreError::NotFound, Op::Mkcol), StatusCode::CONFLICT);
        assert_eq!(
            s(StoreError::AlreadyExists, Op::Mkcol),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            s(StoreError::AlreadyExists, Op::Write),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(s(StoreError::NotEmpty, Op::Read), StatusCode::CONFLICT);
        assert_eq!(
            s(StoreError::PreconditionFailed, Op::Write),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            s(StoreError::StorageFull, Op::Write),
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            s(StoreError::OffsetPastEnd { offset: 9, size: 3 }, Op::Read),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        let r = HttpError::range_not_satisfiable(42).into_response();
        assert_eq!(r.headers()[CONTENT_RANGE], "bytes */42");
        let r = HttpError::unauthorized("x", false).into_response();
        assert_eq!(r.headers().get_all(WWW_AUTHENTICATE).iter().count(), 2);
    }
}
