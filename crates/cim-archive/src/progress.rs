//! Progress reporting: the library counts, the caller displays.

/// A stage of an export or an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Export: reading the event log and writing the selected events
    /// (counted in events of the log).
    ExportEvents,
    /// Export: copying objects into the archive (bytes).
    ExportObjects,
    /// Import: reading every block and checking it against its CID (bytes
    /// of the file).
    Verify,
    /// Import: checking the archive's chains against the store's (events).
    CheckChains,
    /// Import: storing objects (objects).
    ImportObjects,
    /// Import: appending events (events).
    ImportEvents,
}

impl Phase {
    /// Whether the phase counts bytes (else items).
    pub fn counts_bytes(self) -> bool {
        matches!(self, Self::ExportObjects | Self::Verify)
    }
}

/// Receives progress. Every method has an empty default; [`Silent`] is the
/// implementation that shows nothing.
pub trait Progress: Send + Sync {
    /// `phase` starts, with `total` units to do.
    fn start(&self, phase: Phase, total: u64) {
        let _ = (phase, total);
    }

    /// `amount` more units of `phase` are done.
    fn advance(&self, phase: Phase, amount: u64) {
        let _ = (phase, amount);
    }

    /// `phase` is over.
    fn finish(&self, phase: Phase) {
        let _ = phase;
    }
}

/// Shows no progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
