//! End-to-end tests of the `cim` binary.
