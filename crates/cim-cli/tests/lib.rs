//! End-to-end tests of the `cim` binary against real nats-server processes.

#![allow(clippy::unwrap_used, reason = "a failing test should panic where it fails")]

mod common;
mod services;

mod bad_input;
mod car;
mod config;
mod crosscheck;
mod embedded;
mod nats_config;
mod pipelines;
mod registry;
mod storage;
mod store;
mod units;
mod up;
