//! Verification of the whole store or one aggregate: every event's bytes
//! against its CID, every chain, every parent link.

use std::fmt;

use cim_cid::{AggregateKey, ChainError, ChainVerifier, Cid};
use cim_dag::{DagError, MerkleDag};
use futures::StreamExt;

use crate::read::{AggregateQuery, StartAt};
use crate::{Error, EventStore, Result, StoredEvent};

/// Something wrong in the stored events, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The message at `seq` is not a valid event: its bytes do not hash to
    /// its CID, do not decode, or sit under another aggregate's subject.
    Corrupt {
        /// Stream sequence.
        seq: u64,
        /// The CID the message claims, if any.
        cid: Option<Cid>,
        /// What is wrong.
        reason: String,
    },
    /// The stream holds messages at these sequences that the server cannot
    /// read (it skips messages whose stored checksum fails): the events are
    /// lost from this copy of the store.
    Missing {
        /// First missing sequence.
        from: u64,
        /// Last missing sequence.
        to: u64,
    },
    /// The event at `seq` is intact but breaks its chain.
    Chain {
        /// Stream sequence.
        seq: u64,
        /// The broken rule (boxed: chain errors are large, problems rare).
        error: Box<ChainError>,
    },
    /// The event at `seq` is intact, but a [`Follower`](crate::Follower)'s
    /// state could not apply it (it is left out of that state).
    Rejected {
        /// Stream sequence.
        seq: u64,
        /// The event.
        cid: Cid,
        /// Why, in the state's words.
        reason: String,
    },
}

impl Problem {
    /// Stream sequence of the offending message.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Corrupt { seq, .. }
            | Self::Chain { seq, .. }
            | Self::Rejected { seq, .. }
            | Self::Missing { from: seq, .. } => *seq,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt { seq, cid: Some(cid), reason } => {
                write!(f, "stream sequence {seq}: event {cid} is corrupt: {reason}")
            }
            Self::Corrupt { seq, cid: None, reason } => write!(f, "stream sequence {seq}: corrupt message: {reason}"),
            Self::Chain { seq, error } => write!(f, "stream sequence {seq}: {error}"),
            Self::Rejected { seq, cid, reason } => {
                write!(f, "stream sequence {seq}: event {cid} not applied: {reason}")
            }
            Self::Missing { from, to } if from == to => {
                write!(f, "stream sequence {from}: the server cannot read this message (damaged storage?)")
            }
            Self::Missing { from, to } => {
                write!(f, "stream sequences {from}-{to}: the server cannot read these messages (damaged storage?)")
            }
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Events that passed every check.
    pub verified: u64,
    /// Aggregates seen.
    pub aggregates: u64,
    /// Stream sequence of the last message checked.
    pub last_seq: u64,
    /// Everything wrong, in stream order.
    pub problems: Vec<Problem>,
    /// The checkpoint (its CID and stream position) verification started
    /// from, when the stream's early events were dropped; `None` when it
    /// started from the first event.
    pub checkpoint: Option<(Cid, u64)>,
    /// Parent links naming events before the checkpoint, which only the
    /// archive can confirm.
    pub external_parents: u64,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl EventStore {
    /// Verifies every stored event: re-hashes its bytes against its CID,
    /// decodes it, and checks every chain and parent link, exactly as a
    /// DAG rebuild does. `progress(done, total)` is called as it goes.
    ///
    /// A stream whose early events were dropped to the Storage Manager's
    /// tiers is verified from the checkpoint of its last retention point, as
    /// a rebuild is ([`VerifyReport::checkpoint`] names it); verifying the
    /// dropped events too needs the archive (`cim verify` reads it and calls
    /// [`EventStore::verify_from`]).
    pub async fn verify(&self, progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
        let (dag, checkpoint) = match self.start_checkpoint().await? {
            None => (MerkleDag::new(), None),
            Some((cid, checkpoint)) => {
                let mut dag = MerkleDag::new();
                for head in &checkpoint.heads {
                    let aggregate: AggregateKey = head.aggregate.parse()?;
                    dag.insert_base(&aggregate, head.version, head.head, head.seq, checkpoint.through_seq)
                        .map_err(|e| Error::CorruptObject { cid, reason: format!("checkpoint head: {e}") })?;
                }
                (dag, Some((cid, checkpoint.through_seq)))
            }
        };
        let after = checkpoint.map_or(0, |(_, seq)| seq);
        let mut report = self.verify_from(dag, after, progress).await?;
        report.checkpoint = checkpoint;
        Ok(report)
    }

    /// Verifies the events after stream sequence `after` (0: all of them)
    /// against `dag`, which holds everything before: the events the stream
    /// no longer has (read and verified from the archive by the caller), or
    /// a checkpoint's heads.
    pub async fn verify_from(
        &self,
        mut dag: MerkleDag,
        after: u64,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let state = self.log_state().await?;
        let total = state.last_seq.saturating_sub(after.max(state.first_seq.saturating_sub(1)));
        let mut events = self.read_log(StartAt::Sequence(after + 1)).await?;
        dag.reserve(usize::try_from(total).unwrap_or(0));
        let mut report = VerifyReport::default();
        let mut next_seq = state.first_seq.max(after + 1);
        let mut done = 0;
        while let Some(item) = events.next().await {
            let applied = apply(&mut dag, item, &mut next_seq, &mut report.problems)?;
            report.last_seq = applied.seq;
            report.verified += u64::from(applied.inserted);
            done += 1;
            if done % 1024 == 0 || done == total {
                progress(done, total);
            }
        }
        if next_seq <= state.last_seq {
            report.problems.push(Problem::Missing { from: next_seq, to: state.last_seq });
        }
        report.aggregates = dag.aggregate_count() as u64;
        report.external_parents = dag.external_parents();
        Ok(report)
    }

    /// Verifies one aggregate: each event against its CID, the chain from
    /// version 1 to the head, and that every parent is a stored event.
    pub async fn verify_aggregate(&self, aggregate: &AggregateKey) -> Result<VerifyReport> {
        let mut events = self.aggregate_events(aggregate, AggregateQuery::all()).await?;
        let mut chain = ChainVerifier::new();
        let mut report = VerifyReport { aggregates: 1, ..VerifyReport::default() };
        let dag = self.dag().await?;
        dag.catch_up().await?;
        while let Some(item) = events.next().await {
            let stored = match item {
                Ok(stored) => stored,
                Err(Error::CorruptEvent { seq, cid, reason }) => {
                    report.last_seq = seq;
                    report.problems.push(Problem::Corrupt { seq, cid, reason });
                    continue;
                }
                Err(other) => return Err(other),
            };
            report.last_seq = stored.seq;
            for parent in stored.event.envelope.parents() {
                if dag.contains(parent) {
                    chain.assume_known(*parent);
                }
            }
            match chain.push(&stored.event) {
                Ok(()) => report.verified += 1,
                Err(error) => report.problems.push(Problem::Chain { seq: stored.seq, error: Box::new(error) }),
            }
        }
        Ok(report)
    }
}

/// The outcome of applying one message to a DAG.
struct Applied {
    seq: u64,
    /// Whether the event entered the DAG (otherwise a problem says why).
    inserted: bool,
}

/// Inserts a read event into `dag`, which holds every readable event before
/// stream sequence `next_seq`. A corrupt message, a chain violation, or
/// sequences skipped since `next_seq` (messages the server cannot load)
/// become [`Problem`]s; a failure to read at all is an error.
fn apply(
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
