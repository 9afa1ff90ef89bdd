//! The MerkleDAG of the whole store, rebuilt from the stream and kept current.
//!
//! A [`Follower`] of every event whose state is the [`MerkleDag`]: every
//! start-up reads the stream from its first event with an ephemeral ordered
//! consumer — never a durable consumer, which would remember its position
//! and replay nothing the second time — verifying every event, and the same
//! consumer then follows the live tail.

use std::sync::RwLockReadGuard;
use std::time::Duration;

use async_nats::jetstream::stream;
use cim_cid::{AggregateKey, Cid};
use cim_dag::{DagError, MerkleDag};
use tracing::info;

use crate::checkpoint::Checkpoint;
use crate::config::Names;
use crate::consume::Cleanup;
use crate::follow::{Feed, Follower, FollowerState};
use crate::verify::Problem;
use crate::{Error, Result, StoredEvent};

/// A MerkleDAG that follows the event stream. Cheap to clone; the task that
/// feeds it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LiveDag {
    follower: Follower<MerkleDag>,
}

/// Events that break their chain become [`Problem::Chain`]; an event the DAG
/// cannot index at all (its limits) becomes [`Problem::Rejected`].
impl FollowerState for MerkleDag {
    fn apply(&mut self, events: Vec<StoredEvent>, problems: &mut Vec<Problem>) {
        // Each event is dropped as soon as it is in the DAG, while its
        // memory is still in cache.
        for stored in events {
            match self.insert(&stored.event, stored.seq) {
                Ok(_) => {}
                Err(DagError::Chain(error)) => problems.push(Problem::Chain { seq: stored.seq, error }),
                Err(other) => problems.push(Problem::Rejected {
                    seq: stored.seq,
                    cid: stored.event.cid,
                    reason: other.to_string(),
                }),
            }
        }
    }
}

impl LiveDag {
    /// Rebuilds the DAG from the first event — or, when `base` is given,
    /// from that checkpoint's heads and the events after it — and returns
    /// once it holds every event stored when it started; then it keeps
    /// following.
    pub(crate) async fn start(
        stream: stream::Stream,
        names: Names,
        base: Option<(Cid, Checkpoint)>,
        cleanup: Cleanup,
    ) -> Result<Self> {
        let started = std::time::Instant::now();
        let after = base.as_ref().map_or(0, |(_, checkpoint)| checkpoint.through_seq);
        let mut seeded = MerkleDag::new();
        if let Some((cid, checkpoint)) = &base {
            for head in &checkpoint.heads {
                let aggregate: AggregateKey = head.aggregate.parse()?;
                seeded
                    .insert_base(&aggregate, head.version, head.head, head.seq, checkpoint.through_seq)
                    .map_err(|e| Error::CorruptObject { cid: *cid, reason: format!("checkpoint head: {e}") })?;
            }
            info!(checkpoint = %cid, through_seq = checkpoint.through_seq, aggregates = checkpoint.heads.len(), "rebuilding the MerkleDAG from a checkpoint");
        }
        // Sized for the stream as it is, so the rebuild never rehashes or
        // copies the DAG's tables while it grows.
        let follower = Follower::start(stream, &names, Feed::All, after, cleanup, move |log| {
            seeded.reserve(usize::try_from(log.events).unwrap_or(usize::MAX).min(cim_dag::MAX_EVENTS));
            seeded
        })
        .await?;
        let live = Self { follower };
        let dag = live.read();
        info!(events = dag.len(), aggregates = dag.aggregate_count(), elapsed = ?started.elapsed(), "MerkleDAG rebuilt from the event stream");
        drop(dag);
        Ok(live)
    }

    /// Waits until the DAG holds every event stored at the time of the call
    /// (patience: [`Follower::DEFAULT_PATIENCE`]).
    ///
    /// # Errors
    /// As [`Follower::wait_for`].
    pub async fn catch_up(&self) -> Result<()> {
        self.follower.catch_up(Follower::<MerkleDag>::DEFAULT_PATIENCE).await
    }

    /// Waits until every message up to stream sequence `seq` is applied; see
    /// [`Follower::wait_for`].
    ///
    /// # Errors
    /// [`Error::Stalled`](crate::Error::Stalled) when the feed makes no
    /// progress towards `seq` for `patience`.
    pub async fn wait_for(&self, seq: u64, patience: Duration) -> Result<()> {
        self.follower.wait_for(seq, patience).await
    }

    /// Read access to the DAG. Do not hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, MerkleDag> {
        self.follower.read()
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
        self.follower.applied_seq()
    }

    /// Problems found in the stream since the rebuild began: corrupt
    /// messages, messages the server cannot read, and events that break
    /// their chain (left out of the DAG).
    pub fn problems(&self) -> Vec<Problem> {
        self.follower.problems()
    }

    /// The follower underneath.
    pub fn follower(&self) -> &Follower<MerkleDag> {
        &self.follower
    }
}
