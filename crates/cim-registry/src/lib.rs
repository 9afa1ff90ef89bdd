//! CIM's Component Registry: which components run, what they serve and
//! can do, and the schemas of the data they exchange.
//!
//! - [`components`]: live instances in JetStream KV; an entry expires one
//!   TTL after its last heartbeat (`cim_registry_api`'s registration
//!   protocol); list, watch and discover by name (a glob) or capability
//!   pattern (subject tokens); the component graph.
//! - [`schemas`]: JSON Schemas per type and version, kept for ever in the
//!   event store; a new version must pass the [`compat`] rule; validation
//!   that names the JSON pointer of every violation.
//!
//! The request API (endpoints, messages, codes, client) is the
//! `cim-registry-api` crate. Components and the CLI depend on that one, never
//! on this crate: they talk to the registry over NATS.

pub mod compat;
pub mod components;
mod error;
mod glob;
pub mod schemas;
mod service;

pub use error::{Error, Result};
pub use service::{Registry, RegistrySettings};
