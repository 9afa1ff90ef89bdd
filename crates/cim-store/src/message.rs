//! Turning stream messages into verified events. Every read path goes
//! through [`decode_event_message`], so nothing reaches a caller unchecked.

use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_ID;
use cim_cid::{Cid, Event, Timestamp};

use crate::config::Names;
use crate::{Error, Result};

/// An event as stored: verified against its CID, with its stream position.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Stream sequence: the event's position in the whole log.
    pub seq: u64,
    /// When the server stored it.
    pub stored_at: Timestamp,
    /// The verified event.
    pub event: Event,
}

impl StoredEvent {
    /// The event's CID.
    pub fn cid(&self) -> &Cid {
        &self.event.cid
    }

    /// The event's version in its aggregate.
    pub fn version(&self) -> u64 {
        self.event.envelope.version()
    }
}

/// The parts of a stream message the store reads.
pub(crate) struct RawMessage<'a> {
    pub seq: u64,
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: &'a [u8],
    pub stored_at: time::OffsetDateTime,
}

/// The event CID a message carries in its `Nats-Msg-Id` header.
pub(crate) fn message_cid(seq: u64, headers: Option<&HeaderMap>) -> Result<Cid> {
    let corrupt = |reason: String| Error::CorruptEvent { seq, cid: None, reason };
    let value = headers.and_then(|h| h.get(NATS_MESSAGE_ID)).ok_or_else(|| {
        corrupt("no Nats-Msg-Id header: the message does not say which event CID it holds".to_owned())
    })?;
    value
        .as_str()
        .parse()
        .map_err(|e| corrupt(format!("its Nats-Msg-Id header {:?} is not a CID: {e}", value.as_str())))
}

/// Verifies a stream message as an event of this store: its bytes hash to the
/// CID in its header, decode as a valid envelope, and belong to the
/// aggregate whose subject they are stored under.
pub(crate) fn decode_event_message(names: &Names, message: RawMessage<'_>) -> Result<StoredEvent> {
    let seq = message.seq;
    let cid = message_cid(seq, message.headers)?;
    let event = Event::from_block(&cid, message.payload).map_err(|e| Error::CorruptEvent {
        seq,
        cid: Some(cid),
        reason: e.to_string(),
    })?;
    let envelope = &event.envelope;
    if names.aggregate_of_subject(message.subject) != Some((envelope.aggregate_type(), envelope.aggregate_id())) {
        return Err(Error::CorruptEvent {
            seq,
            cid: Some(cid),
            reason: format!(
                "it belongs to aggregate {} but is stored under subject {}",
                envelope.aggregate(),
                message.subject
            ),
        });
    }
    let stored_at = Timestamp::from_unix_micros((message.stored_at.unix_timestamp_nanos() / 1_000) as i64);
    Ok(StoredEvent { seq, stored_at, event })
}

/// Decodes a message delivered by a consumer.
pub(crate) fn decode_consumer_message(names: &Names, message: &async_nats::jetstream::Message) -> Result<StoredEvent> {
    let info = message.info().map_err(|e| Error::nats("reading a delivered message's metadata", e.to_string()))?;
    decode_event_message(
        names,
        RawMessage {
            seq: info.stream_sequence,
            subject: message.subject.as_str(),
            headers: message.headers.as_ref(),
            payload: &message.payload,
            stored_at: info.published,
        },
    )
}

/// Decodes a message fetched with a direct get.
pub(crate) fn decode_stream_message(
    names: &Names,
    message: &async_nats::jetstream::message::StreamMessage,
) -> Result<StoredEvent> {
    decode_event_message(
        names,
        RawMessage {
            seq: message.sequence,
            subject: message.subject.as_str(),
            headers: Some(&message.headers),
            payload: &message.payload,
            stored_at: message.time,
        },
    )
}
