//! The raw JetStream operations the store is compared with: plain
//! publishes (pipelined or awaited one by one) and atomic batches, with no
//! CIDs, chaining, headers or checks beyond what JetStream itself does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use async_nats::header::{NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL, NATS_BATCH_ID, NATS_BATCH_SEQUENCE};
use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use cim_store::StoreConfig;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::stats::Latencies;

/// A message as the raw baseline publishes it.
pub type RawMessage = (Subject, Bytes);

/// Creates a stream configured exactly like the store's event stream, for
/// namespace `namespace` (subjects `<namespace>.events.>`).
pub async fn create_event_stream(js: &jetstream::Context, namespace: &str) -> Result<stream::Stream> {
    let config = cim_store::events_stream_config(&StoreConfig::with_namespace(namespace));
    js.create_stream(config).await.context("creating the raw baseline's stream")
}

/// The subject the store uses for aggregate `n` in `namespace`.
pub fn subject(namespace: &str, n: usize) -> Subject {
    StoreConfig::with_namespace(namespace).names().aggregate_subject(&crate::data::aggregate(n)).into()
}

/// Publishes `messages` with at most `window` acknowledgements outstanding
/// (JetStream's async publish); returns elapsed time and per-message
/// latencies from send to ack.
pub async fn publish_window(
    js: &jetstream::Context,
    messages: Vec<RawMessage>,
    window: usize,
    headers: impl Fn(usize) -> Option<HeaderMap>,
) -> Result<(Duration, Latencies)> {
    let mut latencies = Latencies::with_capacity(messages.len());
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    for (i, (subject, payload)) in messages.into_iter().enumerate() {
        let mut message = PublishMessage::build().payload(payload);
        if let Some(headers) = headers(i) {
            message = message.headers(headers);
        }
        let sent = Instant::now();
        let ack = js.send_publish(subject, message).await.context("raw publish")?;
        in_flight.push(async move { ack.await.map(|_| sent.elapsed()) });
        if in_flight.len() >= window
            && let Some(done) = in_flight.next().await
        {
            latencies.record(done.context("raw publish ack")?);
        }
    }
    while let Some(done) = in_flight.next().await {
        latencies.record(done.context("raw publish ack")?);
    }
    Ok((started.elapsed(), latencies))
}

/// The headers the store puts on message `i` of a run that publishes, in
/// order into an empty stream, events of `subjects` aggregates round-robin
/// (message `i` on subject `i % subjects`, stored at sequence `i + 1`): its
/// CID as message id, and as expected last subject sequence that of message
/// `i - subjects` — left out when that message is in the same atomic batch
/// (from `batch_start` on), as JetStream allows it only on a subject's first
/// message in a batch.
pub fn store_headers(cid: &cim_cid::Cid, i: usize, subjects: usize, batch_start: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, cid.to_string().as_str());
    let previous = i.checked_sub(subjects);
    if previous.is_none_or(|p| p < batch_start) {
        let expected = previous.map_or(0, |p| p + 1);
        headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, expected.to_string().as_str());
    }
    headers
}

/// Publishes `messages` one at a time, each awaiting its ack.
pub async fn publish_sequential(js: &jetstream::Context, messages: Vec<RawMessage>) -> Result<(Duration, Latencies)> {
    let mut latencies = Latencies::with_capacity(messages.len());
    let started = Instant::now();
    for (subject, payload) in messages {
        let sent = Instant::now();
        js.send_publish(subject, PublishMessage::build().payload(payload))
            .await
            .context("raw publish")?
            .await
            .context("raw publish ack")?;
        latencies.record(sent.elapsed());
    }
    Ok((started.elapsed(), latencies))
}

/// Publishes `messages` as one JetStream atomic batch (all but the last
/// through core NATS, the last with the commit marker through JetStream) and
/// awaits the commit's ack. `headers(i)` gives extra headers for the
/// batch's message `i`.
pub async fn publish_batch(
    client: &async_nats::Client,
    js: &jetstream::Context,
    messages: &[RawMessage],
    headers: impl Fn(usize) -> Option<HeaderMap>,
) -> Result<()> {
    ensure!(!messages.is_empty(), "an atomic batch needs a message");
    let batch_id = nuid::next().to_string();
    let last = messages.len();
    for (i, (subject, payload)) in messages.iter().enumerate() {
        let mut headers = headers(i).unwrap_or_default();
        headers.insert(NATS_BATCH_ID, batch_id.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, (i + 1).to_string().as_str());
        if i + 1 == last {
            headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL);
            let message = PublishMessage::build().payload(payload.clone()).headers(headers);
            js.send_publish(subject.clone(), message)
                .await
                .context("raw batch commit")?
                .await
                .context("raw batch ack")?;
        } else {
            client
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await
                .context("raw batch publish")?;
        }
    }
    Ok(())
}
