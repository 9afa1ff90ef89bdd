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
            if let Some(error) = cause.downcast_ref::<cim_runtime::RequestError>() {
                return Self::of_request(error);
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
            E::DanglingLink { .. } | E::EventNotFound(_) | E::ObjectNotFound(_) | E::NameNotFound { .. } => {
                Self::NotFound
            }
            E::CorruptEvent { .. } | E::CorruptObject { .. } => Self::Problems,
            _ => Self::Error,
        }
    }
}

impl Exit {
    /// A service's refusal by its HTTP-like status (`docs/spec/subjects.md`):
    /// bad input, unknown things, conflicts; no answer at all is an error.
    fn of_request(error: &cim_runtime::RequestError) -> Self {
        let Some(error) = error.remote() else { return Self::Error };
        match (error.status, error.code.as_str()) {
            // A cause that is not stored, like `events append --parent`.
            (_, "unknown_parent") => Self::NotFound,
            (400 | 413 | 422, _) => Self::Usage,
            (404, _) => Self::NotFound,
            (409, _) => Self::Conflict,
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
        use cim_runtime::{ApiError, RequestError};
        let remote = |status, code| {
            Exit::of(&anyhow::Error::new(RequestError::Remote(ApiError::new(status, code, "x"))).context("hint"))
        };
        assert_eq!(remote(422, "schema_violation"), Exit::Usage);
        assert_eq!(remote(413, "payload_too_large"), Exit::Usage);
        assert_eq!(remote(400, "bad_request"), Exit::Usage);
        assert_eq!(remote(404, "unknown_unit"), Exit::NotFound);
        assert_eq!(remote(422, "unknown_parent"), Exit::NotFound);
        assert_eq!(remote(409, "version_conflict"), Exit::Conflict);
        assert_eq!(remote(503, "unavailable"), Exit::Error);
        let silent = RequestError::NoResponders { subject: "cim.service.ius.units.get".into() };
        assert_eq!(Exit::of(&anyhow::Error::new(silent)), Exit::Error);
    }
}
