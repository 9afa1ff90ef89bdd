//! The error reply and the errors a request can end with.

use std::fmt;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::code::{Code, CommonCode, ErrorCode, NoCode};

/// A request that failed, as the service reports it: the `error` object of
/// the reply body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError<C = NoCode> {
    /// Stable machine-readable code.
    pub code: ErrorCode<C>,
    /// HTTP-like status (see [`Code::status`]).
    pub status: u16,
    /// What went wrong, for people.
    pub message: String,
    /// Whether sending the same request again (after re-reading, for a
    /// conflict) may succeed.
    pub retryable: bool,
    /// Code-specific facts, e.g. `{"current_version": 4}`.
    pub details: Value,
}

impl<C: Code> ApiError<C> {
    /// An error with the code's status, no details, not retryable.
    pub fn new(code: impl Into<ErrorCode<C>>, message: impl Into<String>) -> Self {
        let code = code.into();
        Self { status: code.status(), code, message: message.into(), retryable: false, details: Value::Null }
    }

    /// An error with one of the API's own codes.
    pub fn api(code: C, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Api(code), message)
    }

    /// Adds code-specific facts.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Marks the error as worth retrying.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// 400 `bad_request`: the body is not what the endpoint takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(CommonCode::BadRequest, message)
    }

    /// 403 `forbidden`: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(CommonCode::Forbidden, message)
    }

    /// 413 `payload_too_large`, naming the size and the limit.
    pub fn payload_too_large(size: usize, limit: usize) -> Self {
        Self::new(CommonCode::PayloadTooLarge, format!("the request is {size} bytes; the limit is {limit}"))
            .with_details(serde_json::json!({ "size": size, "limit": limit }))
    }

    /// 503 `unavailable`: a dependency failed; retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(CommonCode::Unavailable, message).retryable()
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(CommonCode::Internal, message)
    }

    /// Whether the code is the API's `code`.
    pub fn is(&self, code: C) -> bool {
        self.code == ErrorCode::Api(code)
    }

    /// Whether the code is the common `code`.
    pub fn is_common(&self, code: CommonCode) -> bool {
        self.code == ErrorCode::Common(code)
    }

    /// The same error in the wire's untyped form.
    pub fn to_wire(&self) -> WireError {
        WireError {
            code: self.code.as_str().to_owned(),
            status: self.status,
            message: self.message.clone(),
            retryable: self.retryable,
            details: self.details.clone(),
        }
    }

    /// The same error as a client of API `D` decodes it: for an error of
    /// one API passed on by a service of another.
    pub fn retype<D: Code>(&self) -> ApiError<D> {
        self.to_wire().typed()
    }

    /// The reply body and micro-protocol headers carrying this error.
    pub fn to_reply(&self) -> (HeaderMap, Vec<u8>) {
        self.to_wire().to_reply()
    }
}

impl<C: Code> fmt::Display for ApiError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl<C: Code> std::error::Error for ApiError<C> {}

impl<C: Code> Serialize for ApiError<C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(serializer)
    }
}

impl<'de, C: Code> Deserialize<'de> for ApiError<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireError::deserialize(deserializer).map(WireError::typed)
    }
}

/// An error reply with its code as the wire string: what the service
/// runtime sends whatever the endpoint's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// The code.
    pub code: String,
    /// HTTP-like status.
    pub status: u16,
    /// What went wrong.
    pub message: String,
    /// Whether retrying may help.
    #[serde(default)]
    pub retryable: bool,
    /// Code-specific facts.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody<E> {
    error: E,
}

impl WireError {
    /// Decodes the code as API `C` does.
    pub fn typed<C: Code>(self) -> ApiError<C> {
        ApiError {
            code: ErrorCode::parse(&self.code),
            status: self.status,
            message: self.message,
            retryable: self.retryable,
            details: self.details,
        }
    }

    /// The reply body `{"error": {...}}` and the micro-protocol headers.
    pub fn to_reply(&self) -> (HeaderMap, Vec<u8>) {
        let mut headers = HeaderMap::new();
        // Header values are one line.
        headers.insert(NATS_SERVICE_ERROR, self.message.replace(['\r', '\n'], " ").as_str());
        headers.insert(NATS_SERVICE_ERROR_CODE, self.status.to_string().as_str());
        let body = serde_json::to_vec(&ErrorBody { error: self }).unwrap_or_default();
        (headers, body)
    }

    /// The error a reply carries, if it is an error reply: the body's
    /// `error` object, or what the headers say when the body is not ours
    /// (another micro-protocol service).
    pub fn from_reply(headers: Option<&HeaderMap>, body: &[u8]) -> Option<Self> {
        let status = headers?.get(NATS_SERVICE_ERROR_CODE)?;
        if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody<WireError>>(body) {
            return Some(error);
        }
        let message = headers.and_then(|h| h.get(NATS_SERVICE_ERROR)).map(|v| v.to_string()).unwrap_or_default();
        let status = status.as_str().parse().unwrap_or(500);
        Some(WireError { code: "error".to_owned(), status, message, retryable: false, details: Value::Null })
    }
}

impl<C: Code> From<ApiError<C>> for WireError {
    fn from(error: ApiError<C>) -> Self {
        error.to_wire()
    }
}

/// Why a request to a CIM service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError<C: Code = NoCode> {
    /// The service answered with an error.
    #[error(transparent)]
    Remote(ApiError<C>),
    /// No instance of the service is listening on the subject.
    #[error("no service answers on {subject}: is it running?")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// No reply in time. The service may still have done what was asked.
    #[error("no reply on {subject} within {timeout:?}")]
    Timeout {
        /// The subject.
        subject: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The server refused this connection's publish to the subject: its
    /// NATS user may not send this request. Retrying cannot help.
    #[error("the NATS server refused the request on {subject}: this connection's user may not publish there")]
    PermissionDenied {
        /// The subject.
        subject: String,
    },
    /// The request could not be sent or the reply not read.
    #[error("request on {subject} failed: {reason}")]
    Transport {
        /// The subject.
        subject: String,
        /// What failed.
        reason: String,
    },
}

impl<C: Code> From<ApiError<C>> for RequestError<C> {
    fn from(error: ApiError<C>) -> Self {
        Self::Remote(error)
    }
}

impl<C: Code> RequestError<C> {
    /// True when trying again may succeed: a retryable service error, a
    /// timeout, no responder (a service restarting) or a transport failure.
    /// Never for a permission denial.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Remote(error) => error.retryable,
            Self::NoResponders { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::PermissionDenied { .. } => false,
        }
    }

    /// The service's error, if it answered with one.
    pub fn remote(&self) -> Option<&ApiError<C>> {
        match self {
            Self::Remote(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the service answered with the API's `code`.
    pub fn is(&self, code: C) -> bool {
        self.remote().is_some_and(|e| e.is(code))
    }

    /// The subject the request went to (empty for a remote error).
    pub fn subject(&self) -> &str {
        match self {
            Self::Remote(_) => "",
            Self::NoResponders { subject }
            | Self::Timeout { subject, .. }
            | Self::PermissionDenied { subject }
            | Self::Transport { subject, .. } => subject,
        }
    }

    /// The same error as a client of API `D` sees it.
    pub fn retype<D: Code>(self) -> RequestError<D> {
        match self {
            Self::Remote(error) => RequestError::Remote(error.retype()),
            Self::NoResponders { subject } => RequestError::NoResponders { subject },
            Self::Timeout { subject, timeout } => RequestError::Timeout { subject, timeout },
            Self::PermissionDenied { subject } => RequestError::PermissionDenied { subject },
            Self::Transport { subject, reason } => RequestError::Transport { subject, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::codes! {
        enum TestCode {
            Conflict = ("version_conflict", 409),
        }
    }

    #[test]
    fn an_error_reply_round_trips_with_its_headers() {
        let error = ApiError::api(TestCode::Conflict, "unit u is at version 3,\nnot 2")
            .with_details(serde_json::json!({ "current_version": 3 }))
            .retryable();
        let (headers, body) = error.to_reply();
        assert_eq!(headers.get(NATS_SERVICE_ERROR_CODE).map(|v| v.as_str()), Some("409"));
        assert_eq!(headers.get(NATS_SERVICE_ERROR).map(|v| v.as_str()), Some("unit u is at version 3, not 2"));
        assert_eq!(
            String::from_utf8(body.clone()).expect("utf-8"),
            r#"{"error":{"code":"version_conflict","status":409,"message":"unit u is at version 3,\nnot 2","retryable":true,"details":{"current_version":3}}}"#
        );
        let decoded: ApiError<TestCode> = WireError::from_reply(Some(&headers), &body).expect("an error").typed();
        assert_eq!(decoded, error);
        assert!(decoded.is(TestCode::Conflict));
    }

    #[test]
    fn a_foreign_error_reply_is_read_from_its_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_SERVICE_ERROR, "boom");
        headers.insert(NATS_SERVICE_ERROR_CODE, "503");
        let error = WireError::from_reply(Some(&headers), b"not json").expect("an error");
        assert_eq!((error.code.as_str(), error.status, error.message.as_str()), ("error", 503, "boom"));
        assert!(WireError::from_reply(None, b"{}").is_none());
    }

    #[test]
    fn permission_denials_are_not_retryable() {
        let denied: RequestError = RequestError::PermissionDenied { subject: "x".to_owned() };
        assert!(!denied.is_retryable());
        let timeout: RequestError = RequestError::Timeout { subject: "x".to_owned(), timeout: Duration::from_secs(1) };
        assert!(timeout.is_retryable());
    }
}
