//! The Information Unit System's request API, shared by the IUS (which
//! serves it), other components and the CLI:
//!
//! - the endpoints as typed [`cim_wire::Endpoint`] constants ([`CREATE`],
//!   [`GET`], ...), so the service and its clients agree on subjects and
//!   types or do not compile;
//! - the messages ([`Create`], [`Committed`], [`UnitView`], ...) and the
//!   unit model clients read ([`model::UnitState`], ...);
//! - [`IusCode`], the IUS's error codes;
//! - [`Client`], the client side. Objects are put into the object store
//!   (a standard JetStream object store) by the caller, then attached by CID
//!   with [`Client::attach`].
//!
//! API boundary: depends on `cim-wire`, serde and serde_json only; no server
//! code (no json-patch, no jsonschema, no store). `docs/spec/subjects.md`
//! specifies the subjects and bodies.

mod client;
mod code;
mod messages;
pub mod model;

use cim_wire::{Empty, Endpoint, Service};

pub use client::Client;
pub use code::IusCode;
pub use messages::{
    Attach, Committed, Create, Detach, Direction, Get, History, HistoryEntry, Kind, Kinds, List, Page,
    ProjectionStatus, Reached, RegisterKind, Relate, Retire, Summary, Tags, Target, Traversal, Traverse, UnitRef,
    UnitView, Update, Verified,
};

/// The IUS's micro service: name `cim-ius`, subjects `cim.service.ius.…`.
pub const SERVICE: Service = Service::new("cim-ius", "cim.service.ius");

/// Create a unit.
pub const CREATE: Endpoint<Create, Committed, IusCode> = SERVICE.endpoint("units.create");
/// Patch a unit's content and metadata.
pub const UPDATE: Endpoint<Update, Committed, IusCode> = SERVICE.endpoint("units.update");
/// Add tags.
pub const TAG: Endpoint<Tags, Committed, IusCode> = SERVICE.endpoint("units.tag");
/// Remove tags.
pub const UNTAG: Endpoint<Tags, Committed, IusCode> = SERVICE.endpoint("units.untag");
/// Add a relation.
pub const RELATE: Endpoint<Relate, Committed, IusCode> = SERVICE.endpoint("units.relate");
/// Remove a relation.
pub const UNRELATE: Endpoint<Relate, Committed, IusCode> = SERVICE.endpoint("units.unrelate");
/// Attach an object already in the object store.
pub const ATTACH: Endpoint<Attach, Committed, IusCode> = SERVICE.endpoint("units.attach");
/// Detach an object.
pub const DETACH: Endpoint<Detach, Committed, IusCode> = SERVICE.endpoint("units.detach");
/// Retire a unit.
pub const RETIRE: Endpoint<Retire, Committed, IusCode> = SERVICE.endpoint("units.retire");
/// A unit's state, current or past.
pub const GET: Endpoint<Get, UnitView, IusCode> = SERVICE.endpoint("units.get");
/// A unit's events.
pub const HISTORY: Endpoint<UnitRef, History, IusCode> = SERVICE.endpoint("units.history");
/// Verify a unit's chain.
pub const VERIFY: Endpoint<UnitRef, Verified, IusCode> = SERVICE.endpoint("units.verify");
/// Walk relations.
pub const TRAVERSE: Endpoint<Traverse, Traversal, IusCode> = SERVICE.endpoint("units.traverse");
/// A page of units.
pub const LIST: Endpoint<List, Page, IusCode> = SERVICE.endpoint("units.list");
/// Register a kind (or a new version of its schema).
pub const KIND_REGISTER: Endpoint<RegisterKind, Kind, IusCode> = SERVICE.endpoint("kinds.register");
/// Every kind.
pub const KIND_LIST: Endpoint<Empty, Kinds, IusCode> = SERVICE.endpoint("kinds.list");
/// The answering instance's projection status.
pub const STATUS: Endpoint<Empty, ProjectionStatus, IusCode> = SERVICE.endpoint("projection.status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_documented_ones() {
        assert_eq!(CREATE.subject(), "cim.service.ius.units.create");
        assert_eq!(KIND_LIST.subject(), "cim.service.ius.kinds.list");
        assert_eq!(STATUS.subject(), "cim.service.ius.projection.status");
    }
}
