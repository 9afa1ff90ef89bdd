//! The Component Registry's request API, shared by the registry (which
//! serves it), every component (which registers with it) and the CLI:
//!
//! - the endpoints as typed [`cim_wire::Endpoint`] constants ([`REGISTER`],
//!   [`LIST`], [`SCHEMA_VALIDATE`], ...), so the service and its clients
//!   agree on subjects and types or do not compile;
//! - the messages ([`ComponentQuery`], [`RegisterSchema`], ...), among them
//!   the registration protocol ([`Registration`], [`RegistrationAck`],
//!   [`Deregistration`], [`DeregistrationAck`]);
//! - [`RegistryCode`], the registry's error codes;
//! - [`Client`], the client side;
//! - [`capability`], capability patterns with NATS subject-token semantics.
//!
//! API boundary: depends on `cim-wire`, serde and serde_json only; no server
//! code. `docs/spec/subjects.md` specifies the subjects and bodies.

pub mod capability;
mod client;
mod code;
mod messages;
mod registration;

use cim_wire::{Empty, Endpoint, Service};

pub use client::Client;
pub use code::RegistryCode;
pub use messages::{
    ComponentList, ComponentQuery, ComponentRecord, Graph, GraphEdge, GraphNode, ListSchemas, RegisterSchema,
    Registered, SchemaHistory, SchemaRef, SchemaType, SchemaTypes, SchemaVersion, Validate, ValidationReport,
    Violation,
};
pub use registration::{Deregistration, DeregistrationAck, Registration, RegistrationAck, SchemaUse};

/// The registry's micro service: name `cim-registry`, subjects
/// `cim.service.registry.…`.
pub const SERVICE: Service = Service::new("cim-registry", "cim.service.registry");

/// Register or heartbeat: `…components.register.<component>`, the token
/// being the registering component's name (the server's permissions pin it;
/// the registry refuses a body naming another component with `forbidden`).
pub const REGISTER: Endpoint<Registration, RegistrationAck, RegistryCode> = SERVICE.endpoint("components.register.*");
/// Deregister: `…components.deregister.<component>`, pinned like [`REGISTER`].
pub const DEREGISTER: Endpoint<Deregistration, DeregistrationAck, RegistryCode> =
    SERVICE.endpoint("components.deregister.*");
/// Live components matching a query.
pub const LIST: Endpoint<ComponentQuery, ComponentList, RegistryCode> = SERVICE.endpoint("components.list");
/// The component graph.
pub const GRAPH: Endpoint<Empty, Graph, RegistryCode> = SERVICE.endpoint("components.graph");
/// Register a schema version.
pub const SCHEMA_REGISTER: Endpoint<RegisterSchema, Registered, RegistryCode> = SERVICE.endpoint("schemas.register");
/// One schema version.
pub const SCHEMA_GET: Endpoint<SchemaRef, SchemaVersion, RegistryCode> = SERVICE.endpoint("schemas.get");
/// Every schema type.
pub const SCHEMA_LIST: Endpoint<ListSchemas, SchemaTypes, RegistryCode> = SERVICE.endpoint("schemas.list");
/// Every version of one type.
pub const SCHEMA_HISTORY: Endpoint<SchemaRef, SchemaHistory, RegistryCode> = SERVICE.endpoint("schemas.history");
/// Validate an instance against a schema version.
pub const SCHEMA_VALIDATE: Endpoint<Validate, ValidationReport, RegistryCode> = SERVICE.endpoint("schemas.validate");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_subjects_carry_the_component() {
        assert_eq!(
            REGISTER.subject_for("cim-ius").as_deref(),
            Some("cim.service.registry.components.register.cim-ius")
        );
        assert_eq!(
            DEREGISTER.subject_for("cim-ius").as_deref(),
            Some("cim.service.registry.components.deregister.cim-ius")
        );
        assert_eq!(REGISTER.token_of("cim.service.registry.components.register.cim-ius"), Some("cim-ius"));
        assert_eq!(LIST.subject(), "cim.service.registry.components.list");
        assert_eq!(SCHEMA_VALIDATE.subject(), "cim.service.registry.schemas.validate");
    }
}
