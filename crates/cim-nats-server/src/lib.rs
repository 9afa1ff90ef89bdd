//! Runs a local `nats-server` for CIM: the one place that knows how.
//!
//! Both the product (the `cim` CLI's embedded server) and the tests
//! (`cim-test-support`) need to find a nats-server that is new enough, give
//! it a durable JetStream configuration on loopback, start it, wait until it
//! serves JetStream and stop it gracefully. This crate does exactly that and
//! nothing else; it does not speak the NATS protocol.
//!
//! ```no_run
//! # async fn example() -> Result<(), cim_nats_server::Error> {
//! use cim_nats_server::{Binary, Server, ServerConfig};
//!
//! let binary = Binary::locate(&[])?; // $CIM_NATS_SERVER, else nats-server on PATH
//! let mut server = Server::new(binary, ServerConfig::new("/var/lib/cim/jetstream"), "/run/cim/nats")?;
//! server.start().await?; // JetStream with `sync_interval: always`
//! println!("serving on {}", server.url().expect("started"));
//! server.stop(std::time::Duration::from_secs(30)).await?;
//! # Ok(())
//! # }
//! ```

mod binary;
mod config;
mod error;
mod health;
mod process;

pub use binary::{BINARY_ENV, Binary, MIN_VERSION};
pub use config::{ClusterConfig, ServerConfig};
pub use error::{Error, Result};
pub use health::{Health, is_healthy};
pub use process::{START_TIMEOUT, Server};
