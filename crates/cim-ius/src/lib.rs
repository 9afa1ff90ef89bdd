//! CIM's Information Unit System: standardized, immutable containers for
//! information — text documents, chat dialogs, PDFs, images, Mermaid and
//! Cypher graphs, and kinds registered at run time.
//!
//! A unit is an aggregate `unit/<id>` in the event store; every change is
//! an event ([`model::Change`]) appended with optimistic concurrency after
//! the state it produces has been validated against the kind's schema
//! through the Component Registry. Every state has a CID
//! ([`model::state_cid`]), recorded in the event that made it. Current
//! states are a [`Projection`] of the stream, rebuilt at every start; past
//! states are replayed from the chain.
//!
//! The request API (endpoints, messages, codes, client) is the `cim-ius-api`
//! crate; other components and the CLI depend on that one. This crate asks
//! the Component Registry through `cim-registry-api`, never its server.

mod error;
pub mod events;
mod ius;
pub mod kinds;
pub mod media;
pub mod model;
mod projection;
mod queries;
mod service;
mod settings;

pub use error::{Error, Result};
pub use ius::Ius;
pub use projection::{Current, Projection};
pub use settings::IusSettings;
