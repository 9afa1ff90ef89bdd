//! The Pipeline Engine's integration tests: real nats-server, real
//! `cim-pipeline` processes (and the registry and the IUS where a test
//! needs them).

mod support;

mod dead_letters;
mod definitions;
mod demo;
mod flow;
mod remote;
mod replay;
