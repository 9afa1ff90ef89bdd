//! Reading events: one aggregate (all, from a version, as of a time), the
//! whole log from a position, a live subscription, one event by CID. Every
//! event is verified against its CID before it is returned.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::stream;
use cim_cid::{AggregateKey, Cid, Timestamp};
use futures::FutureExt;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::consume::{Cleanup, End, last_seq_of, ordered_messages};
use crate::direct::{self, Lookup};
use crate::message::{decode_consumer_message, decode_stream_message};
use crate::{Error, EventStore, Result, StoredEvent};

/// Where a read of the log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// The first event in the stream.
    #[default]
    Beginning,
    /// The event at this stream sequence, or the next one after it.
    Sequence(u64),
    /// The first event the server stored at or after this time.
    Time(Timestamp),
}

impl StartAt {
    fn deliver_policy(self) -> DeliverPolicy {
        match self {
            Self::Beginning | Self::Sequence(0) => DeliverPolicy::All,
            Self::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            Self::Time(time) => DeliverPolicy::ByStartTime {
                start_time: time.to_offset_date_time().unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            },
        }
    }
}

/// Which of an aggregate's events to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateQuery {
    /// First version to return (versions start at 1).
    pub from_version: u64,
    /// Last version to return, if bounded.
    pub to_version: Option<u64>,
    /// Only events whose envelope timestamp is at or before this time: the
    /// aggregate as it was then.
    pub as_of: Option<Timestamp>,
}

impl Default for AggregateQuery {
    fn default() -> Self {
        Self { from_version: 1, to_version: None, as_of: None }
    }
}

impl AggregateQuery {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Events from `version` on.
    pub fn from_version(version: u64) -> Self {
        Self { from_version: version, ..Self::default() }
    }

    /// Events up to `version`: the aggregate's state at that version.
    pub fn up_to_version(version: u64) -> Self {
        Self { to_version: Some(version), ..Self::default() }
    }

    /// Events that had happened by `time`.
    pub fn as_of(time: Timestamp) -> Self {
        Self { as_of: Some(time), ..Self::default() }
    }

    fn admits(&self, event: &StoredEvent) -> bool {
        event.version() >= self.from_version
    }

    fn is_past_end(&self, event: &StoredEvent) -> bool {
        self.to_version.is_some_and(|last| event.version() > last)
            || self.as_of.is_some_and(|time| event.event.envelope.timestamp() > time)
    }
}

impl EventStore {
    /// An aggregate's events, in version order, verified.
    pub async fn read_aggregate(&self, aggregate: &AggregateKey, query: AggregateQuery) -> Result<Vec<StoredEvent>> {
        self.aggregate_events(aggregate, query).await?.try_collect().await
    }

    /// An aggregate's events as a stream, for aggregates too long to hold.
    /// Each event must link the one before it: a version missing from the
    /// stream (a message the server cannot load) is an error naming it.
    pub async fn aggregate_events(
        &self,
        aggregate: &AggregateKey,
        query: AggregateQuery,
    ) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        let subject = self.names().aggregate_subject(aggregate);
        let end = End::At(last_seq_of(self.stream(), &subject).await?);
        let events = self.ordered(subject, DeliverPolicy::All, end).await?;
        let mut previous: Option<(u64, Cid)> = None;
        Ok(events
            .map(move |item| {
                let stored = item?;
                check_follows(previous.as_ref(), &stored)?;
                previous = Some((stored.version(), stored.event.cid));
                Ok(stored)
            })
            .try_skip_while(move |event| futures::future::ready(Ok(!query.admits(event))))
            .try_take_while(move |event| futures::future::ready(Ok(!query.is_past_end(event))))
            .boxed())
    }

    /// Every event from `start` up to the last one stored when called, in
    /// stream order. Corrupt events are yielded as errors and reading goes on.
    pub async fn read_log(&self, start: StartAt) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        let end = End::At(self.log_state().await?.last_seq);
        self.ordered(self.names().all_events(), start.deliver_policy(), end).await
    }

    /// Every event from `start` through stream sequence `last_seq`, in
    /// stream order: a stable range while writers go on appending.
    pub async fn read_log_until(
        &self,
        start: StartAt,
        last_seq: u64,
    ) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        self.ordered(self.names().all_events(), start.deliver_policy(), End::At(last_seq)).await
    }

    /// The events of every aggregate of one type from `start` up to the
    /// last one stored when called, in stream order.
    pub async fn read_type(
        &self,
        aggregate_type: &str,
        start: StartAt,
    ) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        let subject = self.type_subject(aggregate_type)?;
        let end = End::At(last_seq_of(self.stream(), &subject).await?);
        self.ordered(subject, start.deliver_policy(), end).await
    }

    /// The events of every aggregate of one type from `start`, then each new
    /// one as it is stored; never ends.
    pub async fn subscribe_type(
        &self,
        aggregate_type: &str,
        start: StartAt,
    ) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        let subject = self.type_subject(aggregate_type)?;
        self.ordered(subject, start.deliver_policy(), End::Never).await
    }

    /// Every aggregate of one type with its number of events, from the
    /// stream's subject counts (no events are read).
    pub async fn aggregates(&self, aggregate_type: &str) -> Result<Vec<(AggregateKey, u64)>> {
        let subject = self.type_subject(aggregate_type)?;
        let counts: Vec<(String, usize)> = self
            .stream()
            .info_with_subjects(&subject)
            .await
            .map_err(|e| Error::nats("listing aggregates", e))?
            .try_collect()
            .await
            .map_err(|e| Error::nats("listing aggregates", e))?;
        let mut aggregates: Vec<(AggregateKey, u64)> = counts
            .into_iter()
            .filter_map(|(subject, count)| {
                let (aggregate_type, aggregate_id) = self.names().aggregate_of_subject(&subject)?;
                Some((AggregateKey::new(aggregate_type, aggregate_id).ok()?, count as u64))
            })
            .collect();
        aggregates.sort();
        Ok(aggregates)
    }

    fn type_subject(&self, aggregate_type: &str) -> Result<String> {
        cim_cid::validate_aggregate_type(aggregate_type)?;
        Ok(format!("{}.{aggregate_type}.*", self.names().events_prefix))
    }

    /// Every event from `start`, then each new event as it is stored; never
    /// ends. Catch-up and tail are one ordered consumer, so nothing is missed
    /// or repeated between them.
    pub async fn subscribe(&self, start: StartAt) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        self.ordered(self.names().all_events(), start.deliver_policy(), End::Never).await
    }

    /// One event by CID, verified.
    pub async fn event(&self, cid: &Cid) -> Result<StoredEvent> {
        let seq = self.dag().await?.position(cid).ok_or(Error::EventNotFound(*cid))?;
        let message =
            direct::get(self.stream(), Lookup::Seq(seq)).await.map_err(|e| Error::nats("reading an event", e))?;
        let Some(message) = message else {
            // Dropped to the tiers after the DAG was built?
            if self.retention_point().await?.is_some_and(|point| point.through_seq >= seq) {
                return Err(Error::EventArchived { cid: *cid, seq });
            }
            return Err(Error::CorruptEvent {
                seq,
                cid: Some(*cid),
                reason: "the DAG places this event here, but the stream has no readable message there".into(),
            });
        };
        let stored = decode_stream_message(self.names(), &message)?;
        if stored.event.cid != *cid {
            return Err(Error::CorruptEvent {
                seq,
                cid: Some(stored.event.cid),
                reason: format!("the DAG places {cid} at this sequence, but another event is stored there"),
            });
        }
        Ok(stored)
    }

    /// Stream sequence of the last stored event (0 when empty) and the
    /// number of events.
    pub async fn log_state(&self) -> Result<LogState> {
        let info = self.stream().get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?;
        Ok(LogState::from(&info))
    }

    /// Verified events through an ordered consumer, up to `end`.
    async fn ordered(
        &self,
        filter_subject: String,
        deliver_policy: DeliverPolicy,
        end: End,
    ) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        ordered_events(self.stream(), self.names().clone(), filter_subject, deliver_policy, end, self.cleanup()).await
    }
}

/// Counts of the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    /// Events stored.
    pub events: u64,
    /// Sequence of the first event.
    pub first_seq: u64,
    /// Sequence of the last event (0 when empty).
    pub last_seq: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Distinct aggregates (subjects).
    pub aggregates: u64,
}

impl From<&stream::Info> for LogState {
    fn from(info: &stream::Info) -> Self {
        Self {
            events: info.state.messages,
            first_seq: info.state.first_sequence,
            last_seq: info.state.last_sequence,
            bytes: info.state.bytes,
            aggregates: info.state.subjects_count,
        }
    }
}

/// Verified events through an ordered consumer (the shared reading path of
/// the store, the live DAG and verification).
pub(crate) async fn ordered_events(
    stream: &stream::Stream,
    names: crate::config::Names,
    filter_subject: String,
    deliver_policy: DeliverPolicy,
    end: End,
    cleanup: Cleanup,
) -> Result<BoxStream<'static, Result<StoredEvent>>> {
    let config = OrderedConfig { filter_subject, deliver_policy, ..Default::default() };
    let messages = ordered_messages(stream, config, end, cleanup).await?;
    Ok(messages
        .ready_chunks(DECODE_CHUNK)
        .map(move |chunk| decode_chunk(names.clone(), chunk))
        .buffered(DECODE_AHEAD)
        .flat_map(futures::stream::iter)
        .boxed())
}

/// Most messages decoded as one unit of work.
const DECODE_CHUNK: usize = 256;
/// Chunks of at least this many ready messages are decoded on the blocking
/// pool while the next ones are read; smaller ones — the live tail — are
/// decoded in place, where a thread hand-off would only add latency.
const PARALLEL_DECODE_MIN: usize = 64;
/// Chunks in flight (being decoded, or decoded and waiting to be read).
const DECODE_AHEAD: usize = 8;

/// Verifies a chunk of messages, keeping their order.
fn decode_chunk(
    names: crate::config::Names,
    chunk: Vec<Result<async_nats::jetstream::Message>>,
) -> impl Future<Output = Vec<Result<StoredEvent>>> {
    let in_place = chunk.len() < PARALLEL_DECODE_MIN;
    let decode = move || chunk.into_iter().map(|message| decode_consumer_message(&names, &message?)).collect();
    if in_place {
        return futures::future::Either::Left(std::future::ready(decode()));
    }
    futures::future::Either::Right(tokio::task::spawn_blocking(decode).map(|joined| match joined {
        Ok(events) => events,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => vec![Err(Error::nats("decoding events", "the runtime is shutting down"))],
    }))
}

/// Checks that `stored` is the event after `previous` in its aggregate.
fn check_follows(previous: Option<&(u64, Cid)>, stored: &StoredEvent) -> Result<()> {
    let Some((version, cid)) = previous else { return Ok(()) };
    let envelope = &stored.event.envelope;
    if envelope.version() == version + 1 && envelope.prev() == Some(cid) {
        return Ok(());
    }
    let missing = envelope.prev().map_or_else(String::new, |prev| format!(" (its prev names {prev})"));
    Err(Error::CorruptEvent {
        seq: stored.seq,
        cid: Some(stored.event.cid),
        reason: format!(
            "version {} of {} follows version {version} ({cid}) in the stream: the events between are missing or unreadable{missing}",
            envelope.version(),
            envelope.aggregate(),
        ),
    })
}
