//! CIM's Component Registry: which components run, what they serve and
//! can do, and the schemas of the data they exchange.
//!
//! - [`components`]: live instances in JetStream KV; an entry expires one
//!   TTL after its last heartbeat ([`cim_runtime::registration`] is the
//!   protocol); list, watch and discover by name or capability pattern; the
//!   component graph.
//! - [`schemas`]: JSON Schemas per type and version, kept for ever in the
//!   event store; a new version must pass the [`compat`] rule; validation
//!   that names the JSON pointer of every violation.
//! - [`api`]: subjects and messages; [`Client`]: their client side.
//!
//! Components do not depend on this crate: they talk to it over NATS.

pub mod api;
mod client;
pub mod compat;
pub mod components;
mod error;
mod glob;
pub mod schemas;
mod service;

pub use client::Client;
pub use error::{Error, Result};
pub use service::{Registry, RegistrySettings};
