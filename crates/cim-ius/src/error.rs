//! The IUS's errors, and their codes on the wire.

use cim_ius_api::IusCode;
use cim_registry_api::{RegistryCode, Violation};
use cim_wire::{ApiError, CommonCode, RequestError};
use serde_json::json;

/// Errors of the Information Unit System.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No unit with this id.
    #[error("unit {id} does not exist")]
    UnknownUnit {
        /// The id.
        id: String,
    },
    /// No state with this CID.
    #[error("no unit state has CID {cid}")]
    UnknownState {
        /// The CID.
        cid: String,
    },
    /// The unit is not at the version the command expected. Re-read it and retry.
    #[error("unit {id} is at version {current}, not {expected}")]
    VersionConflict {
        /// The unit.
        id: String,
        /// The version the command expected.
        expected: u64,
        /// The unit's version.
        current: u64,
    },
    /// Content or metadata breaks its schema.
    #[error("{what} of unit {id} does not match schema {schema} version {version}: {}", .violations.iter().map(|v| format!("{} at {:?}", v.message, v.pointer)).collect::<Vec<_>>().join("; "))]
    SchemaViolation {
        /// The unit.
        id: String,
        /// `content` or `metadata`.
        what: &'static str,
        /// Schema type.
        schema: String,
        /// Schema version.
        version: u64,
        /// The violations, with JSON pointers into the unit (`/content/…`, `/metadata/…`).
        violations: Vec<Violation>,
    },
    /// A JSON Patch does not apply.
    #[error("the patch does not apply to unit {id}: operation {operation} at {path:?}: {reason}")]
    PatchFailed {
        /// The unit.
        id: String,
        /// Index of the failing operation.
        operation: usize,
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// No schema is registered for the kind.
    #[error("unknown kind {kind:?}: no schema unit:{kind} is registered")]
    UnknownKind {
        /// The kind.
        kind: String,
    },
    /// The unit's encoded event exceeds the limit.
    #[error("the change encodes to {size} bytes; the limit is {limit}")]
    PayloadTooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A field of the command is malformed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The change does not fit the unit's state (retired, already exists, nothing to remove).
    #[error("{reason}")]
    Rejected {
        /// [`IusCode::UnitRetired`], [`IusCode::UnitExists`] or [`IusCode::NoChange`].
        code: IusCode,
        /// Why.
        reason: String,
    },
    /// An object to attach is not in the object store.
    #[error("object {cid} is not in the object store: put it there first")]
    UnknownObject {
        /// The CID.
        cid: String,
    },
    /// A `caused_by` CID names no stored event.
    #[error("caused_by names {cid}, which is not a stored event")]
    UnknownParent {
        /// The CID.
        cid: String,
    },
    /// The registry could not be asked.
    #[error("the Component Registry is unavailable: {0}")]
    Registry(RequestError<RegistryCode>),
    /// The store failed. Boxed: the store's error is large and this is the cold path.
    #[error(transparent)]
    Store(Box<cim_store::Error>),
}

impl From<cim_store::Error> for Error {
    fn from(error: cim_store::Error) -> Self {
        Self::Store(Box::new(error))
    }
}

/// Result of the IUS's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError<IusCode> {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::UnknownUnit { id } => ApiError::api(IusCode::UnknownUnit, message).with_details(json!({ "id": id })),
            Error::UnknownState { cid } => {
                ApiError::api(IusCode::UnknownState, message).with_details(json!({ "state_cid": cid }))
            }
            Error::VersionConflict { id, expected, current } => ApiError::api(IusCode::VersionConflict, message)
                .with_details(json!({ "id": id, "expected_version": expected, "current_version": current }))
                .retryable(),
            Error::SchemaViolation { what, schema, version, violations, .. } => {
                ApiError::api(IusCode::SchemaViolation, message).with_details(
                    json!({ "what": what, "schema": schema, "schema_version": version, "violations": violations }),
                )
            }
            Error::PatchFailed { operation, path, .. } => ApiError::api(IusCode::PatchFailed, message)
                .with_details(json!({ "operation": operation, "path": path })),
            Error::UnknownKind { kind } => {
                ApiError::api(IusCode::UnknownKind, message).with_details(json!({ "kind": kind }))
            }
            Error::PayloadTooLarge { size, limit } => ApiError::new(CommonCode::PayloadTooLarge, message)
                .with_details(json!({ "size": size, "limit": limit })),
            Error::InvalidInput { field, .. } => ApiError::bad_request(message).with_details(json!({ "field": field })),
            Error::Rejected { code, .. } => ApiError::api(code, message),
            Error::UnknownObject { cid } => {
                ApiError::api(IusCode::UnknownObject, message).with_details(json!({ "cid": cid }))
            }
            Error::UnknownParent { cid } => {
                ApiError::api(IusCode::UnknownParent, message).with_details(json!({ "cid": cid }))
            }
            // Refused by the server's permissions: retrying cannot help.
            Error::Registry(RequestError::PermissionDenied { .. }) => ApiError::internal(message),
            Error::Registry(_) => ApiError::unavailable(message),
            Error::Store(error) if error.is_retryable() => ApiError::unavailable(message),
            Error::Store(_) => ApiError::internal(message),
        }
    }
}
