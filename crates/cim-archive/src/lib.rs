//! CIM's CAR archives: a selection of the event store, with the objects its
//! events link, as one CARv1 file whose root is an export manifest
//! (`docs/spec/car-export.md`), and back.
//!
//! - [`car`]: the CARv1 reader and writer, streaming: blocks of any size in
//!   bounded memory; problems named by byte offset.
//! - [`manifest`]: the export manifest, the archive's root block.
//! - [`export()`]: writes the archive of a selection ([`ExportSelection`]).
//! - [`verify()`] and [`import()`]: check an archive completely — its bytes,
//!   its manifest, its chains combined with the store's — before
//!   [`Verified::write`] writes anything. Memory is bounded by a small index
//!   per event (about a hundred bytes), never by the events themselves.
//!
//! Progress is reported through [`Progress`]; errors are one [`Error`] enum.
//! Used by the `cim` CLI (`cim export`, `cim import`) and meant for the
//! Storage Manager.

pub mod car;
mod error;
mod export;
mod import;
pub mod manifest;
mod progress;
pub mod segment;

use cim_store::{EventStore, NamedObjects, ObjectStore};

pub use error::{Error, Result};
pub use export::{ExportSelection, Exported, export};
pub use import::{Imported, Verified, import, verify};
pub use manifest::Manifest;
pub use progress::{Phase, Progress, Silent};

/// The stores an archive is exported from or imported into.
#[derive(Debug, Clone, Copy)]
pub struct Stores<'a> {
    /// The event store.
    pub events: &'a EventStore,
    /// The object store.
    pub objects: &'a ObjectStore,
    /// Named objects (an archive of the whole store carries the names).
    pub named: &'a NamedObjects,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// A service can spawn exports and imports: their futures are `Send`.
    #[allow(dead_code, reason = "checked by compiling")]
    fn futures_are_send(stores: Stores<'_>, path: &Path, verified: Verified) {
        is_send(&export(stores, &ExportSelection::default(), path, &Silent));
        is_send(&verify(stores, path, &Silent));
        is_send(&verified.write(stores, &Silent));
        is_send(&import(stores, path, &Silent));
    }
}
