//! The event store: appends with server-enforced optimistic concurrency,
//! atomic multi-event appends and idempotent retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use cim_cid::{AggregateKey, Cid, Event, EventEnvelope, NewEvent, Timestamp};
use tokio::sync::OnceCell;
use tracing::debug;

use crate::commit::{Committer, Outcome, Prepared, Publisher};
use crate::config::{CommitMode, MAX_BATCH_EVENTS, Names};
use crate::consume::Cleanup;
use crate::direct::{self, Lookup};
use crate::live_dag::LiveDag;
use crate::message::decode_stream_message;
use crate::read::AggregateQuery;
use crate::retry::{self, Failure, Policy};
use crate::{Error, Result, StoreConfig, provision};

/// The version an append expects its aggregate to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append after whatever is there; the chain is still linked and
    /// checked by the server, and a race is retried internally.
    Any,
    /// Append only if the aggregate is exactly at this version (0: it has
    /// no events yet); otherwise fail with [`Error::ConcurrencyConflict`].
    Exact(u64),
}

/// One stored event of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedEvent {
    /// The event's CID.
    pub cid: Cid,
    /// Its version in the aggregate.
    pub version: u64,
    /// Its stream sequence.
    pub seq: u64,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The events, in order.
    pub events: Vec<AppendedEvent>,
    /// True when these exact events were already stored by an earlier
    /// attempt (a retry after a lost acknowledgement): nothing new was written.
    pub already_stored: bool,
}

impl Appended {
    /// The aggregate's version after the append.
    pub fn version(&self) -> u64 {
        self.events.last().map_or(0, |e| e.version)
    }

    /// The CID of the last event appended.
    pub fn last_cid(&self) -> Cid {
        self.events.last().expect("an append stores at least one event").cid
    }
}

/// Whether `caller` can be a header value: printable ASCII (spaces
/// allowed), 1 to 256 bytes.
fn valid_caller(caller: &str) -> bool {
    (1..=256).contains(&caller.len()) && caller.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The head of an aggregate's chain as the server has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Head {
    version: u64,
    cid: Option<Cid>,
    /// Stream sequence of the head event; 0 when the aggregate is empty.
    seq: u64,
}

/// Heads this process saw last: only a hint that saves a lookup before an
/// append. The server's expected-sequence check is what enforces order.
const HEAD_HINTS: usize = 100_000;
/// How often an [`ExpectedVersion::Any`] append retries after losing a race.
const RACE_RETRIES: u32 = 32;

/// How an append is made, beyond its events.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendOptions<'a> {
    /// Who asked for the append, recorded in each message's `Cim-Caller`
    /// header ([`EventStore::append_as`]).
    pub caller: Option<&'a str>,
    /// Parents the caller read from this store's stream and verified (their
    /// bytes hash to their CIDs): the store does not look them up again. A
    /// process that never needs the whole-store DAG — the Pipeline Engine
    /// linking outputs to the input it was delivered — then never builds
    /// it. Other parents are checked as usual.
    pub verified_parents: &'a [Cid],
}

/// A verifiable event store on a JetStream stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StoreConfig,
    names: Names,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    publisher: Publisher,
    committer: Committer,
    head_hints: Mutex<HashMap<AggregateKey, Head>>,
    dag: OnceCell<LiveDag>,
    cleanup: Cleanup,
}

impl EventStore {
    /// Attaches to the store's event stream, which provisioning created:
    /// only reads its configuration (`STREAM.INFO`). A component's way to
    /// open the store — its NATS user may not create or change streams —
    /// and the one that leaves its read consumers to the server's inactive
    /// threshold instead of deleting them.
    ///
    /// # Errors
    /// [`Error::NotProvisioned`] when the stream does not exist;
    /// [`Error::Incompatible`] when it cannot hold the store's events or
    /// lacks what the store needs (atomic batches, direct gets), which
    /// provisioning enables.
    pub async fn open(client: async_nats::Client, config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client.clone());
        let stream = provision::attach_events_stream(&js, &config).await?;
        Ok(Self::with_stream(client, js, stream, config, Cleanup::Expire))
    }

    /// Creates the event stream if missing, or enables what the store needs
    /// on an existing one, then opens it: the admin's path (`cim
    /// provision`, the CLI's commands, benchmarks). Reads through the
    /// returned store delete their consumers when they end.
    pub async fn provision(client: async_nats::Client, config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client.clone());
        let stream = provision::provision_events_stream(&js, &config).await?;
        Ok(Self::with_stream(client, js, stream, config, Cleanup::Delete))
    }

    fn with_stream(
        client: async_nats::Client,
        js: jetstream::Context,
        stream: stream::Stream,
        config: StoreConfig,
        cleanup: Cleanup,
    ) -> Self {
        let publisher = Publisher { client: client.clone(), js: js.clone(), stream: stream.clone() };
        let committer = match config.commit {
            CommitMode::Direct => Committer::direct(publisher.clone()),
            CommitMode::Grouped => Committer::grouped(publisher.clone(), config.max_batch_events),
        };
        let names = config.names();
        Self {
            inner: Arc::new(Inner {
                config,
                names,
                client,
                js,
                stream,
                publisher,
                committer,
                head_hints: Mutex::new(HashMap::new()),
                dag: OnceCell::new(),
                cleanup,
            }),
        }
    }

    /// Attaches to the store ([`EventStore::open`]) and rebuilds its
    /// MerkleDAG before returning, as a long-running component should at
    /// start-up.
    pub async fn open_with_dag(client: async_nats::Client, config: StoreConfig) -> Result<Self> {
        let store = Self::open(client, config).await?;
        store.dag().await?;
        Ok(store)
    }

    /// The store's configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The names of the store's stream and buckets.
    pub fn names(&self) -> &Names {
        &self.inner.names
    }

    /// The NATS client the store uses.
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The JetStream context the store uses.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    pub(crate) fn stream(&self) -> &stream::Stream {
        &self.inner.stream
    }

    pub(crate) fn cleanup(&self) -> Cleanup {
        self.inner.cleanup
    }

    /// The MerkleDAG of every event, rebuilt from the stream on first use
    /// (verifying every CID and chain) and kept current from the live tail.
    ///
    /// A stream whose early events were dropped to the Storage Manager's
    /// tiers is rebuilt from the checkpoint of the last retention point
    /// ([`EventStore::start_checkpoint`]): the DAG then starts from every
    /// aggregate's head there.
    pub async fn dag(&self) -> Result<&LiveDag> {
        self.inner
            .dag
            .get_or_try_init(|| async {
                let base = self.start_checkpoint().await?;
                LiveDag::start(self.inner.stream.clone(), self.inner.names.clone(), base, self.inner.cleanup).await
            })
            .await
    }

    /// Appends `events` to `aggregate` atomically, if it is at `expected`.
    ///
    /// The events are chained on the aggregate's head, encoded and published
    /// with the head's stream sequence as the server-side expectation, so a
    /// concurrent writer makes this fail with [`Error::ConcurrencyConflict`]
    /// (or retry, for [`ExpectedVersion::Any`]) instead of forking the chain.
    /// Several events are stored as one JetStream atomic batch: all or none.
    /// Retrying an append whose events carry fixed timestamps is idempotent:
    /// it reports [`Appended::already_stored`] and stores nothing twice.
    pub async fn append(
        &self,
        aggregate: &AggregateKey,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended> {
        self.append_as(aggregate, expected, events, None).await
    }

    /// As [`EventStore::append`], recording `caller` (who asked for the
    /// append, e.g. `hub:token:<id>`) in each message's `Cim-Caller` header:
    /// operational metadata kept beside the events, outside their bytes and
    /// CIDs ([`EventStore::caller_at`] reads it back). A retry that finds
    /// the events already stored keeps the caller of the first attempt.
    pub async fn append_as(
        &self,
        aggregate: &AggregateKey,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        caller: Option<&str>,
    ) -> Result<Appended> {
        self.append_with(aggregate, expected, events, AppendOptions { caller, ..AppendOptions::default() }).await
    }

    /// As [`EventStore::append`], with [`AppendOptions`].
    ///
    /// Creating an aggregate ([`ExpectedVersion::Exact`]`(0)`) reads
    /// nothing first: the server refuses the publish if the aggregate has
    /// events, and only then is its head read (to tell a repeated call from
    /// a conflict).
    pub async fn append_with(
        &self,
        aggregate: &AggregateKey,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        options: AppendOptions<'_>,
    ) -> Result<Appended> {
        let AppendOptions { caller, verified_parents } = options;
        if let Some(caller) = caller
            && !valid_caller(caller)
        {
            return Err(Error::InvalidCaller(caller.to_owned()));
        }
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        if events.len() > MAX_BATCH_EVENTS {
            return Err(Error::TooManyEvents { count: events.len(), max: MAX_BATCH_EVENTS });
        }
        self.check_parents(events.iter().map(|e| e.parents.as_slice()), verified_parents).await?;
        // Only events with caller-fixed times can be a retry of an earlier call.
        let retryable = events.iter().all(|e| e.timestamp.is_some());
        let now = Timestamp::now();
        let events: Vec<NewEvent> =
            events.into_iter().map(|e| NewEvent { timestamp: e.timestamp.or(Some(now)), ..e }).collect();

        let (mut head, mut fresh) = match self.head_hint(aggregate) {
            Some(head) => (head, false),
            // Expected empty: publish expecting no event on its subject.
            None if expected == ExpectedVersion::Exact(0) => (Head::default(), false),
            None => (self.fetch_head(aggregate).await?, true),
        };
        let mut races = 0;
        loop {
            if let ExpectedVersion::Exact(expected) = expected
                && head.version != expected
            {
                if fresh {
                    if retryable
                        && head.version > expected
                        && let Some(earlier) = self.find_earlier_attempt(aggregate, expected, &events).await?
                    {
                        return Ok(earlier);
                    }
                    return Err(Error::ConcurrencyConflict {
                        aggregate: aggregate.clone(),
                        expected,
                        actual: head.version,
                    });
                }
                head = self.fetch_head(aggregate).await?;
                fresh = true;
                continue;
            }
            let prepared = Arc::new(self.prepare(aggregate, head, &events, caller)?);
            if let Some(seqs) = self.commit(&prepared).await? {
                let already_stored = seqs.1;
                return Ok(self.record_appended(&prepared, head, seqs.0, already_stored));
            }
            head = self.fetch_head(aggregate).await?;
            fresh = true;
            races += 1;
            if expected == ExpectedVersion::Any && races > RACE_RETRIES {
                return Err(Error::ConcurrencyConflict {
                    aggregate: aggregate.clone(),
                    expected: head.version,
                    actual: head.version,
                });
            }
            debug!(%aggregate, version = head.version, "append lost a race; re-reading the head");
        }
    }

    /// Stores events built elsewhere (for example read from a CAR archive)
    /// exactly as they are: same bytes, same CIDs. `events` are consecutive
    /// events of one aggregate in version order, at most
    /// [`MAX_BATCH_EVENTS`]; the first must follow the aggregate's current
    /// head. Stored atomically and checked by the server like an append;
    /// importing events that are already stored reports `already_stored`.
    pub async fn import(&self, events: Vec<Event>) -> Result<Appended> {
        let Some(first) = events.first() else { return Err(Error::EmptyAppend) };
        if events.len() > MAX_BATCH_EVENTS {
            return Err(Error::TooManyEvents { count: events.len(), max: MAX_BATCH_EVENTS });
        }
        let aggregate = first.envelope.aggregate();
        let mut chain = cim_cid::ChainVerifier::new();
        let head = self.fetch_head(&aggregate).await?;
        if let Some(cid) = head.cid {
            chain.assume_head(&aggregate, head.version, cid);
        }
        let first_version = first.envelope.version();
        if first_version <= head.version {
            let query = AggregateQuery {
                from_version: first_version,
                to_version: Some(first_version + events.len() as u64 - 1),
                as_of: None,
            };
            let stored = self.read_aggregate(&aggregate, query).await?;
            if stored.len() == events.len() && stored.iter().zip(&events).all(|(s, e)| s.event.cid == e.cid) {
                let events = stored
                    .iter()
                    .map(|s| AppendedEvent { cid: s.event.cid, version: s.version(), seq: s.seq })
                    .collect();
                return Ok(Appended { events, already_stored: true });
            }
        }
        self.check_parents(events.iter().map(|e| e.envelope.parents()), &[]).await?;
        let mut encoded = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            if event.envelope.aggregate() != aggregate {
                return Err(Error::InvalidImport(format!(
                    "import event {index} belongs to {}, not {aggregate}",
                    event.envelope.aggregate()
                )));
            }
            for parent in event.envelope.parents() {
                chain.assume_known(*parent);
            }
            chain.push(&event).map_err(cim_cid::Error::from)?;
            let (cid, bytes) = event.envelope.encode()?;
            if cid != event.cid {
                return Err(Error::Invalid(cim_cid::Error::CidMismatch { expected: event.cid, actual: cid }));
            }
            if bytes.len() > self.inner.config.max_event_bytes {
                return Err(Error::EventTooLarge { index, size: bytes.len(), max: self.inner.config.max_event_bytes });
            }
            encoded.push((event, Bytes::from(bytes)));
        }
        let prepared = Arc::new(Prepared {
            aggregate: aggregate.clone(),
            subject: self.inner.names.aggregate_subject(&aggregate).into(),
            expected_seq: head.seq,
            events: encoded,
            caller: None,
        });
        match self.commit(&prepared).await? {
            Some((seqs, already_stored)) => Ok(self.record_appended(&prepared, head, seqs, already_stored)),
            None => {
                let actual = self.fetch_head(&aggregate).await?.version;
                Err(Error::ConcurrencyConflict { aggregate, expected: head.version, actual })
            }
        }
    }

    /// Commits one prepared append. `Some((seqs, already_stored))` when its
    /// events are stored, `None` when the head moved under it.
    ///
    /// A commit that fails on the connection is sent again under
    /// [`Policy::TRANSIENT`]: the append may or may not be stored, and sending
    /// the identical bytes again is safe — the server deduplicates by event
    /// CID and checks the expected sequence. A publish the server refuses to
    /// this user fails at once with [`Error::PermissionDenied`].
    async fn commit(&self, prepared: &Arc<Prepared>) -> Result<Option<(Vec<u64>, bool)>> {
        let subject = prepared.subject.as_str();
        let attempt = move || async move {
            match retry::unless_denied(subject, self.inner.committer.commit(prepared.clone())).await {
                Ok(outcome) => Ok(outcome),
                Err(Failure::Failed(error)) => Err(error),
                Err(Failure::Denied(denied)) => Err(Error::nats("appending events", denied)),
            }
        };
        let outcome = Policy::TRANSIENT
            .retry(attempt, |error| {
                let retry = matches!(error, Error::Nats { .. });
                if retry {
                    debug!(%error, "commit failed; retrying the same events");
                }
                retry
            })
            .await?;
        match outcome {
            Outcome::Stored(seqs) => Ok(Some((seqs, false))),
            Outcome::Rejected => Ok(self.inner.publisher.landed(prepared).await?.map(|seqs| (seqs, true))),
        }
    }

    /// Whether `events`, placed after version `expected`, are exactly what
    /// the aggregate holds there: this call repeats one that succeeded.
    async fn find_earlier_attempt(
        &self,
        aggregate: &AggregateKey,
        expected: u64,
        events: &[NewEvent],
    ) -> Result<Option<Appended>> {
        let query = AggregateQuery {
            from_version: expected + 1,
            to_version: Some(expected + events.len() as u64),
            as_of: None,
        };
        let stored = self.read_aggregate(aggregate, query).await?;
        if stored.len() != events.len() {
            return Ok(None);
        }
        let mut prev = stored[0].event.envelope.prev().copied();
        for (new_event, stored) in events.iter().zip(&stored) {
            let envelope = EventEnvelope::chained(aggregate, stored.version(), prev, new_event.clone())?;
            let (event, _) = Event::encode(envelope)?;
            if event.cid != stored.event.cid {
                return Ok(None);
            }
            prev = Some(event.cid);
        }
        let events =
            stored.iter().map(|s| AppendedEvent { cid: s.event.cid, version: s.version(), seq: s.seq }).collect();
        Ok(Some(Appended { events, already_stored: true }))
    }

    fn prepare(
        &self,
        aggregate: &AggregateKey,
        head: Head,
        events: &[NewEvent],
        caller: Option<&str>,
    ) -> Result<Prepared> {
        let mut prev = head.cid;
        let mut encoded = Vec::with_capacity(events.len());
        for (index, new_event) in events.iter().enumerate() {
            let version = head.version + 1 + index as u64;
            let envelope = EventEnvelope::chained(aggregate, version, prev, new_event.clone())?;
            let (event, bytes) = Event::encode(envelope)?;
            if bytes.len() > self.inner.config.max_event_bytes {
                return Err(Error::EventTooLarge { index, size: bytes.len(), max: self.inner.config.max_event_bytes });
            }
            prev = Some(event.cid);
            encoded.push((event, Bytes::from(bytes)));
        }
        Ok(Prepared {
            aggregate: aggregate.clone(),
            subject: self.inner.names.aggregate_subject(aggregate).into(),
            expected_seq: head.seq,
            events: encoded,
            caller: caller.map(str::to_owned),
        })
    }

    fn record_appended(&self, prepared: &Prepared, head: Head, seqs: Vec<u64>, already_stored: bool) -> Appended {
        let events: Vec<AppendedEvent> = prepared
            .events
            .iter()
            .zip(seqs)
            .enumerate()
            .map(|(i, ((event, _), seq))| AppendedEvent { cid: event.cid, version: head.version + 1 + i as u64, seq })
            .collect();
        let last = events.last().expect("an append stores at least one event");
        self.remember_head(&prepared.aggregate, Head { version: last.version, cid: Some(last.cid), seq: last.seq });
        Appended { events, already_stored }
    }

    fn head_hint(&self, aggregate: &AggregateKey) -> Option<Head> {
        self.inner.head_hints.lock().expect("head hints lock").get(aggregate).copied()
    }

    fn remember_head(&self, aggregate: &AggregateKey, head: Head) {
        let mut hints = self.inner.head_hints.lock().expect("head hints lock");
        if hints.len() >= HEAD_HINTS && !hints.contains_key(aggregate) {
            hints.clear();
        }
        hints.insert(aggregate.clone(), head);
    }

    /// Reads the aggregate's head from the server (and verifies it).
    async fn fetch_head(&self, aggregate: &AggregateKey) -> Result<Head> {
        let subject = self.inner.names.aggregate_subject(aggregate);
        let last = direct::get(&self.inner.stream, Lookup::LastFor(&subject))
            .await
            .map_err(|e| Error::nats("reading an aggregate's head", e))?;
        let head = match last {
            Some(message) => {
                let stored = decode_stream_message(&self.inner.names, &message)?;
                Head { version: stored.version(), cid: Some(stored.event.cid), seq: stored.seq }
            }
            None => Head::default(),
        };
        self.remember_head(aggregate, head);
        Ok(head)
    }

    /// The aggregate's current version and head CID, read from the server;
    /// `None` when it has no events.
    pub async fn head(&self, aggregate: &AggregateKey) -> Result<Option<(u64, Cid)>> {
        let head = self.fetch_head(aggregate).await?;
        Ok(head.cid.map(|cid| (head.version, cid)))
    }

    /// Who appended the event at stream sequence `seq`: its `Cim-Caller`
    /// header, if it has one. `None` also when no message is stored there.
    pub async fn caller_at(&self, seq: u64) -> Result<Option<String>> {
        let message = direct::get(&self.inner.stream, Lookup::Seq(seq))
            .await
            .map_err(|e| Error::nats("reading an event's caller", e))?;
        Ok(message.and_then(|m| m.headers.get(crate::commit::CIM_CALLER).map(|v| v.as_str().to_owned())))
    }

    /// Refuses parents that name no stored event; `parents` lists each
    /// event's parents in append order. The DAG is consulted (and built on
    /// first use) only for parents not in `verified`.
    async fn check_parents<'a>(
        &self,
        parents: impl Iterator<Item = &'a [Cid]> + Clone,
        verified: &[Cid],
    ) -> Result<()> {
        if parents.clone().flatten().all(|parent| verified.contains(parent)) {
            return Ok(());
        }
        let dag = self.dag().await?;
        for (index, event_parents) in parents.enumerate() {
            for parent in event_parents.iter().filter(|parent| !verified.contains(parent)) {
                if !dag.contains(parent) {
                    // The parent may have been appended a moment ago by
                    // another writer: catch up with the stream, then decide.
                    dag.catch_up().await?;
                    if !dag.contains(parent) {
                        return Err(Error::DanglingLink { index, parent: *parent });
                    }
                }
            }
        }
        Ok(())
    }
}
