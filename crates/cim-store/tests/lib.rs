//! Integration tests of cim-store against real nats-server processes.

mod common;

mod append;
mod bad_input;
mod cluster;
mod concurrency;
mod corruption;
mod crash;
mod dag;
mod follow;
mod kv;
mod named;
mod objects;
mod permissions;
mod reads;
