//! Exit codes, and how an error chain maps to one.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | error: connection, I/O, server, anything else |
//! | 2 | bad usage or input: arguments, JSON, names, CIDs, configuration; a service refused it (schema violation, patch that does not apply, too large) |
//! | 3 | verification found problems (store, aggregate, unit, object or CAR) |
//! | 4 | conflict: an expected version, or a chain in the store differs |
//! | 5 | not found: an event, object, name, aggregate, unit, kind or schema |

use std::fmt;
use std::process::ExitCode;

use cim_ius_api::IusCode;
use cim_wire::{ApiError, Code, RequestError};

use crate::services::{RequestFailure, request_error_of};

/// What a run of `cim` ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Any error not classified below.
    Error = 1,
    /// Bad arguments or input (clap also exits 2 for usage errors).
    Usage = 2,
    /// Verification found problems.
    Problems = 3,
    /// A concurrency or chain conflict.
    Conflict = 4,
    /// Something named does not exist.
    NotFound = 5,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

impl Exit {
    /// A short machine-readable name, used in `--json` error output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Usage => "usage",
            Self::Problems => "problems",
            Self::Conflict => "conflict",
            Self::NotFound => "not_found",
        }
    }

    /// The exit code an error deserves: the first classifiable error in its
    /// chain decides.
    pub fn of(error: &anyhow::Error) -> Self {
        for cause in error.chain() {
            if let Some(failure) = cause.downcast_ref::<Failure>() {
                return failure.exit;
            }
            if let Some(error) = cause.downcast_ref::<cim_store::Error>() {
                return Self::of_store(error);
            }
            if cause.downcast_ref::<cim_cid::Error>().is_some() {
                return Self::Usage;
            }
            if let Some(failure) = request_error_of(cause) {
                return Self::of_request(failure);
            }
        }
        Self::Error
    }

    fn of_store(error: &cim_store::Error) -> Self {
        use cim_store::Error as E;
        match error {
            E::ConcurrencyConflict { .. } | E::NameConflict { .. } => Self::Conflict,
            E::Invalid(_) | E::EmptyAppend | E::TooManyEvents { .. } | E::EventTooLarge { .. } | E::Config { .. } => {
                Self::Usage
            }
            E::DanglingLink { .. }
            | E::EventNotFound(_)
            | E::ObjectNotFound(_)
            | E::NameNotFound { .. }
            | E::EventArchived { .. } => Self::NotFound,
            E::CorruptEvent { .. } | E::CorruptObject { .. } => Self::Problems,
            _ => Self::Error,
        }
    }
}

impl Exit {
    /// A service's refusal by its HTTP-like status (`docs/spec/subjects.md`):
    /// bad input, unknown things, conflicts; no answer at all (or a request
    /// the server's permissions refuse) is an error.
    fn of_request(failure: RequestFailure<'_>) -> Self {
        match failure {
            // A cause that is not stored, like `events append --parent`.
            RequestFailure::Ius(error) if error.is(IusCode::UnknownParent) => Self::NotFound,
            RequestFailure::Ius(error) => Self::of_status(error),
            RequestFailure::Registry(error) => Self::of_status(error),
            RequestFailure::Hub(error) => Self::of_status(error),
            RequestFailure::Pipeline(error) => Self::of_status(error),
            RequestFailure::Storage(error) if error.is(cim_storage_api::StorageCode::Corrupt) => Self::Problems,
            RequestFailure::Storage(error) => Self::of_status(error),
            RequestFailure::Other(error) => Self::of_status(error),
        }
    }

    fn of_status<C: Code>(error: &RequestError<C>) -> Self {
        match error.remote().map(|e: &ApiError<C>| e.status) {
            Some(400 | 413 | 422) => Self::Usage,
            Some(404) => Self::NotFound,
            Some(409) => Self::Conflict,
            _ => Self::Error,
        }
    }
}

/// An error that knows its exit code; the message says what is wrong and,
/// where there is something to do, what.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// The message.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A bad-input error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure { exit: Exit::Usage, message: message.into() }.into()
}

/// A verification failure (exit 3).
pub fn problems(message: impl Into<String>) -> anyhow::Error {
    Failure { exit: Exit::Problems, message: message.into() }.into()
}

/// A conflict (exit 4).
pub fn conflict(message: impl Into<String>) -> anyhow::Error {
    Failure { exit: Exit::Conflict, message: message.into() }.into()
}

/// A not-found error (exit 5).
pub fn not_found(message: impl Into<String>) -> anyhow::Error {
    Failure { exit: Exit::NotFound, message: message.into() }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_classified_cause_decides() {
        let conflict = anyhow::Error::new(cim_store::Error::ConcurrencyConflict {
            aggregate: "order/1".parse().expect("valid"),
            expected: 1,
            actual: 2,
        })
        .context("appending");
        assert_eq!(Exit::of(&conflict), Exit::Conflict);
        assert_eq!(Exit::of(&usage("bad").context("parsing")), Exit::Usage);
        assert_eq!(Exit::of(&anyhow::anyhow!("other")), Exit::Error);
        let bad_name = anyhow::Error::new("no/such/thing".parse::<cim_cid::AggregateKey>().expect_err("invalid"));
        assert_eq!(Exit::of(&bad_name), Exit::Usage);
    }

    #[test]
    fn service_refusals_map_by_status() {
        use cim_registry_api::RegistryCode;
        use cim_wire::{CommonCode, ErrorCode};
        fn remote<C: Code>(code: ErrorCode<C>) -> Exit {
            let error: RequestError<C> = RequestError::Remote(ApiError::new(code, "x"));
            Exit::of(&anyhow::Error::new(error).context("hint"))
        }
        let (ius, registry) = (ErrorCode::<IusCode>::Api, ErrorCode::<RegistryCode>::Api);
        assert_eq!(remote(ius(IusCode::SchemaViolation)), Exit::Usage);
        assert_eq!(remote(ErrorCode::<IusCode>::Common(CommonCode::PayloadTooLarge)), Exit::Usage);
        assert_eq!(remote(ErrorCode::<IusCode>::Common(CommonCode::BadRequest)), Exit::Usage);
        assert_eq!(remote(ius(IusCode::UnknownUnit)), Exit::NotFound);
        assert_eq!(remote(ius(IusCode::UnknownParent)), Exit::NotFound);
        assert_eq!(remote(ius(IusCode::VersionConflict)), Exit::Conflict);
        assert_eq!(remote(ErrorCode::<IusCode>::Common(CommonCode::Unavailable)), Exit::Error);
        assert_eq!(remote(registry(RegistryCode::UnknownSchema)), Exit::NotFound);
        assert_eq!(remote(registry(RegistryCode::IncompatibleSchema)), Exit::Usage);
        assert_eq!(remote(registry(RegistryCode::VersionConflict)), Exit::Conflict);
        assert_eq!(remote(ErrorCode::<RegistryCode>::Common(CommonCode::Forbidden)), Exit::Error);
        let silent: RequestError<IusCode> = RequestError::NoResponders { subject: "cim.service.ius.units.get".into() };
        assert_eq!(Exit::of(&anyhow::Error::new(silent)), Exit::Error);
        let denied: RequestError<RegistryCode> =
            RequestError::PermissionDenied { subject: "cim.service.registry.components.list".into() };
        assert_eq!(Exit::of(&anyhow::Error::new(denied)), Exit::Error);
    }
}
