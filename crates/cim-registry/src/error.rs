//! The registry's errors, and their codes on the wire.

use cim_registry_api::RegistryCode;
use cim_wire::{ApiError, CommonCode};
use serde_json::json;

use crate::compat::Incompatibility;

/// Errors of the Component Registry and the schema registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name, type or pattern breaks its syntax.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What kind of name.
        what: &'static str,
        /// The value.
        value: String,
        /// The rule.
        reason: String,
    },
    /// No schema of this type.
    #[error("no schema of type {type_name:?} is registered")]
    UnknownSchema {
        /// The type.
        type_name: String,
    },
    /// The type has no such version.
    #[error("schema type {type_name:?} has no version {version} (latest: {latest})")]
    UnknownVersion {
        /// The type.
        type_name: String,
        /// The version asked for.
        version: u64,
        /// Its latest version.
        latest: u64,
    },
    /// The document is not a usable JSON Schema.
    #[error("not a valid JSON Schema: {reason}")]
    InvalidSchema {
        /// Why.
        reason: String,
    },
    /// The schema is larger than the configured limit.
    #[error("the schema is {size} bytes; the limit is {limit}")]
    SchemaTooLarge {
        /// Its size as JSON.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The new version breaks the compatibility rule.
    #[error("version {version} of {type_name:?} is incompatible with version {previous}: {}", .violations.iter().map(|v| format!("{} ({})", v.message, v.pointer)).collect::<Vec<_>>().join("; "))]
    Incompatible {
        /// The type.
        type_name: String,
        /// The version being registered.
        version: u64,
        /// The version it was compared with.
        previous: u64,
        /// What breaks the rule.
        violations: Vec<Incompatibility>,
    },
    /// The type moved on since the caller looked.
    #[error("schema type {type_name:?} is at version {current}, not {expected}")]
    VersionConflict {
        /// The type.
        type_name: String,
        /// The version the caller expected.
        expected: u64,
        /// The latest version.
        current: u64,
    },
    /// A stored schema event is not what the registry wrote.
    #[error("stored schema {type_name:?} version {version} is unreadable: {reason}")]
    Corrupt {
        /// The type.
        type_name: String,
        /// The version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// The store failed. Boxed: the store's error is large and this is the cold path.
    #[error(transparent)]
    Store(Box<cim_store::Error>),
}

impl From<cim_store::Error> for Error {
    fn from(error: cim_store::Error) -> Self {
        Self::Store(Box::new(error))
    }
}

/// Result of the registry's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError<RegistryCode> {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidName { what, value, .. } => {
                ApiError::api(RegistryCode::InvalidName, message).with_details(json!({ "what": what, "value": value }))
            }
            Error::UnknownSchema { type_name } => {
                ApiError::api(RegistryCode::UnknownSchema, message).with_details(json!({ "type": type_name }))
            }
            Error::UnknownVersion { type_name, version, latest } => {
                ApiError::api(RegistryCode::UnknownSchemaVersion, message)
                    .with_details(json!({ "type": type_name, "version": version, "latest": latest }))
            }
            Error::InvalidSchema { .. } => ApiError::api(RegistryCode::InvalidSchema, message),
            Error::SchemaTooLarge { size, limit } => ApiError::new(CommonCode::PayloadTooLarge, message)
                .with_details(json!({ "size": size, "limit": limit })),
            Error::Incompatible { violations, previous, .. } => {
                ApiError::api(RegistryCode::IncompatibleSchema, message)
                    .with_details(json!({ "previous_version": previous, "violations": violations }))
            }
            Error::VersionConflict { expected, current, .. } => ApiError::api(RegistryCode::VersionConflict, message)
                .with_details(json!({ "expected_version": expected, "current_version": current }))
                .retryable(),
            Error::Corrupt { .. } => ApiError::internal(message),
            Error::Store(error) if error.is_retryable() => ApiError::unavailable(message),
            Error::Store(_) => ApiError::internal(message),
        }
    }
}
