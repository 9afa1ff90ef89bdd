//! Canonical DAG-CBOR encoding and decoding, and the DAG-JSON bridge used at
//! the edges (CLI, HTTP) where people type JSON.

use cid::Cid;
use ipld_core::ipld::Ipld;
use serde::{Serialize, de::DeserializeOwned};

use crate::address::dag_cbor_cid;
use crate::{Error, Result};

/// Encodes a value as canonical DAG-CBOR (map keys sorted length-first, then
/// bytewise; minimal integers; links as tag 42) and returns its CID.
pub fn encode_dag_cbor<T: Serialize + ?Sized>(value: &T) -> Result<(Cid, Vec<u8>)> {
    let bytes = serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
    Ok((dag_cbor_cid(&bytes), bytes))
}

/// Decodes DAG-CBOR strictly: non-canonical input (unsorted or duplicate map
/// keys, non-minimal integers, indefinite lengths, tags other than 42,
/// trailing bytes) is refused. `what` names the item in the error.
///
/// The decoder alone accepts a few non-canonical forms (bytes after the CID
/// inside a link; a missing key for an optional field), so a value is only
/// accepted if encoding it again gives back exactly `bytes`: one value, one
/// encoding, one CID.
pub fn decode_dag_cbor<T: DeserializeOwned + Serialize>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let value: T = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Decode { what, reason: e.to_string() })?;
    let canonical = serde_ipld_dagcbor::to_vec(&value).map_err(|e| Error::Decode { what, reason: e.to_string() })?;
    if canonical != bytes {
        return Err(Error::Decode {
            what,
            reason: "not in canonical form: encoding the decoded value gives different bytes".to_owned(),
        });
    }
    Ok(value)
}

/// Decodes DAG-CBOR into a type whose deserializer admits one encoding per
/// value — no optional keys, no coercions between kinds (as for
/// [`EventEnvelope`](crate::EventEnvelope) and [`Ipld`]) — without the
/// re-encoding of [`decode_dag_cbor`]: the strict decoder and
/// [`check_links`](crate::link_bytes::check_links) refuse every other form.
pub(crate) fn decode_exact_form<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let value = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Decode { what, reason: e.to_string() })?;
    crate::link_bytes::check_links(bytes).map_err(|reason| Error::Decode { what, reason })?;
    Ok(value)
}

/// Parses DAG-JSON (plain JSON, where `{"/": "<cid>"}` is a link and
/// `{"/": {"bytes": "<base64>"}}` is a byte string) into IPLD data.
pub fn ipld_from_dag_json(json: &[u8]) -> Result<Ipld> {
    serde_ipld_dagjson::from_slice(json).map_err(|e| Error::Decode { what: "DAG-JSON", reason: e.to_string() })
}

/// Renders IPLD data as DAG-JSON.
pub fn ipld_to_dag_json(value: &Ipld) -> Result<String> {
    let bytes = serde_ipld_dagjson::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| Error::Encode(e.to_string()))
}

/// Converts a `serde_json` value into IPLD data, reading DAG-JSON links and
/// bytes, so `{"/": "bafy…"}` becomes a real link.
pub fn ipld_from_json(value: &serde_json::Value) -> Result<Ipld> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
    ipld_from_dag_json(&bytes)
}

/// Converts IPLD data into a `serde_json` value in DAG-JSON form.
pub fn ipld_to_json(value: &Ipld) -> Result<serde_json::Value> {
    let text = ipld_to_dag_json(value)?;
    serde_json::from_str(&text).map_err(|e| Error::Encode(e.to_string()))
}
