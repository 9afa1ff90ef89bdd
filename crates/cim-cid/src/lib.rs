//! CIM's IPLD core: the event envelope, canonical DAG-CBOR, CIDs and chain
//! verification.
//!
//! Architecture invariant: this crate is pure. It does no I/O and knows
//! nothing of NATS; everything it computes can be recomputed by any IPLD
//! implementation from `docs/spec/`.
//!
//! - Events are DAG-CBOR maps ([`EventEnvelope`]); their CID is CIDv1,
//!   dag-cbor (0x71), sha2-256 over the canonical encoding.
//! - Blobs are addressed by raw (0x55) sha2-256 CIDs, computed in constant
//!   memory by [`RawHasher`].
//! - [`check_next`] and [`ChainVerifier`] name every broken, forked or gapped
//!   chain and every dangling link.

mod address;
mod chain;
mod codec;
mod event;
mod link_bytes;

pub use address::{
    DAG_CBOR, DIGEST_LEN, RAW, RawHasher, SHA2_256, cid_from_digest, dag_cbor_cid, raw_cid, sha256_digest, verify_block,
};
pub use chain::{ChainError, ChainState, ChainVerifier, check_next};
pub use codec::{decode_dag_cbor, encode_dag_cbor, ipld_from_dag_json, ipld_from_json, ipld_to_dag_json, ipld_to_json};
pub use event::{
    AggregateKey, EVENT_FORMAT, Event, EventEnvelope, MAX_AGGREGATE_ID_LEN, MAX_AGGREGATE_TYPE_LEN, MAX_EVENT_TYPE_LEN,
    NewEvent, Timestamp, validate_aggregate_type, validate_event_type,
};

pub use cid::Cid;
pub use ipld_core::ipld::Ipld;

/// Errors of IPLD encoding, addressing and verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes are not valid canonical DAG-CBOR (or DAG-JSON) for the item.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// A value cannot be represented in IPLD (for example a NaN float).
    #[error("cannot encode as IPLD: {0}")]
    Encode(String),
    /// Bytes do not hash to the CID they are stored under.
    #[error("content does not match its CID: expected {expected}, the bytes hash to {actual}")]
    CidMismatch {
        /// The CID the bytes claim.
        expected: Cid,
        /// The CID of the bytes as they are.
        actual: Cid,
    },
    /// A CID CIM neither writes nor verifies.
    #[error("unsupported CID {cid}: {reason}")]
    UnsupportedCid {
        /// The CID.
        cid: Cid,
        /// Why it is unsupported.
        reason: &'static str,
    },
    /// A decoded envelope breaks a rule of the specification.
    #[error("invalid event envelope: `{field}` {reason}")]
    InvalidEnvelope {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An aggregate type or id, event type or timestamp is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What kind of name.
        what: &'static str,
        /// The rejected text.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An event does not fit its chain (boxed: chain errors are large and rare).
    #[error(transparent)]
    Chain(Box<ChainError>),
}

impl From<ChainError> for Error {
    fn from(error: ChainError) -> Self {
        Self::Chain(Box::new(error))
    }
}

/// Result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
