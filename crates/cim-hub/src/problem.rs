//! Errors as `application/problem+json` (RFC 9457): every error the HTTP
//! API answers with, including unknown routes, wrong methods, bodies that
//! do not parse and bodies that are too large.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cim_wire::{Code, RequestError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The media type of a problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem (RFC 9457) with CIM's stable `code` beside the standard members.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:cim:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The stable, machine-readable code, e.g. `version_conflict`.
    pub code: String,
    /// Whether sending the same request again (after re-reading, for a
    /// conflict) may succeed.
    pub retryable: bool,
    /// Code-specific facts, e.g. `{"current_version": 4}`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Object)]
    pub details: Value,
    /// Seconds to wait before retrying (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with `status` and `code`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:cim:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            retryable: false,
            details: Value::Null,
            retry_after: None,
        }
    }

    /// Adds code-specific facts.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Marks the problem as worth retrying.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(limit: u64) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body is larger than {limit} bytes"))
            .with_details(serde_json::json!({ "limit": limit }))
    }

    /// 503 `unavailable`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retryable()
    }

    /// 500 `internal`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The problem a store error means for an HTTP caller.
    pub fn from_store(error: cim_store::Error) -> Self {
        use cim_store::Error as E;
        let detail = error.to_string();
        match error {
            E::ConcurrencyConflict { aggregate, expected, actual } => {
                Self::new(StatusCode::CONFLICT, "version_conflict", detail)
                    .with_details(serde_json::json!({
                        "aggregate": aggregate.to_string(),
                        "expected_version": expected,
                        "current_version": actual,
                    }))
                    .retryable()
            }
            E::Invalid(_) | E::EmptyAppend | E::InvalidCaller(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", detail)
            }
            E::TooManyEvents { .. } | E::EventTooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
            }
            E::DanglingLink { parent, .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_parent", detail)
                .with_details(serde_json::json!({ "cid": parent.to_string() })),
            E::EventNotFound(cid) => Self::new(StatusCode::NOT_FOUND, "unknown_event", detail)
                .with_details(serde_json::json!({ "cid": cid.to_string() })),
            E::ObjectNotFound(cid) => Self::new(StatusCode::NOT_FOUND, "unknown_object", detail)
                .with_details(serde_json::json!({ "cid": cid.to_string() })),
            E::PermissionDenied { .. } => Self::new(StatusCode::FORBIDDEN, "refused_by_nats", detail),
            E::CorruptEvent { .. } | E::CorruptObject { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", detail)
            }
            error if error.is_retryable() => Self::unavailable(detail),
            _ => Self::internal(detail),
        }
    }

    /// The problem a failed request to another component means.
    pub fn from_request<C: Code>(error: RequestError<C>) -> Self {
        match error {
            RequestError::Remote(error) => {
                let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut problem = Self::new(status, error.code.as_str(), error.message).with_details(error.details);
                problem.retryable = error.retryable;
                problem
            }
            RequestError::Timeout { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", error.to_string()).retryable()
            }
            other => Self::unavailable(other.to_string()),
        }
    }
}

impl From<cim_store::Error> for Problem {
    fn from(error: cim_store::Error) -> Self {
        Self::from_store(error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = %self.code, detail = %self.detail, "request failed");
        }
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"cim-hub\""));
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, Problem>;
