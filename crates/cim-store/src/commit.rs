//! Publishing prepared appends: one message, or a JetStream atomic batch,
//! each guarded by the server-side expected last subject sequence, and — in
//! grouped mode — many callers' appends merged into one batch (group commit)
//! so one disk flush covers them all.
//!
//! The server, not this process, decides conflicts: every append's first
//! message carries `Nats-Expected-Last-Subject-Sequence`, so any number of
//! writers in any number of processes cannot fork a chain.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use async_nats::header::{
    NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL, NATS_BATCH_ID, NATS_BATCH_SEQUENCE,
    NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID,
};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use cim_cid::{AggregateKey, Event};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// JetStream's error code for a batch holding a message id already stored.
const BATCH_DUPLICATE_MSG_ID: u64 = 10201;
/// JetStream's error code for a wrong expected last (subject) sequence.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// Rounds with fewer events are published as separate messages rather than
/// one atomic batch: a batch costs the server ~2.3 ms plus ~8 µs a message,
/// a flushed single message ~0.2 ms, so batches win from about 13 events
/// (measured on nats-server 2.15.1, `docs/benchmarks.md`).
const MIN_GROUP_EVENTS: usize = 16;

/// An append ready to publish: its events encoded and chained on the head
/// the caller saw, which the server checks through `expected_seq`.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub aggregate: AggregateKey,
    pub subject: Subject,
    /// Last stream sequence on the aggregate's subject that this append
    /// builds on; 0 when the aggregate has no events.
    pub expected_seq: u64,
    pub events: Vec<(Event, Bytes)>,
}

/// What the server made of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored now, at these stream sequences.
    Stored(Vec<u64>),
    /// The server rejected it: the head moved, or the events were already
    /// stored by an earlier attempt. The caller finds out which.
    Rejected,
}

/// Publishes prepared appends, alone or grouped.
#[derive(Debug, Clone)]
pub(crate) enum Committer {
    Direct(Box<Publisher>),
    Grouped(mpsc::Sender<Job>),
}

impl Committer {
    pub fn direct(publisher: Publisher) -> Self {
        Self::Direct(Box::new(publisher))
    }

    /// Starts the group-commit task; it ends when the last handle is dropped.
    pub fn grouped(publisher: Publisher, max_batch_events: usize) -> Self {
        let (tx, rx) = mpsc::channel(4 * max_batch_events);
        tokio::spawn(run_group_commit(publisher, rx, max_batch_events));
        Self::Grouped(tx)
    }

    pub async fn commit(&self, prepared: Arc<Prepared>) -> Result<Outcome> {
        match self {
            Self::Direct(publisher) => publisher.publish(&[prepared.as_ref()]).await.map(|mut o| o.remove(0)),
            Self::Grouped(tx) => {
                let (reply, outcome) = oneshot::channel();
                tx.send(Job { prepared, reply }).await.map_err(|_| closed())?;
                outcome.await.map_err(|_| closed())?
            }
        }
    }
}

fn closed() -> Error {
    Error::nats("committing an append", "the group-commit task has stopped")
}

/// One caller's append waiting for the group commit.
#[derive(Debug)]
pub(crate) struct Job {
    prepared: Arc<Prepared>,
    reply: oneshot::Sender<Result<Outcome>>,
}

/// Takes everything queued, commits as much as fits in one atomic batch
/// (at most one append per subject, since each append's expectation is about
/// its subject's state before the batch), answers, and repeats. One batch is
/// in flight at a time: JetStream commits batches of a stream one after
/// another anyway, and waiting lets the next batch grow.
async fn run_group_commit(publisher: Publisher, mut rx: mpsc::Receiver<Job>, max_batch_events: usize) {
    let mut pending: VecDeque<Job> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(job) => pending.push_back(job),
                None => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            pending.push_back(job);
        }
        let batch = take_batch(&mut pending, max_batch_events);
        let prepared: Vec<&Prepared> = batch.iter().map(|job| job.prepared.as_ref()).collect();
        match publisher.publish(&prepared).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for job in batch {
                    let _ = job.reply.send(Err(Error::nats("committing an append", message.clone())));
                }
            }
        }
    }
}

/// Removes from `pending` the jobs of the next batch, keeping queue order.
fn take_batch(pending: &mut VecDeque<Job>, max_batch_events: usize) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut subjects = HashSet::new();
    let mut events = 0;
    let mut skipped = VecDeque::new();
    while let Some(job) = pending.pop_front() {
        let size = job.prepared.events.len();
        let fits = events + size <= max_batch_events || batch.is_empty();
        if fits && subjects.insert(job.prepared.subject.as_str().to_owned()) {
            events += size;
            batch.push(job);
        } else {
            skipped.push_back(job);
        }
        if events >= max_batch_events {
            break;
        }
    }
    skipped.append(pending);
    *pending = skipped;
    batch
}

/// Publishes appends to JetStream.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub stream: jetstream::stream::Stream,
}

impl Publisher {
    /// Publishes a round of appends (at most one per subject). Small rounds
    /// go out as separate, pipelined publishes; larger ones as one atomic
    /// batch, which costs the server a fixed ~2 ms but one disk flush for
    /// all its messages. When the server rejects a batch, finds out whose
    /// expectation failed, answers those `Rejected` and commits the rest again.
    pub async fn publish(&self, appends: &[&Prepared]) -> Result<Vec<Outcome>> {
        let total: usize = appends.iter().map(|p| p.events.len()).sum();
        if appends.len() == 1 || total < MIN_GROUP_EVENTS {
            return self.publish_each(appends).await;
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; appends.len()];
        let mut todo: Vec<usize> = (0..appends.len()).collect();
        while !todo.is_empty() {
            let round: Vec<&Prepared> = todo.iter().map(|&i| appends[i]).collect();
            if let Some(seqs) = self.publish_unit(&round).await? {
                for (&i, seqs) in todo.iter().zip(seqs) {
                    outcomes[i] = Some(Outcome::Stored(seqs));
                }
                break;
            }
            let mut still_valid = Vec::new();
            for &i in &todo {
                if self.last_subject_seq(&appends[i].subject).await? == appends[i].expected_seq {
                    still_valid.push(i);
                } else {
                    outcomes[i] = Some(Outcome::Rejected);
                }
            }
            if still_valid.len() == todo.len() || still_valid.len() == 1 {
                // Nothing to single out (or one left): let each get its own answer.
                let rest: Vec<&Prepared> = still_valid.iter().map(|&i| appends[i]).collect();
                for (&i, outcome) in still_valid.iter().zip(self.publish_each(&rest).await?) {
                    outcomes[i] = Some(outcome);
                }
                break;
            }
            todo = still_valid;
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Rejected)).collect())
    }

    /// Publishes each append on its own, all in flight together.
    async fn publish_each(&self, appends: &[&Prepared]) -> Result<Vec<Outcome>> {
        let results =
            futures::future::join_all(appends.iter().map(|p| self.publish_unit(std::slice::from_ref(p)))).await;
        results
            .into_iter()
            .map(|r| Ok(r?.map_or(Outcome::Rejected, |mut seqs| Outcome::Stored(seqs.remove(0)))))
            .collect()
    }

    /// Publishes one unit; `None` when the server rejected it for a wrong
    /// expected sequence or an already-stored message id.
    async fn publish_unit(&self, appends: &[&Prepared]) -> Result<Option<Vec<Vec<u64>>>> {
        let total: usize = appends.iter().map(|p| p.events.len()).sum();
        let ack = if total == 1 {
            let p = appends[0];
            let (event, bytes) = &p.events[0];
            let message = PublishMessage::build()
                .payload(bytes.clone())
                .message_id(event.cid.to_string())
                .expected_last_subject_sequence(p.expected_seq);
            let ack = self
                .js
                .send_publish(p.subject.clone(), message)
                .await
                .map_err(|e| Error::nats("publishing an event", e))?
                .await;
            match ack {
                // A duplicate means an earlier attempt stored it; report it as
                // rejected so the caller confirms what is stored.
                Ok(ack) if ack.duplicate => return Ok(None),
                other => other,
            }
        } else {
            self.publish_atomic_batch(appends).await?
        };
        match ack {
            Ok(ack) => {
                let mut seq = ack.sequence + 1 - total as u64;
                let seqs = appends
                    .iter()
                    .map(|p| {
                        let seqs = (seq..seq + p.events.len() as u64).collect();
                        seq += p.events.len() as u64;
                        seqs
                    })
                    .collect();
                Ok(Some(seqs))
            }
            Err(error) if is_rejection(&error) => Ok(None),
            Err(error) => Err(translate_publish_error(error)),
        }
    }

    /// Sends the messages of several appends as one JetStream atomic batch:
    /// all but the last through core NATS, the last with the commit marker
    /// through JetStream to get the acknowledgement.
    async fn publish_atomic_batch(
        &self,
        appends: &[&Prepared],
    ) -> Result<Result<jetstream::publish::PublishAck, jetstream::context::PublishError>> {
        let batch_id = nuid::next().to_string();
        let total: usize = appends.iter().map(|p| p.events.len()).sum();
        let mut sequence = 0;
        for p in appends {
            for (index, (event, bytes)) in p.events.iter().enumerate() {
                sequence += 1;
                let mut headers = HeaderMap::new();
                headers.insert(NATS_BATCH_ID, batch_id.as_str());
                headers.insert(NATS_BATCH_SEQUENCE, sequence.to_string().as_str());
                headers.insert(NATS_MESSAGE_ID, event.cid.to_string().as_str());
                if index == 0 {
                    headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, p.expected_seq.to_string().as_str());
                }
                if sequence == total {
                    headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL);
                    let message = PublishMessage::build().payload(bytes.clone()).headers(headers);
                    let ack = self
                        .js
                        .send_publish(p.subject.clone(), message)
                        .await
                        .map_err(|e| Error::nats("committing an atomic batch", e))?;
                    return Ok(ack.await);
                }
                self.client
                    .publish_with_headers(p.subject.clone(), headers, bytes.clone())
                    .await
                    .map_err(|e| Error::nats("publishing an atomic batch", e))?;
            }
        }
        unreachable!("a batch holds at least one event")
    }

    /// The stream sequence of the last message on `subject`, 0 if none.
    pub async fn last_subject_seq(&self, subject: &str) -> Result<u64> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::nats("reading an aggregate's last event", e)),
        }
    }

    /// Whether `prepared` is already stored: the first message after the
    /// sequence it expected is its first event. Batches are atomic, so then
    /// all of it is.
    pub async fn landed(&self, prepared: &Prepared) -> Result<Option<Vec<u64>>> {
        let mut seqs = Vec::with_capacity(prepared.events.len());
        let mut from = prepared.expected_seq + 1;
        for (event, _) in &prepared.events {
            let message = match self.stream.direct_get_next_for_subject(prepared.subject.as_str(), Some(from)).await {
                Ok(message) => message,
                Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::nats("checking whether an append was stored", e)),
            };
            if crate::message::message_cid(message.sequence, Some(&message.headers))? != event.cid {
                return Ok(None);
            }
            seqs.push(message.sequence);
            from = message.sequence + 1;
        }
        Ok(Some(seqs))
    }
}

fn jetstream_code(error: &jetstream::context::PublishError) -> Option<u64> {
    std::error::Error::source(error)?.downcast_ref::<jetstream::Error>().map(|e| e.error_code().0)
}

fn is_rejection(error: &jetstream::context::PublishError) -> bool {
    error.kind() == PublishErrorKind::WrongLastSequence
        || matches!(jetstream_code(error), Some(WRONG_LAST_SEQUENCE | BATCH_DUPLICATE_MSG_ID))
}

fn translate_publish_error(error: jetstream::context::PublishError) -> Error {
    match error.kind() {
        PublishErrorKind::StreamNotFound => {
            Error::nats("publishing an event", "the event stream does not exist (was it deleted?)")
        }
        _ => Error::nats("publishing an event", error),
    }
}
