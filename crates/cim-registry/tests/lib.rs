//! Integration tests of the registry on a real nats-server: the schema
//! registry as a library, and the binary as a process.

mod schemas;
mod service;
