//! CIM's shared service runtime: what every component binary (Component
//! Registry, Information Unit System, and later the Pipeline Engine, Storage
//! Manager and Integration Hub) needs to run as a service.
//!
//! - [`config`]: one TOML file per component (optional: every key has a
//!   default) with the shared sections `[nats]` (`cim_wire::NatsConfig`),
//!   `[store]`, `[http]`, `[log]`, `[runtime]` and the component's own,
//!   overridden by `CIM_<SECTION>_<KEY>` variables and flags; every error
//!   names its key. `--check-config` validates without connecting.
//! - [`Runtime`]: NATS connection (credentials, TLS, reconnects; permission
//!   denials recorded by `cim_wire::denials`), the HTTP endpoint
//!   (`/metrics`, `/healthz`, `/readyz` and the component's own routes), the
//!   request API as a NATS micro service ([`ServiceDefinition`], serving the
//!   typed `cim_wire::Endpoint`s of the component's API crate), registration
//!   and heartbeats with the Component Registry (its protocol and subjects
//!   are `cim_registry_api`'s), and graceful shutdown on SIGTERM/SIGINT.
//! - [`cli::main`]: a component's whole `main`.
//!
//! API boundary: besides `cim-store` and `cim-wire`, this is the only crate
//! that speaks NATS directly. It knows no component but the registry, whose
//! API crate defines the registration protocol.
//!
//! `docs/services.md` documents every key, variable, flag and subject.

pub mod cli;
pub mod config;
mod http;
mod logging;
mod metrics;
mod nats;
mod registration;
mod runtime;
mod service;
pub mod strict_json;

pub use cim_wire::{ApiError, Caller, ConnectError, RequestError, WireError, connect_options, server_addrs};
pub use config::{Config, Invalid, Settings};
pub use logging::init as init_logging;
pub use metrics::Metrics;
pub use nats::connect;
pub use runtime::{Runtime, RuntimeError};
pub use service::{Request, ServiceDefinition};
