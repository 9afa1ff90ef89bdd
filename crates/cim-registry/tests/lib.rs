//! Integration tests of the schema registry on a real nats-server.

mod schemas;
