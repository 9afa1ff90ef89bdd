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
use crate::read::ordered_events;
use crate::verify::Problem;
use crate::{Error, Result, StoredEvent};

/// Most events applied under one write lock (about a millisecond of work),
/// so that queries are not held up for long during a rebuild.
const APPLY_CHUNK: usize = 256;

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
    stream: stream::Stream,
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
        let target = stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?.state.last_sequence;
        let events = ordered_events(&stream, names.clone(), names.all_events(), DeliverPolicy::All, false).await?;
        let dag = Arc::new(RwLock::new(MerkleDag::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (applied_tx, applied) = watch::channel(0);
        let feeder = tokio::spawn({
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
                    {
                        let mut dag = dag.write().expect("DAG lock");
                        for item in chunk {
                            match apply(&mut dag, item) {
                                Ok(Applied { seq, problem }) => {
                                    found.extend(problem);
                                    last_seq = Some(seq);
                                }
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
                        applied_tx.send_replace(seq);
                    }
                }
            }
        });
        let live = Self { shared: Arc::new(Shared { dag, problems, applied, stream, feeder }) };
        live.wait_for(target).await?;
        let dag = live.read();
        info!(events = dag.len(), aggregates = dag.aggregate_count(), elapsed = ?started.elapsed(), "MerkleDAG rebuilt from the event stream");
        drop(dag);
        Ok(live)
    }

    /// Waits until the DAG holds every event stored at the time of the call.
    pub async fn catch_up(&self) -> Result<()> {
        let info = self.shared.stream.get_info().await.map_err(|e| Error::nats("reading the event stream's state", e))?;
        self.wait_for(info.state.last_sequence).await
    }

    async fn wait_for(&self, seq: u64) -> Result<()> {
        let mut applied = self.shared.applied.clone();
        applied
            .wait_for(|&applied| applied >= seq)
            .await
            .map(|_| ())
            .map_err(|_| Error::nats("following the event stream", "the stream's consumer stopped"))
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
    pub problem: Option<Problem>,
}

/// Inserts a read event into `dag`. A corrupt message or a chain violation
/// becomes a [`Problem`] (the event stays out of the DAG); a failure to read
/// at all is an error.
pub(crate) fn apply(dag: &mut MerkleDag, item: Result<StoredEvent>) -> Result<Applied> {
    match item {
        Ok(stored) => match dag.insert(&stored.event, stored.seq) {
            Ok(_) => Ok(Applied { seq: stored.seq, problem: None }),
            Err(DagError::Chain(error)) => Ok(Applied { seq: stored.seq, problem: Some(Problem::Chain { seq: stored.seq, error: *error }) }),
            Err(other) => Err(Error::Config(format!("the MerkleDAG cannot hold the store: {other}"))),
        },
        Err(Error::CorruptEvent { seq, cid, reason }) => Ok(Applied { seq, problem: Some(Problem::Corrupt { seq, cid, reason }) }),
        Err(other) => Err(other),
    }
}
