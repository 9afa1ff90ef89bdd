//! The test modules. They live in this folder, not in `tests/*.rs`, because
//! Cargo builds every `tests/*.rs` file as a test binary of its own unless the
//! package sets `autotests = false`.

mod chain_errors;
mod crosscheck;
mod decode_errors;
mod fuzz_harness;
mod fuzz_mutations;
mod golden;
