//! Restoring events at the stream sequences they had: what `cim restore`
//! needs to bring a host back from the Storage Manager's tiers so that the
//! archive's segments (which name stream sequences) describe the restored
//! stream exactly.
//!
//! Events go out in stream order as JetStream atomic batches whose first
//! message carries `Nats-Expected-Last-Sequence` (the stream's, not a
//! subject's): the server stores a batch only if the stream ends exactly
//! before it, so a restore can never interleave with other writers or land
//! at other sequences. Message ids are the event CIDs, as for every append.

use async_nats::HeaderMap;
use async_nats::header::{
    NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL, NATS_BATCH_ID, NATS_BATCH_SEQUENCE, NATS_EXPECTED_LAST_SEQUENCE,
    NATS_MESSAGE_ID,
};
use async_nats::jetstream::message::PublishMessage;
use cim_cid::Event;

use crate::direct::{self, Lookup};
use crate::message::message_cid;
use crate::{Error, EventStore, MAX_BATCH_EVENTS, Result};

impl EventStore {
    /// Stores `events` at stream sequences `first_seq`, `first_seq + 1`, …:
    /// exactly as they are (same bytes, same CIDs), atomically, and only if
    /// the stream's last sequence is `first_seq - 1`. Returns `false` when
    /// they were already stored there (a retry), `true` when stored now.
    ///
    /// The caller verified the events and their chains; the server checks
    /// the position. At most [`MAX_BATCH_EVENTS`] events.
    ///
    /// # Errors
    /// [`Error::InvalidImport`] when the stream holds other events at those
    /// sequences or ends elsewhere; NATS failures.
    pub async fn restore_at(&self, first_seq: u64, events: &[Event]) -> Result<bool> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        if events.len() > MAX_BATCH_EVENTS {
            return Err(Error::TooManyEvents { count: events.len(), max: MAX_BATCH_EVENTS });
        }
        if self.stored_at(first_seq, events).await? {
            return Ok(false);
        }
        let mut encoded = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let (cid, bytes) = event.envelope.encode()?;
            if cid != event.cid {
                return Err(Error::Invalid(cim_cid::Error::CidMismatch { expected: event.cid, actual: cid }));
            }
            if bytes.len() > self.config().max_event_bytes {
                return Err(Error::EventTooLarge { index, size: bytes.len(), max: self.config().max_event_bytes });
            }
            encoded.push((self.names().aggregate_subject(&event.envelope.aggregate()), bytes::Bytes::from(bytes)));
        }
        let batch_id = nuid::next().to_string();
        let last = events.len() - 1;
        let mut ack = None;
        for (index, ((subject, bytes), event)) in encoded.into_iter().zip(events).enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, event.cid.to_string().as_str());
            if index == 0 {
                headers.insert(NATS_EXPECTED_LAST_SEQUENCE, (first_seq - 1).to_string().as_str());
            }
            if events.len() > 1 {
                headers.insert(NATS_BATCH_ID, batch_id.as_str());
                headers.insert(NATS_BATCH_SEQUENCE, (index + 1).to_string().as_str());
            }
            if index < last {
                self.client()
                    .publish_with_headers(subject, headers, bytes)
                    .await
                    .map_err(|e| Error::nats("publishing a restore batch", e))?;
                continue;
            }
            if events.len() > 1 {
                headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL);
            }
            let message = PublishMessage::build().payload(bytes).headers(headers);
            let pending = self
                .jetstream()
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| Error::nats("committing a restore batch", e))?;
            ack = Some(crate::retry::unless_denied(&subject, pending.into_future()).await);
        }
        match ack.expect("the last event is committed") {
            Ok(ack) if !ack.duplicate && ack.sequence == first_seq + last as u64 => Ok(true),
            outcome => {
                // Refused (wrong last sequence, a duplicate id) or lost:
                // stored by an earlier attempt, or something else is there.
                if self.stored_at(first_seq, events).await? {
                    return Ok(false);
                }
                let state = self.log_state().await?;
                let why = match outcome {
                    Ok(ack) => format!("the server stored the batch's end at sequence {}", ack.sequence),
                    Err(error) => Error::nats("committing a restore batch", error).to_string(),
                };
                Err(Error::InvalidImport(format!(
                    "cannot restore events at stream sequences {first_seq}..={}: the stream ends at {} ({why})",
                    first_seq + last as u64,
                    state.last_seq
                )))
            }
        }
    }

    /// Whether the stream holds `events` at `first_seq`, … already.
    async fn stored_at(&self, first_seq: u64, events: &[Event]) -> Result<bool> {
        let state = self.log_state().await?;
        if state.last_seq < first_seq + events.len() as u64 - 1 {
            return Ok(false);
        }
        for (offset, event) in events.iter().enumerate() {
            let seq = first_seq + offset as u64;
            let message = direct::get(self.stream(), Lookup::Seq(seq))
                .await
                .map_err(|e| Error::nats("reading a restored event", e))?;
            let Some(message) = message else { return Ok(false) };
            if message_cid(seq, Some(&message.headers))? != event.cid {
                return Err(Error::InvalidImport(format!(
                    "stream sequence {seq} holds another event than {} the archive has there",
                    event.cid
                )));
            }
        }
        Ok(true)
    }
}
