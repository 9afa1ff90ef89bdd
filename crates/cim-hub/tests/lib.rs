//! Integration tests of the Integration Hub: `cim-hub` as a real process on
//! a real nats-server, driven over HTTP, NATS and MCP.

mod support;

mod api;
mod buckets;
mod explorer;
mod feed;
mod fuzz;
mod mcp;
mod objects;
mod openapi;
mod webhooks;
