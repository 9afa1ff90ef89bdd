//! The event envelope: the exact IPLD map whose canonical DAG-CBOR encoding is
//! hashed into an event's CID. `docs/spec/event-envelope.md` is its
//! specification; this module and that document must agree.

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use ipld_core::ipld::Ipld;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::address::{DAG_CBOR, sha256_digest, verify_block};
use crate::codec::{decode_exact_form, encode_dag_cbor};
use crate::{Error, Result};

/// Value of the envelope's `format` field for this version of the envelope.
pub const EVENT_FORMAT: &str = "cim-event-v1";
/// Longest aggregate type, in bytes.
pub const MAX_AGGREGATE_TYPE_LEN: usize = 64;
/// Longest aggregate id, in bytes.
pub const MAX_AGGREGATE_ID_LEN: usize = 128;
/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Identity of an aggregate: its type and its id. Both are restricted to
/// characters that are safe inside one NATS subject token, because each
/// aggregate has its own subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateKey {
    aggregate_type: String,
    aggregate_id: String,
}

impl AggregateKey {
    /// Validates and builds a key. Types: `[A-Za-z0-9_-]`, 1–64 bytes. Ids:
    /// `[A-Za-z0-9_:@=-]`, 1–128 bytes.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Result<Self> {
        let aggregate_type = aggregate_type.into();
        let aggregate_id = aggregate_id.into();
        validate_aggregate_type(&aggregate_type)?;
        validate_aggregate_id(&aggregate_id)?;
        Ok(Self { aggregate_type, aggregate_id })
    }

    /// The aggregate's type, e.g. `order`.
    pub fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }

    /// The aggregate's id, e.g. `42`.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }
}

impl fmt::Display for AggregateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.aggregate_type, self.aggregate_id)
    }
}

impl FromStr for AggregateKey {
    type Err = Error;

    /// Parses `type/id`.
    fn from_str(s: &str) -> Result<Self> {
        let (aggregate_type, aggregate_id) = s.split_once('/').ok_or_else(|| Error::InvalidName {
            what: "aggregate",
            value: s.to_owned(),
            reason: "expected <type>/<id>, e.g. order/42",
        })?;
        Self::new(aggregate_type, aggregate_id)
    }
}

fn validate_name(
    what: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
    hint: &'static str,
) -> Result<()> {
    let invalid = |reason| Err(Error::InvalidName { what, value: value.to_owned(), reason });
    if value.is_empty() {
        return invalid("must not be empty");
    }
    if value.len() > max {
        return invalid("is too long");
    }
    if !value.bytes().all(allowed) {
        return invalid(hint);
    }
    Ok(())
}

/// Validates an aggregate type: `[A-Za-z0-9_-]`, 1–64 bytes.
pub fn validate_aggregate_type(value: &str) -> Result<()> {
    validate_name(
        "aggregate type",
        value,
        MAX_AGGREGATE_TYPE_LEN,
        |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
        "may contain only ASCII letters, digits, '_' and '-'",
    )
}

fn validate_aggregate_id(value: &str) -> Result<()> {
    validate_name(
        "aggregate id",
        value,
        MAX_AGGREGATE_ID_LEN,
        |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'@' | b'='),
        "may contain only ASCII letters, digits and '_', '-', ':', '@', '='",
    )
}

/// Validates an event type: `[A-Za-z0-9_.:/-]`, 1–128 bytes.
pub fn validate_event_type(value: &str) -> Result<()> {
    validate_name(
        "event type",
        value,
        MAX_EVENT_TYPE_LEN,
        |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'),
        "may contain only ASCII letters, digits and '_', '-', '.', ':', '/'",
    )
}

/// A point in time: whole microseconds since 1970-01-01T00:00:00Z, stored as
/// a plain integer so that every IPLD implementation reads it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time from the system clock.
    pub fn now() -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1_000) as i64)
    }

    /// Builds a timestamp from microseconds since the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time such as `2026-11-22T05:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Self> {
        let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::InvalidName { what: "timestamp", value: text.to_owned(), reason: rfc3339_hint(e) })?;
        Ok(Self((parsed.unix_timestamp_nanos() / 1_000) as i64))
    }

    /// The timestamp as a `time` date-time in UTC.
    pub fn to_offset_date_time(self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()
    }
}

fn rfc3339_hint(_: time::error::Parse) -> &'static str {
    "expected an RFC 3339 date-time such as 2026-11-22T05:00:00Z"
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds, or the raw integer when out of range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
        match self.to_offset_date_time().and_then(|t| t.format(&format).ok()) {
            Some(text) => f.write_str(&text),
            None => write!(f, "{}us", self.0),
        }
    }
}

/// What a caller supplies to append an event; the store adds the aggregate,
/// the chain position (`version`, `prev`) and, unless given, the time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened, e.g. `OrderPlaced`.
    pub event_type: String,
    /// Version of the payload's schema, from 1.
    pub schema_version: u32,
    /// The payload: any IPLD data.
    pub payload: Ipld,
    /// CIDs of the events that caused this one (causal links across aggregates).
    pub parents: Vec<Cid>,
    /// A fixed time makes the event's CID deterministic, so a retry after a
    /// lost acknowledgement is recognised as the same event.
    pub timestamp: Option<Timestamp>,
}

impl NewEvent {
    /// An event of schema version 1 with no parents, timed when appended.
    pub fn new(event_type: impl Into<String>, payload: Ipld) -> Self {
        Self { event_type: event_type.into(), schema_version: 1, payload, parents: Vec::new(), timestamp: None }
    }

    /// Adds causal parents.
    pub fn with_parents(mut self, parents: impl IntoIterator<Item = Cid>) -> Self {
        self.parents.extend(parents);
        self
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }

    /// Fixes the event time.
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// Marker for the envelope's `format` field: always [`EVENT_FORMAT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FormatTag;

impl Serialize for FormatTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(EVENT_FORMAT)
    }
}

impl<'de> Deserialize<'de> for FormatTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == EVENT_FORMAT {
            Ok(FormatTag)
        } else {
            Err(serde::de::Error::custom(format!("unknown event format {text:?}, expected {EVENT_FORMAT:?}")))
        }
    }
}

/// The event envelope. Field names are the DAG-CBOR map keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    format: FormatTag,
    aggregate_type: String,
    aggregate_id: String,
    event_type: String,
    schema_version: u32,
    version: u64,
    timestamp_us: Timestamp,
    // Required even when null: serde would otherwise read a missing key as
    // `None`, giving one envelope two encodings.
    #[serde(deserialize_with = "required_link")]
    prev: Option<Cid>,
    parents: Vec<Cid>,
    payload: Ipld,
}

fn required_link<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Cid>, D::Error> {
    Option::<Cid>::deserialize(deserializer)
}

impl EventEnvelope {
    /// Places a new event at `version` of `aggregate`'s chain, after `prev`.
    pub fn chained(aggregate: &AggregateKey, version: u64, prev: Option<Cid>, event: NewEvent) -> Result<Self> {
        let envelope = Self {
            format: FormatTag,
            aggregate_type: aggregate.aggregate_type.clone(),
            aggregate_id: aggregate.aggregate_id.clone(),
            event_type: event.event_type,
            schema_version: event.schema_version,
            version,
            timestamp_us: event.timestamp.unwrap_or_else(Timestamp::now),
            prev,
            parents: event.parents,
            payload: event.payload,
        };
        envelope.validate()?;
        Ok(envelope)
    }

    /// Checks every rule of the specification that the encoding alone does
    /// not enforce.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| Err(Error::InvalidEnvelope { field, reason: reason.to_owned() });
        validate_aggregate_type(&self.aggregate_type)?;
        validate_aggregate_id(&self.aggregate_id)?;
        validate_event_type(&self.event_type)?;
        if self.schema_version == 0 {
            return invalid("schema_version", "must be at least 1");
        }
        match (self.version, &self.prev) {
            (0, _) => return invalid("version", "must be at least 1"),
            (1, Some(_)) => return invalid("prev", "must be null for the first event (version 1)"),
            (2.., None) => return invalid("prev", "must link the previous event for versions after 1"),
            (_, Some(prev)) => check_event_link("prev", prev)?,
            (1, None) => {}
        }
        for (i, parent) in self.parents.iter().enumerate() {
            check_event_link("parents", parent)?;
            if self.parents[..i].contains(parent) {
                return invalid("parents", &format!("lists {parent} twice"));
            }
        }
        Ok(())
    }

    /// Canonical DAG-CBOR bytes and CID of this envelope.
    pub fn encode(&self) -> Result<(Cid, Vec<u8>)> {
        self.validate()?;
        encode_dag_cbor(self)
    }

    /// The aggregate this event belongs to.
    pub fn aggregate(&self) -> AggregateKey {
        AggregateKey { aggregate_type: self.aggregate_type.clone(), aggregate_id: self.aggregate_id.clone() }
    }

    /// The aggregate's type.
    pub fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }

    /// The aggregate's id.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// What happened.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// Version of the payload's schema.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// Position in the aggregate's chain, from 1.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the event happened.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp_us
    }

    /// CID of the aggregate's previous event; `None` only for version 1.
    pub fn prev(&self) -> Option<&Cid> {
        self.prev.as_ref()
    }

    /// CIDs of the events that caused this one.
    pub fn parents(&self) -> &[Cid] {
        &self.parents
    }

    /// The payload.
    pub fn payload(&self) -> &Ipld {
        &self.payload
    }
}

fn check_event_link(field: &'static str, cid: &Cid) -> Result<()> {
    sha256_digest(cid).map_err(|e| Error::InvalidEnvelope { field, reason: e.to_string() })?;
    if cid.codec() != DAG_CBOR {
        return Err(Error::InvalidEnvelope {
            field,
            reason: format!("{cid} is not a dag-cbor CID, so it cannot be an event"),
        });
    }
    Ok(())
}

/// A decoded event whose bytes were checked against its CID.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's CID.
    pub cid: Cid,
    /// The decoded envelope.
    pub envelope: EventEnvelope,
}

impl Event {
    /// Decodes stored bytes that claim to be the event `cid`: the bytes must
    /// hash to the CID, be canonical DAG-CBOR and form a valid envelope.
    pub fn from_block(cid: &Cid, bytes: &[u8]) -> Result<Self> {
        if cid.codec() != DAG_CBOR {
            return Err(Error::UnsupportedCid { cid: *cid, reason: "an event's CID must have the dag-cbor codec" });
        }
        verify_block(cid, bytes)?;
        let envelope: EventEnvelope = decode_exact_form("event envelope", bytes)?;
        envelope.validate()?;
        Ok(Self { cid: *cid, envelope })
    }

    /// Encodes an envelope into an event and its bytes.
    pub fn encode(envelope: EventEnvelope) -> Result<(Self, Vec<u8>)> {
        let (cid, bytes) = envelope.encode()?;
        Ok((Self { cid, envelope }, bytes))
    }
}
