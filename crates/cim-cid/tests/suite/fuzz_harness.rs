//! The decoder fuzz harness, shared by the cargo-fuzz target
//! `fuzz/fuzz_targets/decode_event.rs` and the deterministic mutation test
//! in `fuzz_mutations.rs` (which runs on stable, in CI).

use cim_cid::{Event, EventEnvelope, Ipld, dag_cbor_cid, decode_dag_cbor, encode_dag_cbor};

/// Feeds arbitrary bytes to both decoders. Panics if a decoder panics, if
/// something a decoder accepts does not re-encode to exactly the same bytes
/// and CID (a canonical decoder accepts one encoding per value), or if
/// `Event::from_block`, which checks the canonical form without re-encoding,
/// disagrees with the reference: decode, re-encode, compare.
pub fn decode_event(data: &[u8]) {
    let cid = dag_cbor_cid(data);
    let event = Event::from_block(&cid, data);
    if let Ok(event) = &event {
        let (again, bytes) = Event::encode(event.envelope.clone()).expect("an accepted event re-encodes");
        assert_eq!(hex(&bytes), hex(data), "an accepted event re-encodes to other bytes");
        assert_eq!(again.cid, cid);
    }
    assert_eq!(event.is_ok(), reference_accepts_event(data), "Event::from_block disagrees with the reference");
    if let Ok(ipld) = decode_dag_cbor::<Ipld>("fuzz input", data) {
        let (again, bytes) = encode_dag_cbor(&ipld).expect("accepted IPLD re-encodes");
        assert_eq!(hex(&bytes), hex(data), "accepted IPLD re-encodes to other bytes");
        assert_eq!(again, cid);
    }
}

/// The slow, obviously canonical check: the decoded envelope is valid and
/// encodes back to exactly these bytes.
fn reference_accepts_event(data: &[u8]) -> bool {
    serde_ipld_dagcbor::from_slice::<EventEnvelope>(data)
        .is_ok_and(|envelope| envelope.validate().is_ok() && envelope.encode().is_ok_and(|(_, bytes)| bytes == data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
