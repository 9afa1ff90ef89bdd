//! Integration tests of cim-ius and cim-registry as real processes on a
//! real nats-server.
//!
//! `cim-ius` is this package's binary (`CARGO_BIN_EXE_cim-ius`). Cargo
//! offers no such path for another package's binary, so [`support`] has
//! `cim_test_support::workspace_binary` run `cargo build -p cim-registry
//! --bin cim-registry` once per test process (a no-op when it is up to
//! date) and take the path cargo reports: always current, and no extra
//! build tool needed.

mod support;

mod check_config;
mod concurrency;
mod crash;
mod invalid;
mod lifecycle;
mod services;
mod strict;
