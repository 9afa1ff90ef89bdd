//! Exit codes, and how an error chain maps to one.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | error: connection, I/O, server, anything else |
//! | 2 | bad usage or input: arguments, JSON, names, CIDs, configuration |
//! | 3 | verification found problems (store, aggregate, object or CAR) |
//! | 4 | conflict: an expected version, or a chain in the store differs |
//! | 5 | not found: an event, object, name or aggregate |

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
        }
        Self::Error
    }

    fn of_store(error: &cim_store::Error) -> Self {
        use cim_store::Error as E;
        match error {
            E::ConcurrencyConflict { .. } => Self::Conflict,
            E::Invalid(_) | E::EmptyAppend | E::TooManyEvents { .. } | E::EventTooLarge { .. } | E::Config(_) => {
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
}
