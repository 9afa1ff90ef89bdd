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
    NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_EOB, NATS_BATCH_COMMIT_FINAL, NATS_BATCH_ID, NATS_BATCH_SEQUENCE,
    NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID,
};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use cim_cid::{AggregateKey, Event};
use tokio::sync::{mpsc, oneshot};

use crate::direct::{self, Lookup};
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
    /// Who asked for the append, stored as the `Cim-Caller` header of each
    /// message: operational metadata outside the events' bytes and CIDs.
    pub caller: Option<String>,
}

/// The header that names who appended an event (`docs/spec/jetstream.md`).
pub const CIM_CALLER: &str = "Cim-Caller";

/// What the server made of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored now, at these stream sequences.
    Stored(Vec<u64>),
    /// The server rejected it: the head moved, or the events were already
    /// stored by an earlier attempt. The caller finds out which.
    Rejected,
}

/// The acknowledgement of a publish, and its result.
type AckFuture = jetstream::context::PublishAckFuture;
type AckResult = std::result::Result<jetstream::publish::PublishAck, jetstream::context::PublishError>;

/// An atomic batch whose messages are sent but for the commit message.
#[derive(Debug)]
struct Staged {
    subject: Subject,
    commit: PublishMessage,
}

/// The stream sequences of a unit's events from its acknowledgement (the
/// events are stored contiguously, the last at the acknowledged sequence);
/// `None` when the server rejected it.
fn stored_seqs(appends: &[&Prepared], ack: AckResult) -> Result<Option<Vec<Vec<u64>>>> {
    match ack {
        Ok(ack) => {
            let total: usize = appends.iter().map(|p| p.events.len()).sum();
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

/// Merges concurrent appends into atomic batches, one committed at a time
/// (JetStream commits a stream's batches one after another anyway).
///
/// While a batch's commit is awaited, appends that arrive are sent at once
/// into the next, still open batch — at most one append per subject, none
/// on a subject of the batch in flight — so the server stages them while it
/// flushes the previous batch, and the open batch is committed (with an
/// end-of-batch marker) the moment the previous one is acknowledged.
/// Rounds that arrive while nothing is in flight and are too small for a
/// batch go out as separate messages.
async fn run_group_commit(publisher: Publisher, mut rx: mpsc::Receiver<Job>, max_batch_events: usize) {
    // The end-of-batch commit message counts towards the batch's messages.
    let open_limit = max_batch_events.min(crate::MAX_BATCH_EVENTS - 1);
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut open: Option<OpenBatch> = None;
    let mut in_flight: Option<InFlight> = None;
    loop {
        let Some(flight) = in_flight.as_mut() else {
            if let Some(batch) = open.take().filter(|b| !b.jobs.is_empty()) {
                match publisher.commit_open(batch).await {
                    Ok(flight) => in_flight = Some(flight),
                    Err((jobs, error)) => answer(jobs, Err(error)),
                }
                continue;
            }
            if pending.is_empty() {
                match rx.recv().await {
                    Some(job) => pending.push_back(job),
                    None => return,
                }
            }
            while let Ok(job) = rx.try_recv() {
                pending.push_back(job);
            }
            let round = take_batch(&mut pending, max_batch_events);
            let prepared = prepared_of(&round);
            if is_group(&round) {
                let staged = publisher.stage(&prepared).await;
                let ack = match staged {
                    Ok(staged) => publisher.commit(staged).await,
                    Err(error) => Err(error),
                };
                match ack {
                    Ok(ack) => in_flight = Some(InFlight::new(round, ack)),
                    Err(error) => answer(round, Err(error)),
                }
            } else {
                let outcomes = publisher.publish(&prepared).await;
                answer(round, outcomes);
            }
            continue;
        };
        // A commit is awaited: fill the open batch meanwhile.
        let batch = open.get_or_insert_with(OpenBatch::default);
        while let Some(job) = pending.pop_front() {
            if !batch.accepts(&job, &flight.subjects, open_limit) {
                pending.push_front(job);
                break;
            }
            if let Err(error) = publisher.stage_into(batch, job).await {
                // Part of an append may have been sent: abandon the whole
                // batch uncommitted (the server drops it) and fail its appends.
                let batch = open.take().expect("the open batch");
                answer(batch.jobs, Err(error));
                break;
            }
        }
        tokio::select! {
            biased;
            ack = &mut flight.ack => {
                let flight = in_flight.take().expect("a commit is in flight");
                let outcomes = publisher.finish(&prepared_of(&flight.jobs), ack).await;
                answer(flight.jobs, outcomes);
                if open.as_ref().is_some_and(|b| b.jobs.is_empty()) {
                    open = None;
                }
            }
            job = rx.recv(), if pending.is_empty() => match job {
                Some(job) => pending.push_back(job),
                // The store is gone: finish what is in flight, then stop.
                None => {
                    if let Some(flight) = in_flight.take() {
                        let ack = flight.ack.await;
                        let outcomes = publisher.finish(&prepared_of(&flight.jobs), ack).await;
                        answer(flight.jobs, outcomes);
                    }
                    if let Some(batch) = open.take().filter(|b| !b.jobs.is_empty()) {
                        match publisher.commit_open(batch).await {
                            Ok(flight) => {
                                let ack = flight.ack.await;
                                let outcomes = publisher.finish(&prepared_of(&flight.jobs), ack).await;
                                answer(flight.jobs, outcomes);
                            }
                            Err((jobs, error)) => answer(jobs, Err(error)),
                        }
                    }
                    return;
                }
            },
        }
    }
}

/// A committed batch whose acknowledgement is awaited.
struct InFlight {
    jobs: Vec<Job>,
    /// The subjects it writes, which the open batch must not.
    subjects: HashSet<String>,
    ack: futures::future::BoxFuture<'static, AckResult>,
}

impl InFlight {
    fn new(jobs: Vec<Job>, ack: AckFuture) -> Self {
        let subjects = jobs.iter().map(|j| j.prepared.subject.as_str().to_owned()).collect();
        Self { jobs, subjects, ack: Box::pin(ack.into_future()) }
    }
}

/// A batch whose messages are being sent; committed later with an
/// end-of-batch marker.
#[derive(Default)]
struct OpenBatch {
    id: String,
    jobs: Vec<Job>,
    subjects: HashSet<String>,
    /// Messages sent so far.
    messages: usize,
}

impl OpenBatch {
    fn accepts(&self, job: &Job, in_flight: &HashSet<String>, limit: usize) -> bool {
        let subject = job.prepared.subject.as_str();
        self.messages + job.prepared.events.len() <= limit
            && !self.subjects.contains(subject)
            && !in_flight.contains(subject)
    }
}

fn prepared_of(jobs: &[Job]) -> Vec<&Prepared> {
    jobs.iter().map(|job| job.prepared.as_ref()).collect()
}

fn is_group(jobs: &[Job]) -> bool {
    jobs.len() > 1 && jobs.iter().map(|j| j.prepared.events.len()).sum::<usize>() >= MIN_GROUP_EVENTS
}

fn answer(jobs: Vec<Job>, outcomes: Result<Vec<Outcome>>) {
    match outcomes {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            let message = error.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(Error::nats("committing an append", message.clone())));
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
    /// all its messages.
    pub async fn publish(&self, appends: &[&Prepared]) -> Result<Vec<Outcome>> {
        let total: usize = appends.iter().map(|p| p.events.len()).sum();
        if appends.len() == 1 || total < MIN_GROUP_EVENTS {
            return self.publish_each(appends).await;
        }
        let staged = self.stage(appends).await?;
        let ack = self.commit(staged).await?.await;
        self.finish(appends, ack).await
    }

    /// Answers a committed batch. When the server rejected it, finds out
    /// whose expectation failed, answers those `Rejected` and publishes the
    /// rest again.
    async fn finish(&self, appends: &[&Prepared], ack: AckResult) -> Result<Vec<Outcome>> {
        let mut ack = Some(ack);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; appends.len()];
        let mut todo: Vec<usize> = (0..appends.len()).collect();
        while !todo.is_empty() {
            let round: Vec<&Prepared> = todo.iter().map(|&i| appends[i]).collect();
            let stored = match ack.take() {
                Some(ack) => stored_seqs(&round, ack)?,
                None => self.publish_unit(&round).await?,
            };
            if let Some(seqs) = stored {
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

    /// Publishes one unit — a single message, or an atomic batch — and
    /// waits for it; `None` when the server rejected it for a wrong expected
    /// sequence or an already-stored message id.
    async fn publish_unit(&self, appends: &[&Prepared]) -> Result<Option<Vec<Vec<u64>>>> {
        let total: usize = appends.iter().map(|p| p.events.len()).sum();
        if total > 1 {
            let staged = self.stage(appends).await?;
            let ack = self.commit(staged).await?;
            let ack = match appends {
                // The server acknowledges nothing it refused: it only says so
                // on the connection. Stop waiting when it does.
                [one] => unless_denied(&one.subject, ack).await?,
                _ => ack.await,
            };
            return stored_seqs(appends, ack);
        }
        let p = appends[0];
        let (event, bytes) = &p.events[0];
        let mut message = PublishMessage::build()
            .payload(bytes.clone())
            .message_id(event.cid.to_string())
            .expected_last_subject_sequence(p.expected_seq);
        if let Some(caller) = &p.caller {
            message = message.header(CIM_CALLER, caller.as_str());
        }
        let ack = self
            .js
            .send_publish(p.subject.clone(), message)
            .await
            .map_err(|e| Error::nats("publishing an event", e))?;
        match unless_denied(&p.subject, ack).await? {
            // A duplicate means an earlier attempt stored it; report it as
            // rejected so the caller confirms what is stored.
            Ok(ack) if ack.duplicate => Ok(None),
            other => stored_seqs(appends, other),
        }
    }

    /// Sends the messages of `appends` as one atomic batch, all but the last
    /// through core NATS (the server stages them until the commit); returns
    /// the last, which carries the commit marker.
    async fn stage(&self, appends: &[&Prepared]) -> Result<Staged> {
        let mut batch = OpenBatch { id: nuid::next().to_string(), ..OpenBatch::default() };
        let total: usize = appends.iter().map(|p| p.events.len()).sum();
        for p in appends {
            for (index, (event, bytes)) in p.events.iter().enumerate() {
                let mut headers = self.batch_headers(&mut batch, p, index, event);
                if batch.messages == total {
                    headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL);
                    let commit = PublishMessage::build().payload(bytes.clone()).headers(headers);
                    return Ok(Staged { subject: p.subject.clone(), commit });
                }
                self.client
                    .publish_with_headers(p.subject.clone(), headers, bytes.clone())
                    .await
                    .map_err(|e| Error::nats("publishing an atomic batch", e))?;
            }
        }
        unreachable!("a batch holds at least one event")
    }

    /// Sends one append's messages into an open batch, which takes the job
    /// (also when sending fails, so the caller can answer it with the batch).
    async fn stage_into(&self, batch: &mut OpenBatch, job: Job) -> Result<()> {
        if batch.id.is_empty() {
            batch.id = nuid::next().to_string();
        }
        let prepared = job.prepared.clone();
        batch.subjects.insert(prepared.subject.as_str().to_owned());
        batch.jobs.push(job);
        for (index, (event, bytes)) in prepared.events.iter().enumerate() {
            let headers = self.batch_headers(batch, &prepared, index, event);
            self.client
                .publish_with_headers(prepared.subject.clone(), headers, bytes.clone())
                .await
                .map_err(|e| Error::nats("publishing an atomic batch", e))?;
        }
        Ok(())
    }

    /// The headers of the next message of `batch`: batch id and sequence,
    /// the event CID as message id, and on an append's first message its
    /// expected last subject sequence.
    fn batch_headers(&self, batch: &mut OpenBatch, p: &Prepared, index: usize, event: &Event) -> HeaderMap {
        batch.messages += 1;
        let mut headers = HeaderMap::new();
        headers.insert(NATS_BATCH_ID, batch.id.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, batch.messages.to_string().as_str());
        headers.insert(NATS_MESSAGE_ID, event.cid.to_string().as_str());
        if index == 0 {
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, p.expected_seq.to_string().as_str());
        }
        if let Some(caller) = &p.caller {
            headers.insert(CIM_CALLER, caller.as_str());
        }
        headers
    }

    /// Sends a staged batch's commit message (through JetStream, for the
    /// acknowledgement of the whole batch).
    async fn commit(&self, staged: Staged) -> Result<AckFuture> {
        self.js
            .send_publish(staged.subject, staged.commit)
            .await
            .map_err(|e| Error::nats("committing an atomic batch", e))
    }

    /// Commits an open batch with an end-of-batch marker (a message that is
    /// not stored); on failure, hands its jobs back with the error.
    async fn commit_open(&self, batch: OpenBatch) -> std::result::Result<InFlight, (Vec<Job>, Error)> {
        let subject = batch.jobs[0].prepared.subject.clone();
        let mut headers = HeaderMap::new();
        headers.insert(NATS_BATCH_ID, batch.id.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, (batch.messages + 1).to_string().as_str());
        headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_EOB);
        match self.commit(Staged { subject, commit: PublishMessage::build().headers(headers) }).await {
            Ok(ack) => Ok(InFlight::new(batch.jobs, ack)),
            Err(error) => Err((batch.jobs, error)),
        }
    }

    /// The stream sequence of the last message on `subject`, 0 if none.
    pub async fn last_subject_seq(&self, subject: &str) -> Result<u64> {
        let last = direct::get(&self.stream, Lookup::LastFor(subject))
            .await
            .map_err(|e| Error::nats("reading an aggregate's last event", e))?;
        Ok(last.map_or(0, |message| message.sequence))
    }

    /// Whether `prepared` is already stored: the first message after the
    /// sequence it expected is its first event. Batches are atomic, so then
    /// all of it is.
    pub async fn landed(&self, prepared: &Prepared) -> Result<Option<Vec<u64>>> {
        let mut seqs = Vec::with_capacity(prepared.events.len());
        let mut from = prepared.expected_seq + 1;
        for (event, _) in &prepared.events {
            let Some(message) = direct::get(&self.stream, Lookup::NextFor(prepared.subject.as_str(), from))
                .await
                .map_err(|e| Error::nats("checking whether an append was stored", e))?
            else {
                return Ok(None);
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

/// Awaits an acknowledgement unless the server reports that it refused
/// `subject` to this user first: then the append fails with
/// [`Error::PermissionDenied`] rather than waiting out the ack timeout.
async fn unless_denied(subject: &Subject, ack: AckFuture) -> Result<AckResult> {
    match crate::retry::unless_denied(subject.as_str(), ack.into_future()).await {
        Ok(ack) => Ok(Ok(ack)),
        Err(crate::retry::Failure::Failed(error)) => Ok(Err(error)),
        Err(crate::retry::Failure::Denied(denied)) => Err(Error::nats("publishing an event", denied)),
    }
}
