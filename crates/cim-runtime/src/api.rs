//! The wire contract of every CIM request API: JSON request bodies, JSON
//! replies, and errors as a JSON body `{"error": {...}}` together with the
//! NATS micro protocol's `Nats-Service-Error` and `Nats-Service-Error-Code`
//! headers, so stock tooling sees a failed request as one. [`request`] is
//! the client side of the same contract.

use std::time::Duration;

use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};
use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A request that failed, as the service reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `version_conflict`.
    pub code: String,
    /// HTTP-like status: 400 bad input, 404 unknown, 409 conflict, 413 too
    /// large, 422 refused by a rule, 500 internal, 503 unavailable.
    pub status: u16,
    /// What went wrong, for people.
    pub message: String,
    /// Whether sending the same request again (after re-reading, for a
    /// conflict) may succeed.
    #[serde(default)]
    pub retryable: bool,
    /// Code-specific facts, e.g. `{"current_version": 4}` or the JSON
    /// pointers of schema violations.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl ApiError {
    /// An error with no details, not retryable.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            status,
            message: message.into(),
            retryable: false,
            details: serde_json::Value::Null,
        }
    }

    /// Adds code-specific facts.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
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
        Self::new(400, "bad_request", message)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(size: usize, limit: usize) -> Self {
        Self::new(413, "payload_too_large", format!("the request is {size} bytes; the limit is {limit}"))
            .with_details(serde_json::json!({ "size": size, "limit": limit }))
    }

    /// 503 `unavailable`: a dependency failed; retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message).retryable()
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The reply body and micro-protocol headers carrying this error.
    pub fn to_reply(&self) -> (HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        // Header values are one line.
        headers.insert(NATS_SERVICE_ERROR, self.message.replace(['\r', '\n'], " ").as_str());
        headers.insert(NATS_SERVICE_ERROR_CODE, self.status.to_string().as_str());
        let body = serde_json::to_vec(&ErrorBody { error: self.clone() }).unwrap_or_default();
        (headers, body.into())
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    error: ApiError,
}

/// Why a request to a CIM service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The service answered with an error.
    #[error(transparent)]
    Remote(#[from] ApiError),
    /// No instance of the service is listening on the subject.
    #[error("no service answers on {subject}: is it running?")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// No reply in time.
    #[error("no reply on {subject} within {timeout:?}")]
    Timeout {
        /// The subject.
        subject: String,
        /// How long the client waited.
        timeout: Duration,
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

impl RequestError {
    /// True when trying again may succeed: a retryable service error, a
    /// timeout, or no responder (a service restarting).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Remote(error) => error.retryable,
            Self::NoResponders { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
        }
    }

    /// The service's error, if it answered with one.
    pub fn remote(&self) -> Option<&ApiError> {
        match self {
            Self::Remote(error) => Some(error),
            _ => None,
        }
    }
}

/// Sends `body` as JSON to `subject` and decodes the JSON reply, or the
/// service's error.
pub async fn request<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Resp, RequestError> {
    let transport = |reason: String| RequestError::Transport { subject: subject.to_owned(), reason };
    let payload = serde_json::to_vec(body).map_err(|e| transport(format!("encoding the request: {e}")))?;
    let message = client
        .send_request(subject.to_owned(), async_nats::Request::new().payload(payload.into()).timeout(Some(timeout)))
        .await
        .map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => RequestError::NoResponders { subject: subject.to_owned() },
            RequestErrorKind::TimedOut => RequestError::Timeout { subject: subject.to_owned(), timeout },
            _ => transport(e.to_string()),
        })?;
    if let Some(code) = message.headers.as_ref().and_then(|h| h.get(NATS_SERVICE_ERROR_CODE)) {
        let error = match serde_json::from_slice::<ErrorBody>(&message.payload) {
            Ok(body) => body.error,
            Err(_) => {
                let text = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(NATS_SERVICE_ERROR))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                ApiError::new(code.as_str().parse().unwrap_or(500), "error", text)
            }
        };
        return Err(RequestError::Remote(error));
    }
    serde_json::from_slice(&message.payload).map_err(|e| transport(format!("the reply is not the expected JSON: {e}")))
}
