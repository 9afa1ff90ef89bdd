//! Arbitrary bytes into `Event::from_block` (under the bytes' own dag-cbor
//! CID, so decoding is reached) and `decode_dag_cbor::<Ipld>`: no panic, and
//! whatever is accepted re-encodes to the same bytes. The harness is shared
//! with the stable test `tests/suite/fuzz_mutations.rs`.
#![no_main]

#[path = "../../tests/suite/fuzz_harness.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::decode_event(data);
});
