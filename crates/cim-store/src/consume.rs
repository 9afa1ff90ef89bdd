//! Ordered consumers that end: the one place the store reads a range of a
//! stream.
//!
//! A bounded read ends at the last sequence that matched when it began,
//! rather than after a count of pending messages, because JetStream skips
//! messages it cannot load (a damaged block on disk) while still counting
//! them: waiting for the count would wait forever. When nothing arrives for
//! a while, a direct get asks whether anything readable remains in range.

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::{self, stream};
use futures::stream::{BoxStream, StreamExt};

use crate::direct::{self, Lookup};
use crate::retry;
use crate::{Error, Result};

/// How long a bounded read waits for the next message before asking the
/// server whether any readable message is left in range.
const IDLE_PROBE: Duration = Duration::from_secs(2);

/// What becomes of a read's consumer when the read ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    /// Deleted at once (`CONSUMER.DELETE`): the admin's stores, whose reads
    /// (an export, a benchmark) may be many and short, and JetStream keeps
    /// every consumer in memory until it goes.
    Delete,
    /// Left to the server, which removes an ordered consumer after 30 s
    /// without pulls (its inactive threshold). A component's stores: its NATS
    /// user may not delete consumers, since a consumer name is one subject
    /// token and a permission to delete its own would be one to delete
    /// anyone's.
    Expire,
}

/// Where a read stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// After the message at this stream sequence (or the last readable one before it).
    At(u64),
    /// Never: follow the stream live.
    Never,
}

/// The stream sequence of the last message on `subject` (wildcards allowed), 0 if none.
pub(crate) async fn last_seq_of(stream: &stream::Stream, subject: &str) -> Result<u64> {
    let last = direct::get(stream, Lookup::LastFor(subject))
        .await
        .map_err(|e| Error::nats("reading the last message of a subject", e))?;
    Ok(last.map_or(0, |message| message.sequence))
}

/// Messages of an ordered consumer created with `config`, in stream order,
/// until `end`. Consumer errors are yielded and reading goes on.
pub(crate) async fn ordered_messages(
    stream: &stream::Stream,
    config: OrderedConfig,
    end: End,
    cleanup: Cleanup,
) -> Result<BoxStream<'static, Result<jetstream::Message>>> {
    if end == End::At(0) {
        return Ok(futures::stream::empty().boxed());
    }
    let filter = config.filter_subject.clone();
    // Named, so the admin's reads can delete it as soon as they end: an
    // abandoned ephemeral consumer lingers until its inactive threshold.
    let name = format!("cim-read-{}", nuid::next());
    let config = OrderedConfig { name: Some(name.clone()), ..config };
    let subject = format!(
        "$JS.API.CONSUMER.CREATE.{}.{name}{}",
        stream.cached_info().config.name,
        if filter.is_empty() { String::new() } else { format!(".{filter}") }
    );
    let consumer =
        retry::while_unavailable(&subject, || stream.create_consumer(config.clone()), retry::consumer_unavailable)
            .await
            .map_err(|e| Error::nats("creating an ordered consumer", e))?;
    let cleanup = (cleanup == Cleanup::Delete).then(|| DeleteOnDrop { stream: stream.clone(), name });
    if end != End::Never && consumer.cached_info().num_pending == 0 {
        return Ok(futures::stream::empty().boxed());
    }
    let messages = consumer.messages().await.map_err(|e| Error::nats("reading a stream", e))?;
    let state = Reader { messages, stream: stream.clone(), filter, end, last: 0, done: false, _cleanup: cleanup };
    // Boxed: `unfold` moves its state in and out of every step, and the
    // consumer's state is large enough for those copies to show in profiles.
    Ok(futures::stream::unfold(Box::new(state), Reader::next).boxed())
}

/// Deletes a consumer (and the replacements an ordered consumer creates as
/// `<name>_<n>`, which expire on their own) when the read is dropped.
struct DeleteOnDrop {
    stream: stream::Stream,
    name: String,
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (stream, name) = (self.stream.clone(), std::mem::take(&mut self.name));
            runtime.spawn(async move { stream.delete_consumer(&name).await });
        }
    }
}

struct Reader {
    messages: jetstream::consumer::pull::Ordered,
    _cleanup: Option<DeleteOnDrop>,
    stream: stream::Stream,
    filter: String,
    end: End,
    /// Sequence of the last message delivered.
    last: u64,
    done: bool,
}

impl Reader {
    async fn next(mut self: Box<Self>) -> Option<(Result<jetstream::Message>, Box<Self>)> {
        loop {
            if self.done {
                return None;
            }
            let End::At(end) = self.end else {
                // Following for ever: no end to compare positions with.
                let item = self.messages.next().await?;
                return Some((item.map_err(|e| Error::nats("reading a stream", e)), self));
            };
            match tokio::time::timeout(IDLE_PROBE, self.messages.next()).await {
                Ok(Some(item)) => {
                    let item = self.deliver(item);
                    self.done = self.last >= end;
                    return Some((item, self));
                }
                Ok(None) => return None,
                Err(_idle) => match next_readable(&self.stream, &self.filter, self.last + 1).await {
                    Ok(Some(seq)) if seq <= end => continue,
                    Ok(_) => return None,
                    Err(e) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                },
            }
        }
    }

    fn deliver(
        &mut self,
        item: Result<jetstream::Message, jetstream::consumer::pull::OrderedError>,
    ) -> Result<jetstream::Message> {
        let message = item.map_err(|e| Error::nats("reading a stream", e))?;
        if let Ok(info) = message.info() {
            self.last = info.stream_sequence;
        }
        Ok(message)
    }
}

/// The sequence of the first message on `filter` at or after `from` that the
/// server can read, if any.
pub(crate) async fn next_readable(stream: &stream::Stream, filter: &str, from: u64) -> Result<Option<u64>> {
    let next = direct::get(stream, Lookup::NextFor(filter, from))
        .await
        .map_err(|e| Error::nats("probing a stream for readable messages", e))?;
    Ok(next.map(|message| message.sequence))
}
