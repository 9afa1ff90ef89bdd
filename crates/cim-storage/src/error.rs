//! The manager's errors, and what the API answers for each.

use cim_cid::Cid;
use cim_storage_api::{ItemKind, StorageCode, TierName};
use cim_wire::ApiError;

/// How a tier request failed ([`crate::quirks::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierProblem {
    /// No such key.
    NotFound,
    /// A conditional put found the key taken.
    AlreadyExists,
    /// The credentials were refused.
    Denied,
    /// The bucket does not exist.
    NoSuchBucket,
    /// Unreachable, timed out or failing after retries.
    Unavailable,
    /// Out of space.
    Full,
    /// Anything else.
    Other,
}

impl TierProblem {
    /// Whether trying again later may help.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::Full)
    }
}

/// What the manager ends with when it cannot do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is unusable (a credential file, an endpoint).
    #[error("{key}: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A request to a tier failed.
    #[error("{tier} tier: {op} {key}: {}: {reason}", problem_text(*problem))]
    Tier {
        /// Which tier.
        tier: TierName,
        /// The operation.
        op: &'static str,
        /// The key.
        key: String,
        /// What kind of failure.
        problem: TierProblem,
        /// The provider's words.
        reason: String,
    },
    /// An item's bytes do not hash to its CID.
    #[error("{kind} {cid}{}: {reason}", tier.map(|t| format!(" on the {t} tier")).unwrap_or_default())]
    Corrupt {
        /// Where it was read.
        tier: Option<TierName>,
        /// What kind of item.
        kind: ItemKind,
        /// Its CID.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// No tier holds the item.
    #[error("no tier holds {kind} {cid}")]
    NotFound {
        /// What kind of item.
        kind: ItemKind,
        /// Its CID.
        cid: Cid,
    },
    /// The event stream cannot be sealed as it is.
    #[error("cannot seal stream sequence {seq}: {reason}")]
    Unsealable {
        /// The sequence.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The archive does not hold together.
    #[error("the archive is inconsistent: {0}")]
    Archive(String),
    /// The hot store is behind the archive.
    #[error(
        "the hot store ends at stream sequence {hot_last_seq}, the archive at {archive_last_seq}: restore it first (`cim restore`)"
    )]
    RestoreNeeded {
        /// Last sequence in hot.
        hot_last_seq: u64,
        /// Last sequence sealed.
        archive_last_seq: u64,
    },
    /// The operation already runs.
    #[error("{0} is already running")]
    Busy(&'static str),
    /// A request the manager refuses.
    #[error("{0}")]
    Invalid(String),
    /// The hot store failed.
    #[error(transparent)]
    Store(#[from] cim_store::Error),
    /// A CAR could not be written or read.
    #[error(transparent)]
    Car(#[from] cim_archive::Error),
    /// Local I/O (the work directory).
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
    /// IPLD encoding.
    #[error(transparent)]
    Ipld(#[from] cim_cid::Error),
}

fn problem_text(problem: TierProblem) -> &'static str {
    match problem {
        TierProblem::NotFound => "not found",
        TierProblem::AlreadyExists => "already exists",
        TierProblem::Denied => "credentials refused",
        TierProblem::NoSuchBucket => "no such bucket",
        TierProblem::Unavailable => "unavailable",
        TierProblem::Full => "out of space",
        TierProblem::Other => "failed",
    }
}

/// What a fallible manager operation ends with.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Tier { problem, .. } => problem.is_retryable(),
            Self::Store(error) => error.is_retryable(),
            Self::Busy(_) => true,
            _ => false,
        }
    }
}

impl From<Error> for ApiError<StorageCode> {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match &error {
            Error::Tier { tier, problem, .. } => {
                let code = match problem {
                    TierProblem::NotFound => StorageCode::NotFound,
                    TierProblem::Denied => StorageCode::TierDenied,
                    TierProblem::NoSuchBucket => StorageCode::NoSuchBucket,
                    TierProblem::Full => StorageCode::TierFull,
                    TierProblem::AlreadyExists | TierProblem::Unavailable | TierProblem::Other => {
                        StorageCode::TierUnavailable
                    }
                };
                let api = ApiError::api(code, message).with_details(serde_json::json!({ "tier": tier }));
                if problem.is_retryable() || matches!(problem, TierProblem::Other) { api.retryable() } else { api }
            }
            Error::Corrupt { tier, kind, cid, .. } => ApiError::api(StorageCode::Corrupt, message)
                .with_details(serde_json::json!({ "kind": kind, "cid": cid.to_string(), "tier": tier })),
            Error::NotFound { kind, cid } => ApiError::api(StorageCode::NotFound, message)
                .with_details(serde_json::json!({ "kind": kind, "cid": cid.to_string() })),
            Error::RestoreNeeded { hot_last_seq, archive_last_seq } => {
                ApiError::api(StorageCode::RestoreNeeded, message).with_details(
                    serde_json::json!({ "hot_last_seq": hot_last_seq, "archive_last_seq": archive_last_seq }),
                )
            }
            Error::Busy(_) => ApiError::api(StorageCode::Busy, message).retryable(),
            Error::Invalid(_) => ApiError::api(StorageCode::InvalidRequest, message),
            Error::Store(store) if store.is_retryable() => ApiError::unavailable(message),
            _ => ApiError::internal(message),
        }
    }
}
