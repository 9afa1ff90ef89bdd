//! Integration tests of cim-dag: one binary, one module per concern.

mod support;

mod build;
mod chain_errors;
mod checkpoint;
mod dot;
mod queries;
mod random;
