//! The MerkleDAG of the whole store, rebuilt from the stream and kept current.
//!
//! Every start-up reads the stream from its first event with an ephemeral
//! ordered consumer — never a durable consumer, which would remember its
//! position and replay nothing the second time — verifying every event, and
//! the same consumer then follows the live tail.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream;
use cim_cid::Cid;
use cim_dag::{DagError, MerkleDag};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::Names;
use crate::consume::{End, next_readable as last_readable_from};
use crate::read::ordered_events;
use crate::verify::Problem;
use crate::{Error, Result, StoredEvent};

/// Most events applied under one write lock (about a millisecond of work),
/// so that queries are not held up for long during a rebuild.
const APPLY_CHUNK: usize = 256;

/// How long the DAG may fall short of a sequence it waits for before the
/// server is asked whether that sequence is readable at all.
const STALL_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// A MerkleDAG that follows the event stream. Cheap to clone; the task that
/// feeds it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LiveDag {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dag: Arc<RwLock<MerkleDag>>,
    problems: Arc<Mutex<Vec<Problem>>>,
    applied: watch::Receiver<u64>,
    /// Also held by the feeder; `wait_for` advances it past unreadable messages.
    applied_tx: Arc<watch::Sender<u64>>,
    stream: stream::Stream,
    names: Names,
    feeder: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.feeder.abort();
    }
}

impl LiveDag {
    /// Rebuilds the DAG from the first event and returns once it holds
    /// every event stored when it started; then it keeps following.
    pub(crate) async fn start(stream: stream::Stream, names: Names) -> Result<Self> {
        let started = std::time::Instant::now();
        let state = stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?.state;
        let (first_seq, target) = (state.first_sequence.max(1), state.last_sequence);
        let events = ordered_events(&stream, names.clone(), names.all_events(), DeliverPolicy::All, End::Never).await?;
        // Sized for the stream as it is, so the rebuild never rehashes or
        // copies the DAG's tables while it grows.
        let stored = usize::try_from(state.messages).unwrap_or(usize::MAX).min(cim_dag::MAX_EVENTS);
        let dag = Arc::new(RwLock::new(MerkleDag::with_capacity(stored)));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (applied_tx, applied) = watch::channel(0);
        let applied_tx = Arc::new(applied_tx);
        let feeder = tokio::spawn({
            let applied_tx = applied_tx.clone();
            let dag = dag.clone();
            let problems = problems.clone();
            async move {
                // Whatever the consumer has ready is applied under one lock and
                // announced once: a lock and a wake-up of every waiter per event
                // cost more than decoding it. `ready_chunks` never waits for a
                // chunk to fill, so the live tail is applied as soon as it arrives.
                let mut chunks = events.ready_chunks(APPLY_CHUNK);
                let mut found = Vec::new();
                while let Some(chunk) = chunks.next().await {
                    let mut last_seq = None;
                    // Sequences up to `applied` are accounted for, including
                    // unreadable ones `wait_for` gave up on.
                    let mut next_seq = (*applied_tx.borrow() + 1).max(first_seq);
                    {
                        let mut dag = dag.write().expect("DAG lock");
                        for item in chunk {
                            match apply(&mut dag, item, &mut next_seq, &mut found) {
                                Ok(Applied { seq, .. }) => last_seq = Some(seq),
                                Err(e) => warn!(error = %e, "reading the event stream for the DAG"),
                            }
                        }
                    }
                    if !found.is_empty() {
                        for problem in &found {
                            error!(%problem, "event stream problem");
                        }
                        problems.lock().expect("problems lock").append(&mut found);
                    }
                    if let Some(seq) = last_seq {
                        applied_tx
                            .send_if_modified(|applied| std::mem::replace(applied, seq.max(*applied)) != *applied);
                    }
                }
            }
        });
        let live = Self { shared: Arc::new(Shared { dag, problems, applied, applied_tx, stream, names, feeder }) };
        live.wait_for(target).await?;
        let dag = live.read();
        info!(events = dag.len(), aggregates = dag.aggregate_count(), elapsed = ?started.elapsed(), "MerkleDAG rebuilt from the event stream");
        drop(dag);
        Ok(live)
    }

    /// Waits until the DAG holds every event stored at the time of the call.
    pub async fn catch_up(&self) -> Result<()> {
        let info =
            self.shared.stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?;
        self.wait_for(info.state.last_sequence).await
    }

    /// Waits until every message up to `seq` is applied. When the feed stalls
    /// short of it and the server has no readable message left up to `seq`
    /// (it skips messages it cannot load), those sequences are recorded as
    /// missing and the wait ends.
    async fn wait_for(&self, seq: u64) -> Result<()> {
        let mut applied = self.shared.applied.clone();
        loop {
            let reached =
                tokio::time::timeout(STALL_PROBE, applied.wait_for(|&applied| applied >= seq)).await.map(|r| r.is_ok());
            match reached {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(Error::nats("following the event stream", "the stream's consumer stopped")),
                Err(_stalled) => {
                    let from = *applied.borrow() + 1;
                    let readable =
                        last_readable_from(&self.shared.stream, &self.shared.names.all_events(), from).await?;
                    if readable.is_none_or(|next| next > seq) {
                        let missing = Problem::Missing { from, to: seq };
                        error!(problem = %missing, "event stream problem");
                        self.shared.problems.lock().expect("problems lock").push(missing);
                        self.shared
                            .applied_tx
                            .send_if_modified(|applied| std::mem::replace(applied, seq.max(*applied)) != *applied);
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Read access to the DAG. Do not hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, MerkleDag> {
        self.shared.dag.read().expect("DAG lock")
    }

    /// Whether the DAG holds the event `cid`.
    pub fn contains(&self, cid: &Cid) -> bool {
        self.read().contains(cid)
    }

    /// The stream sequence of the event `cid`.
    pub fn position(&self, cid: &Cid) -> Option<u64> {
        self.read().get(cid).map(|e| e.position)
    }

    /// Stream sequence of the last message applied.
    pub fn applied_seq(&self) -> u64 {
        *self.shared.applied.borrow()
    }

    /// Problems found in the stream since the rebuild began: corrupt
    /// messages and events that break their chain (left out of the DAG).
    pub fn problems(&self) -> Vec<Problem> {
        self.shared.problems.lock().expect("problems lock").clone()
    }
}

/// The outcome of applying one message to a DAG.
pub(crate) struct Applied {
    pub seq: u64,
    /// Whether the event entered the DAG (otherwise a problem says why).
    pub inserted: bool,
}

/// Inserts a read event into `dag`, which holds every readable event before
/// stream sequence `next_seq`. A corrupt message, a chain violation, or
/// sequences skipped since `next_seq` (messages the server cannot load)
/// become [`Problem`]s; a failure to read at all is an error.
pub(crate) fn apply(
    dag: &mut MerkleDag,
    item: Result<StoredEvent>,
    next_seq: &mut u64,
    problems: &mut Vec<Problem>,
) -> Result<Applied> {
    let (seq, problem) = match item {
        Ok(stored) => match dag.insert(&stored.event, stored.seq) {
            Ok(_) => (stored.seq, None),
            Err(DagError::Chain(error)) => (stored.seq, Some(Problem::Chain { seq: stored.seq, error })),
            Err(other) => return Err(Error::DagCapacity(other.to_string())),
        },
        Err(Error::CorruptEvent { seq, cid, reason }) => (seq, Some(Problem::Corrupt { seq, cid, reason })),
        Err(other) => return Err(other),
    };
    if seq > *next_seq {
        problems.push(Problem::Missing { from: *next_seq, to: seq - 1 });
    }
    *next_seq = seq + 1;
    let inserted = problem.is_none();
    problems.extend(problem);
    Ok(Applied { seq, inserted })
}
