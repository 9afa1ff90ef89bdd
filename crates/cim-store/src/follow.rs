//! Followers: state built from the event stream and kept current.
//!
//! A [`Follower`] rebuilds a state from the first event of the stream (every
//! event, or one aggregate type's) with an ephemeral ordered consumer, then
//! keeps following the live tail with the same consumer, so nothing is
//! missed or repeated between the two. Every event is verified against its
//! CID before the state sees it. Ready events are applied in chunks, each
//! under one write lock, so readers are not held up for long.
//!
//! The state implements [`FollowerState`]. The follower keeps the problems
//! found on the way (corrupt messages, messages the server cannot read, and
//! events the state refused) and the stream position applied, and
//! [`Follower::wait_for`] waits for a position without ever waiting for
//! ever: a wait that makes no progress asks the server whether anything is
//! left to read up to the position, and ends with [`Error::Stalled`] when
//! the feed stopped (the server is unreachable, the consumer is gone and not
//! replaced, the position is not stored).
//!
//! The live MerkleDAG ([`crate::LiveDag`]) and the components' projections
//! are followers.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::Names;
use crate::consume::{Cleanup, End, last_seq_of, next_readable};
use crate::read::ordered_events;
use crate::verify::Problem;
use crate::{Error, EventStore, LogState, Result, StoredEvent};

/// Most events applied under one write lock (about a millisecond of work
/// for the DAG), so that readers are not held up for long during a rebuild.
const APPLY_CHUNK: usize = 256;

/// How long a wait may see no progress before it asks the server whether
/// the position it waits for is readable at all.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// The least time a probe of the server is given, even when the wait's
/// patience is nearly spent.
const MIN_PROBE_TIME: Duration = Duration::from_millis(500);

/// State that a [`Follower`] builds from the event stream.
///
/// `apply` is called with verified events in stream order, under the
/// follower's write lock; the state owns them (to keep, or to drop as soon
/// as each is applied). Events the state cannot apply are left out and
/// reported in `problems` (usually as [`Problem::Rejected`], or
/// [`Problem::Chain`]). An event may be applied twice when the state was also
/// given it through [`Follower::apply_now`]: the state must recognise it.
pub trait FollowerState: Send + Sync + 'static {
    /// Applies a chunk of verified events, in stream order.
    fn apply(&mut self, events: Vec<StoredEvent>, problems: &mut Vec<Problem>);
}

/// Which events a follower reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Every event in the stream.
    All,
    /// The events of every aggregate of one type.
    AggregateType(String),
}

/// Why a follower did not reach a position (see [`Error::Stalled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StallCause {
    /// The feed ended: its task stopped and nothing more will be applied.
    FeedEnded {
        /// Why, as far as known.
        reason: String,
    },
    /// The server did not answer whether the position is readable.
    Unreachable {
        /// The error of the last attempt to ask.
        error: String,
    },
    /// The server holds a readable message at `next`, at or before the
    /// position, which the feed did not deliver (its consumer is gone and
    /// not replaced, or the feed is stuck).
    NotDelivered {
        /// Stream sequence of the readable message.
        next: u64,
        /// The last error the feed reported, if any.
        feed_error: Option<String>,
    },
    /// The stream does not hold the position yet: it ends at `last`.
    NotStored {
        /// The stream's last sequence.
        last: u64,
    },
}

impl fmt::Display for StallCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FeedEnded { reason } => write!(f, "the feed ended: {reason}"),
            Self::Unreachable { error } => write!(f, "the server did not answer: {error}"),
            Self::NotDelivered { next, feed_error: None } => {
                write!(f, "the server holds readable message {next}, which the feed did not deliver")
            }
            Self::NotDelivered { next, feed_error: Some(error) } => write!(
                f,
                "the server holds readable message {next}, which the feed did not deliver (its last error: {error})"
            ),
            Self::NotStored { last } => write!(f, "the stream ends at sequence {last}: the position is not stored"),
        }
    }
}

/// A state kept current from the event stream. Cheap to clone; the task
/// that feeds it stops when the last clone is dropped.
pub struct Follower<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Follower<S> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<S> fmt::Debug for Follower<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follower")
            .field("filter", &self.shared.filter)
            .field("applied_seq", &self.shared.core.progress.borrow().applied)
            .finish_non_exhaustive()
    }
}

struct Shared<S> {
    core: Arc<Core<S>>,
    stream: stream::Stream,
    /// The subject filter of the feed.
    filter: String,
    /// Whether the feed reads every event, so that a skipped sequence is a
    /// message the server could not read.
    all: bool,
    feeder: JoinHandle<()>,
}

impl<S> Drop for Shared<S> {
    fn drop(&mut self) {
        self.feeder.abort();
    }
}

/// What the feeding task and the handles share.
struct Core<S> {
    state: RwLock<S>,
    problems: Mutex<Vec<Problem>>,
    progress: watch::Sender<Progress>,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every message up to this stream sequence is applied or accounted for.
    applied: u64,
    /// Why the feed ended, once it has.
    ended: Option<String>,
    /// The last error the feed reported.
    feed_error: Option<String>,
    /// Bumped by [`Follower::apply_now`], to wake waiters.
    changes: u64,
}

impl EventStore {
    /// Builds `state` from the stream's events (`feed`) and returns once it
    /// holds every event stored when called; the returned [`Follower`] then
    /// keeps it current from the live tail.
    ///
    /// # Errors
    /// Reading the stream fails, or the rebuild makes no progress for
    /// [`Follower::DEFAULT_PATIENCE`] ([`Error::Stalled`]).
    pub async fn follow<S: FollowerState>(&self, feed: Feed, state: S) -> Result<Follower<S>> {
        Follower::start(self.stream().clone(), self.names(), feed, 0, self.cleanup(), |_| state).await
    }
}

impl<S: FollowerState> Follower<S> {
    /// How long the rebuild at start (and [`crate::LiveDag::catch_up`]) may
    /// make no progress before it fails with [`Error::Stalled`].
    pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(30);

    /// Starts following `feed` from stream sequence `after` + 1 (0: from
    /// the first event), with the state `init` makes from the stream's
    /// counts at the start, and waits for the rebuild. A state started from
    /// a checkpoint at `after` already holds what comes before.
    pub(crate) async fn start(
        stream: stream::Stream,
        names: &Names,
        feed: Feed,
        after: u64,
        cleanup: Cleanup,
        init: impl FnOnce(&LogState) -> S,
    ) -> Result<Self> {
        let started = std::time::Instant::now();
        let info = stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?;
        let log = LogState::from(&info);
        let (filter, all) = match &feed {
            Feed::All => (names.all_events(), true),
            Feed::AggregateType(aggregate_type) => {
                cim_cid::validate_aggregate_type(aggregate_type)?;
                (format!("{}.{aggregate_type}.*", names.events_prefix), false)
            }
        };
        let target = if all { log.last_seq } else { last_seq_of(&stream, &filter).await? };
        let deliver =
            if after == 0 { DeliverPolicy::All } else { DeliverPolicy::ByStartSequence { start_sequence: after + 1 } };
        let events = ordered_events(&stream, names.clone(), filter.clone(), deliver, End::Never, cleanup).await?;
        let core = Arc::new(Core {
            state: RwLock::new(init(&log)),
            problems: Mutex::new(Vec::new()),
            progress: watch::Sender::new(Progress { applied: after, ..Progress::default() }),
        });
        let feeder = tokio::spawn(feed_state(core.clone(), events, log.first_seq.max(after + 1).max(1), all));
        let follower = Self { shared: Arc::new(Shared { core, stream, filter, all, feeder }) };
        follower.wait_for(target, Self::DEFAULT_PATIENCE).await?;
        info!(feed = %follower.shared.filter, applied_seq = follower.applied_seq(), elapsed = ?started.elapsed(), "rebuilt from the event stream");
        Ok(follower)
    }

    /// Read access to the state. Do not hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, S> {
        self.shared.core.state.read().expect("follower state lock")
    }

    /// Stream sequence up to which every message of the feed is applied (or
    /// recorded as a problem).
    pub fn applied_seq(&self) -> u64 {
        self.shared.core.progress.borrow().applied
    }

    /// Problems found since the rebuild began, in stream order per chunk:
    /// corrupt messages, messages the server cannot read, and events the
    /// state did not apply.
    pub fn problems(&self) -> Vec<Problem> {
        self.shared.core.problems.lock().expect("problems lock").clone()
    }

    /// Applies events this process has just stored, without waiting for the
    /// feed to deliver them (it delivers them later, and the state must
    /// recognise them). Does not move [`Follower::applied_seq`].
    pub fn apply_now(&self, events: &[StoredEvent]) {
        let mut found = Vec::new();
        self.shared.core.state.write().expect("follower state lock").apply(events.to_vec(), &mut found);
        self.shared.core.record(found);
        self.shared.core.progress.send_modify(|progress| progress.changes += 1);
    }

    /// Waits until the state holds every event of the feed stored at the
    /// time of the call.
    ///
    /// # Errors
    /// As [`Follower::wait_for`].
    pub async fn catch_up(&self, patience: Duration) -> Result<()> {
        let target = if self.shared.all {
            let info =
                self.shared.stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?;
            info.state.last_sequence
        } else {
            last_seq_of(&self.shared.stream, &self.shared.filter).await?
        };
        self.wait_for(target, patience).await
    }

    /// Waits until every message of the feed up to stream sequence
    /// `position` is applied.
    ///
    /// When the follower stops advancing short of `position`, it asks the
    /// server what is readable up to it. If nothing is (the server skips
    /// messages it cannot load, or — for one aggregate type — no more
    /// messages of the feed are stored up to `position`), the wait ends
    /// there; for a feed of every event, the sequences are recorded as
    /// [`Problem::Missing`]. When no progress is made for `patience`, the wait
    /// fails with [`Error::Stalled`], saying why: the feed ended, the server
    /// does not answer, a readable message is not delivered, or the position
    /// is not stored. Progress restarts the clock, so a long rebuild is never
    /// cut short.
    ///
    /// `position` should be the sequence of a message of the feed (or the
    /// stream's last): a wait for another one ends only when the server is
    /// asked, after a couple of seconds.
    ///
    /// # Errors
    /// [`Error::Stalled`] as above.
    pub async fn wait_for(&self, position: u64, patience: Duration) -> Result<()> {
        let core = &self.shared.core;
        let mut progress = core.progress.subscribe();
        let mut seen = progress.borrow().applied;
        let mut since = Instant::now();
        loop {
            let deadline = since + patience;
            let wake = (Instant::now() + PROBE_INTERVAL).min(deadline);
            let reached =
                tokio::time::timeout_at(wake, progress.wait_for(|p| p.applied >= position || p.ended.is_some()))
                    .await
                    .map(|seen| seen.map(|p| (p.applied >= position, p.ended.clone())));
            let ended = match reached {
                Ok(Ok((true, _))) => return Ok(()),
                Ok(Ok((false, ended))) => Some(ended.unwrap_or_default()),
                Ok(Err(_closed)) => Some("the follower is gone".to_owned()),
                Err(_elapsed) => None,
            };
            if let Some(reason) = ended {
                return Err(self.stalled(position, patience, StallCause::FeedEnded { reason }));
            }
            let applied = progress.borrow().applied;
            if applied > seen {
                (seen, since) = (applied, Instant::now());
                continue;
            }
            let probe_time = deadline.saturating_duration_since(Instant::now()).max(MIN_PROBE_TIME);
            let cause = match tokio::time::timeout(probe_time, self.probe(applied + 1, position)).await {
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(cause))) => cause,
                Ok(Err(error)) => StallCause::Unreachable { error: error.to_string() },
                Err(_) => StallCause::Unreachable { error: format!("no answer within {probe_time:?}") },
            };
            if progress.borrow().applied > seen {
                continue;
            }
            if Instant::now() >= deadline {
                return Err(self.stalled(position, patience, cause));
            }
        }
    }

    /// Waits up to `timeout` until `ready` holds for the state (checked now
    /// and after every change); returns whether it does.
    pub async fn wait_until(&self, timeout: Duration, mut ready: impl FnMut(&S) -> bool) -> bool {
        let mut progress = self.shared.core.progress.subscribe();
        let wait = async {
            loop {
                progress.mark_unchanged();
                let done = ready(&self.read());
                if done {
                    return true;
                }
                if progress.changed().await.is_err() {
                    return false;
                }
            }
        };
        let reached = tokio::time::timeout(timeout, wait).await;
        reached.unwrap_or_else(|_| ready(&self.read()))
    }

    /// Asks the server what is readable from `from` up to `position`: `None`
    /// when nothing is and the position is stored (the wait is over), else
    /// why the follower cannot reach it yet.
    async fn probe(&self, from: u64, position: u64) -> Result<Option<StallCause>> {
        let shared = &self.shared;
        if let Some(next) = next_readable(&shared.stream, &shared.filter, from).await?
            && next <= position
        {
            let feed_error = shared.core.progress.borrow().feed_error.clone();
            return Ok(Some(StallCause::NotDelivered { next, feed_error }));
        }
        let info = shared.stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?;
        let last = info.state.last_sequence;
        if position > last {
            return Ok(Some(StallCause::NotStored { last }));
        }
        // Whatever the feed applied meanwhile is not missing.
        let mut before = position;
        shared.core.progress.send_if_modified(|progress| {
            before = progress.applied;
            progress.applied = progress.applied.max(position);
            before < position
        });
        if before < position && shared.all {
            shared.core.record(vec![Problem::Missing { from: from.max(before + 1), to: position }]);
        }
        Ok(None)
    }

    fn stalled(&self, position: u64, waited: Duration, cause: StallCause) -> Error {
        let applied = self.applied_seq();
        warn!(position, applied, ?waited, %cause, feed = %self.shared.filter, "following the event stream stalled");
        Error::Stalled { position, applied, waited, cause }
    }
}

impl<S> Core<S> {
    /// Keeps problems found (logging each).
    fn record(&self, mut found: Vec<Problem>) {
        if found.is_empty() {
            return;
        }
        found.sort_by_key(Problem::seq);
        for problem in &found {
            error!(%problem, "event stream problem");
        }
        self.problems.lock().expect("problems lock").append(&mut found);
    }
}

/// Marks the feed ended when the feeding task stops, however it stops.
struct EndGuard<S>(Arc<Core<S>>);

impl<S> Drop for EndGuard<S> {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            "the feeding task panicked".to_owned()
        } else {
            "the stream's consumer stopped".to_owned()
        };
        self.0.progress.send_modify(|progress| {
            progress.ended.get_or_insert(reason);
        });
    }
}

/// The feeding task: applies whatever the consumer has ready under one lock
/// and announces it once — a lock and a wake-up of every waiter per event
/// cost more than decoding it. `ready_chunks` never waits for a chunk to
/// fill, so the live tail is applied as soon as it arrives.
async fn feed_state<S: FollowerState>(
    core: Arc<Core<S>>,
    events: BoxStream<'static, Result<StoredEvent>>,
    first_seq: u64,
    all: bool,
) {
    let _end = EndGuard(core.clone());
    let mut chunks = events.ready_chunks(APPLY_CHUNK);
    let mut batch = Vec::with_capacity(APPLY_CHUNK);
    let mut found = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let mut last_seq = None;
        let mut feed_error = None;
        // Sequences up to `applied` are accounted for, including unreadable
        // ones a wait gave up on.
        let mut next_seq = (core.progress.borrow().applied + 1).max(first_seq);
        for item in chunk {
            let (seq, event, problem) = match item {
                Ok(stored) => (stored.seq, Some(stored), None),
                Err(Error::CorruptEvent { seq, cid, reason }) => {
                    (seq, None, Some(Problem::Corrupt { seq, cid, reason }))
                }
                Err(e) => {
                    warn!(error = %e, "reading the event stream");
                    feed_error = Some(e.to_string());
                    continue;
                }
            };
            if all && seq > next_seq {
                found.push(Problem::Missing { from: next_seq, to: seq - 1 });
            }
            next_seq = next_seq.max(seq + 1);
            last_seq = Some(seq);
            batch.extend(event);
            found.extend(problem);
        }
        if !batch.is_empty() {
            let events = std::mem::replace(&mut batch, Vec::with_capacity(APPLY_CHUNK));
            core.state.write().expect("follower state lock").apply(events, &mut found);
        }
        core.record(std::mem::take(&mut found));
        core.progress.send_if_modified(|progress| {
            if feed_error.is_some() {
                progress.feed_error = feed_error;
            }
            let advanced = last_seq.is_some_and(|seq| seq > progress.applied);
            if let Some(seq) = last_seq.filter(|_| advanced) {
                progress.applied = seq;
            }
            advanced
        });
    }
}
