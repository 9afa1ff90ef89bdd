//! Integration tests of cim-archive against real nats-server processes:
//! round trips, damaged and incomplete archives refused by offset with
//! nothing written, and archives whose chains do not fit the store.

#![allow(clippy::unwrap_used, reason = "a failing test should panic where it fails")]

mod common;

mod refusals;
mod round_trip;
