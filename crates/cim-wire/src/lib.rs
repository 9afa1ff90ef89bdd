//! The wire conventions every CIM component shares, on both sides of a
//! request:
//!
//! - [`Endpoint`]: one request subject with its request, reply and error-code
//!   types. A component's API crate declares its endpoints once; the service
//!   side (`cim-runtime`) and the client side ([`Caller`]) are both built
//!   from the same constant, so a mismatch between them does not compile.
//! - [`ApiError`]: the error reply — a typed [`ErrorCode`], an HTTP-like
//!   status, a message, whether retrying may help, and details — carried as a
//!   JSON body `{"error": {...}}` with the NATS micro protocol's
//!   `Nats-Service-Error` and `Nats-Service-Error-Code` headers.
//! - [`NatsConfig`]: the `[nats]` connection settings of every binary, and
//!   the connection options built from them.
//! - [`denials`]: permission denials the server reports, so that a refused
//!   request fails as refused instead of being retried as if the server were
//!   away.
//!
//! API boundary: this crate knows no component. It depends only on serde,
//! serde_json, async-nats, tokio and thiserror, so API crates and the CLI
//! stay light. `docs/spec/subjects.md` specifies the wire format.

mod caller;
mod code;
pub mod denials;
mod endpoint;
mod error;
mod nats;

pub use caller::Caller;
pub use code::{Code, CommonCode, ErrorCode, NoCode};
pub use endpoint::{Empty, Endpoint, Service, is_literal_token};
pub use error::{ApiError, RequestError, WireError};
pub use nats::{ConnectError, InvalidSetting, NatsConfig, connect_options, server_addrs};
