//! CIM's Storage Manager: the hot tier (JetStream) above two S3 tiers —
//! warm (a NAS running MinIO, say) and cold (Wasabi, say) — kept in step
//! by the manager itself, with no bucket replication.
//!
//! - [`seal`](Manager::seal): the event stream is sealed into CAR segments
//!   (`cim_archive::segment`), each named by the CID of its bytes and listed
//!   in a CID-chained manifest that links the checkpoint at its end (every
//!   aggregate's head, `cim_store::Checkpoint`);
//! - [`copy_objects`](Manager::copy_objects): objects are copied down by
//!   CID; every write below hot is idempotent and verified by reading it
//!   back ([`copy`]);
//! - [`scrub`](Manager::scrub): every item on every tier re-hashed; what is
//!   missing or corrupt repaired from a good copy;
//! - [`retention`](Manager::retention): hot drops only what both tiers
//!   hold verified; reads of it fall through to the tiers ([`reads`]);
//! - [`gc`](Manager::gc): unreferenced objects swept after a grace period;
//! - [`status`](Manager::status): usage, lag and the last scrub, as the
//!   `status` endpoint and as metrics.
//!
//! Provider differences live in [`quirks`]; state in [`state`] (its KV
//! bucket); the request API is the `cim-storage-api` crate. The formats are
//! specified in `docs/spec/storage-tiers.md`.

mod copier;
pub mod copy;
mod error;
mod gc;
mod manager;
mod metrics;
pub mod quirks;
pub mod reads;
mod retention;
mod scrub;
mod seal;
mod service;
pub mod settings;
pub mod state;
pub mod tier;

pub use copier::Copied;
pub use error::{Error, Result, TierProblem};
pub use manager::{Archive, Manager};
pub use metrics::StorageMetrics;
pub use settings::StorageSettings;
