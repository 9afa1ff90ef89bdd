//! The crate's one error type.

use std::io;

use cim_cid::{AggregateKey, ChainError, Cid};

/// What went wrong exporting, reading or importing an archive.
///
/// [`Error::is_refusal`] and [`Error::is_conflict`] tell an archive that
/// was refused (nothing was written) from a store or I/O failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file ends in the middle of something.
    #[error("the CAR is cut short at byte {offset}: {what}")]
    Truncated {
        /// Where the file ends.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// The bytes are not a CAR, or not one `cim export` writes.
    #[error("malformed CAR at byte {offset}: {reason}")]
    Malformed {
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A block's bytes do not hash to its CID.
    #[error("block {cid} at byte {offset}: its bytes hash to {actual}: the archive was altered or damaged")]
    CidMismatch {
        /// The CID the archive states.
        cid: Cid,
        /// The CID of the bytes found.
        actual: Cid,
        /// Byte offset of the block's data.
        offset: u64,
    },
    /// A block is not what its place in the archive requires: a listed
    /// dag-cbor object that is not canonical DAG-CBOR, or an unlisted block
    /// that is not a valid event.
    #[error("block {cid} at byte {offset}: {reason}")]
    InvalidBlock {
        /// The block.
        cid: Cid,
        /// Byte offset of its data.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The root block is not an export manifest.
    #[error("its root {root} is not an export manifest: {reason}")]
    NotAManifest {
        /// The root.
        root: Cid,
        /// Why not.
        reason: String,
    },
    /// The blocks do not match what the manifest says: objects or events
    /// missing (an archive cut short between two blocks), heads that are
    /// not the archive's last events.
    #[error("{0}")]
    ManifestMismatch(String),
    /// Events the store already holds differ from the archive's at the same
    /// versions: importing would fork the chain.
    #[error(
        "the store's {aggregate} differs from the archive's at version {version}: the store has {store}, the \
         archive {archive}; importing would fork the chain"
    )]
    ChainConflict {
        /// The aggregate.
        aggregate: AggregateKey,
        /// The version where they differ.
        version: u64,
        /// The store's event there.
        store: Cid,
        /// The archive's event there.
        archive: Cid,
    },
    /// The archive's chains, combined with the store's, are broken: gaps,
    /// broken `prev` links, parents in neither.
    #[error("its chains do not fit the store:\n  {}", lines(.0))]
    Chains(Vec<ChainError>),
    /// Some events wait, through their parents, on each other.
    #[error("its events cannot be ordered parents first; stuck at {}", list(.0))]
    Unorderable(Vec<Cid>),
    /// The file changed between the verification and the reads that
    /// followed it.
    #[error("the archive changed while it was being imported: {0}")]
    Changed(String),
    /// An aggregate selected for export has no events.
    #[error("aggregate {0} has no events")]
    AggregateNotFound(AggregateKey),
    /// An object went away while it was being exported.
    #[error("object {0} vanished during the export")]
    ObjectVanished(Cid),
    /// Writing to the store failed part way through an import.
    #[error(
        "the import stopped after writing {events} events and {objects} objects; run the same import again once \
         the cause is fixed: what is already stored is skipped"
    )]
    Stopped {
        /// Events written before it stopped.
        events: u64,
        /// Objects written before it stopped.
        objects: u64,
        /// Why it stopped.
        #[source]
        source: cim_store::Error,
    },
    /// Everything was imported but a name could not be moved to its record.
    #[error("the events and objects are stored, but name {name:?} was not moved to {head}")]
    NameNotMoved {
        /// The name.
        name: String,
        /// The version record it should point at.
        head: Cid,
        /// Why not (a conflict when the store's name has moved elsewhere).
        #[source]
        source: cim_store::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cim_store::Error),
    /// Encoding or decoding failed (a store event that does not re-encode).
    #[error(transparent)]
    Ipld(#[from] cim_cid::Error),
    /// The store's MerkleDAG does not hold an event it was asked about.
    #[error(transparent)]
    Dag(#[from] cim_dag::DagError),
    /// Reading or writing a file failed.
    #[error("{context}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether the archive was refused because of what it holds (damaged,
    /// cut short, not an export, inconsistent with its manifest or with the
    /// store's chains); nothing was written. A conflict is a refusal too.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Truncated { .. }
                | Self::Malformed { .. }
                | Self::CidMismatch { .. }
                | Self::InvalidBlock { .. }
                | Self::NotAManifest { .. }
                | Self::ManifestMismatch(_)
                | Self::Chains(_)
                | Self::Unorderable(_)
        ) || self.is_conflict()
    }

    /// Whether importing would fork a chain the store holds.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::ChainConflict { .. })
    }

    /// Whether something named does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::AggregateNotFound(_) | Self::ObjectVanished(_))
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

fn lines(problems: &[ChainError]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
}

fn list(cids: &[Cid]) -> String {
    cids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
