//! Integration tests of the runtime against a real nats-server.

mod service;
