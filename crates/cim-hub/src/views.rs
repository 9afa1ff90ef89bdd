//! The JSON the HTTP API, the feed, webhooks and MCP show events in.

use cim_store::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One stored event, verified against its CID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// The event's CID (CIDv1, dag-cbor, sha2-256), recomputed from its bytes.
    pub cid: String,
    /// Its position in the whole log (the stream sequence; the feed's event id).
    pub seq: u64,
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Its position in the aggregate's chain, from 1.
    pub version: u64,
    /// What happened.
    pub event_type: String,
    /// Version of the payload's schema.
    pub schema_version: u32,
    /// When it happened: microseconds since the Unix epoch.
    pub timestamp_us: i64,
    /// The same time in RFC 3339.
    pub timestamp: String,
    /// CID of the aggregate's previous event; null for version 1.
    pub prev: Option<String>,
    /// CIDs of the events that caused it.
    pub parents: Vec<String>,
    /// The payload as DAG-JSON (`{"/": "<cid>"}` is a link).
    #[schema(schema_with = any_value)]
    pub payload: Value,
    /// When the server stored it (RFC 3339).
    pub stored_at: String,
    /// Its bytes hash to its CID and decode as a valid envelope (always
    /// true: an event that does not verify is an error, never shown).
    pub verified: bool,
    /// Who appended it, when recorded (`Cim-Caller`, outside the CID);
    /// given by the single-event read only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
}

/// The schema of any JSON value (a payload may be a map, a list, a string,
/// a number, a boolean or null).
pub fn any_value() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::Schema::Object(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some("Any JSON value (DAG-JSON: {\"/\": \"<cid>\"} is a link)"))
            .build(),
    )
}

/// RFC 3339 of a timestamp, or an empty string when out of range.
pub fn rfc3339(timestamp: cim_cid::Timestamp) -> String {
    timestamp
        .to_offset_date_time()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl EventView {
    /// The view of a stored event.
    pub fn of(stored: &StoredEvent) -> Self {
        let envelope = &stored.event.envelope;
        Self {
            cid: stored.event.cid.to_string(),
            seq: stored.seq,
            aggregate_type: envelope.aggregate_type().to_owned(),
            aggregate_id: envelope.aggregate_id().to_owned(),
            version: envelope.version(),
            event_type: envelope.event_type().to_owned(),
            schema_version: envelope.schema_version(),
            timestamp_us: envelope.timestamp().unix_micros(),
            timestamp: rfc3339(envelope.timestamp()),
            prev: envelope.prev().map(ToString::to_string),
            parents: envelope.parents().iter().map(ToString::to_string).collect(),
            payload: cim_cid::ipld_to_json(envelope.payload()).unwrap_or(Value::Null),
            stored_at: rfc3339(stored.stored_at),
            verified: true,
            caller: None,
        }
    }
}
