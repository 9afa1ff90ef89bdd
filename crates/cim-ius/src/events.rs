//! Units' events as stored: the change's payload plus `state`, the CID of
//! the state the event produces.

use cim_cid::{Cid, Ipld, ipld_from_json, ipld_to_json};
use cim_store::StoredEvent;
use serde_json::Value;

use crate::model::Change;

/// A unit event read back: the change and the state CID it recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitEvent {
    /// The change.
    pub change: Change,
    /// The recorded state CID.
    pub state: Cid,
}

/// The IPLD payload of an event making `change` and producing state `state`.
pub fn encode(change: &Change, state: &Cid) -> Result<Ipld, cim_cid::Error> {
    let tagged = serde_json::to_value(change).map_err(|e| cim_cid::Error::Encode(e.to_string()))?;
    let mut payload = match tagged.get("payload") {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    payload.insert("state".to_owned(), Value::String(state.to_string()));
    ipld_from_json(&Value::Object(payload))
}

/// Reads a stored event of a unit back; the error says what is wrong.
pub fn decode(stored: &StoredEvent) -> Result<UnitEvent, String> {
    let envelope = &stored.event.envelope;
    let mut payload = match ipld_to_json(envelope.payload()) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err("the payload is not a map".to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    let state = match payload.remove("state") {
        Some(Value::String(text)) => text.parse::<Cid>().map_err(|e| format!("`state` is not a CID: {e}"))?,
        _ => return Err("`state` is missing".to_owned()),
    };
    let tagged = serde_json::json!({ "event_type": envelope.event_type(), "payload": payload });
    let change = serde_json::from_value(tagged).map_err(|e| format!("not a {} event: {e}", envelope.event_type()))?;
    Ok(UnitEvent { change, state })
}
