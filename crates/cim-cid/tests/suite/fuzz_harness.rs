//! The decoder fuzz harness, shared by the cargo-fuzz target
//! `fuzz/fuzz_targets/decode_event.rs` and the deterministic mutation test
//! in `fuzz_mutations.rs` (which runs on stable, in CI).

use cim_cid::{Event, Ipld, dag_cbor_cid, decode_dag_cbor, encode_dag_cbor};

/// Feeds arbitrary bytes to both decoders. Panics if a decoder panics, or if
/// something a decoder accepts does not re-encode to exactly the same bytes
/// and CID: a canonical decoder accepts one encoding per value.
pub fn decode_event(data: &[u8]) {
    let cid = dag_cbor_cid(data);
    if let Ok(event) = Event::from_block(&cid, data) {
        let (again, bytes) = Event::encode(event.envelope).expect("an accepted event re-encodes");
        assert_eq!(hex(&bytes), hex(data), "an accepted event re-encodes to other bytes");
        assert_eq!(again.cid, cid);
    }
    if let Ok(ipld) = decode_dag_cbor::<Ipld>("fuzz input", data) {
        let (again, bytes) = encode_dag_cbor(&ipld).expect("accepted IPLD re-encodes");
        assert_eq!(hex(&bytes), hex(data), "accepted IPLD re-encodes to other bytes");
        assert_eq!(again, cid);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
