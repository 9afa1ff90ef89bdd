//! CIM's shared service runtime: what every component binary (Component
//! Registry, Information Unit System, and later the Pipeline Engine, Storage
//! Manager and Integration Hub) needs to run as a service.
//!
//! - [`config`]: one TOML file per component with the shared sections
//!   `[nats]`, `[store]`, `[http]`, `[log]`, `[runtime]` and the component's
//!   own, overridden by `CIM_<SECTION>_<KEY>` variables and flags; every
//!   error names its key. `--check-config` validates without connecting.
//! - [`Runtime`]: NATS connection (credentials, TLS, reconnects), the HTTP
//!   endpoint (`/metrics`, `/healthz`, `/readyz`), the request API as a NATS
//!   micro service ([`ServiceDefinition`]), registration and heartbeats
//!   ([`registration`]), and graceful shutdown on SIGTERM/SIGINT.
//! - [`api`]: the JSON request/reply and error contract, both sides.
//! - [`cli::main`]: a component's whole `main`.
//!
//! API boundary: besides `cim-store`, this is the only crate that speaks
//! NATS directly. It knows nothing of any component: the registration
//! messages are defined here and the registry serves them.
//!
//! `docs/services.md` documents every key, variable, flag and subject.

pub mod api;
pub mod cli;
pub mod config;
mod http;
mod logging;
mod metrics;
mod nats;
pub mod registration;
mod runtime;
mod service;

pub use api::{ApiError, RequestError, request};
pub use config::{Config, Invalid, Settings};
pub use logging::init as init_logging;
pub use metrics::Metrics;
pub use nats::{ConnectError, connect, connect_options, server_addrs};
pub use runtime::{Runtime, RuntimeError};
pub use service::{Request, ServiceDefinition};
