//! One retry policy for the store and the components built on it.
//!
//! A [`Policy`] is exponential backoff with jitter, bounded in total time
//! (and optionally in attempts): the first retry waits about
//! `first_delay`, each later one about twice as long up to `max_delay`, and
//! no attempt starts once `window` has passed since the first. Each delay is
//! drawn from its upper half ("equal jitter"), so clients that failed
//! together do not retry in lock step, and none retries at once.
//!
//! The store uses two policies: [`Policy::UNAVAILABLE`] for requests that
//! found no server able to answer — while a cluster changes (a node dies or
//! rejoins, a stream elects a leader, a client fails over) requests find
//! nobody subscribed ("503 no responders"), time out, or are told the cluster
//! is not available yet: those answers mean "not now", not "no" — and
//! [`Policy::TRANSIENT`] for appends whose commit failed on the connection
//! (sending the identical bytes again is safe: the message id is the event's
//! CID and the expected sequence is checked).
//!
//! A permission denial is never retried as if the server were away. The
//! server drops a request its user may not send and says so only on the
//! connection (`-ERR 'Permissions Violation …'`), so the request would time
//! out like an unanswered one. The store races every request it retries
//! against [`cim_wire::denials`] for the request's subject and fails at once
//! with [`Error::PermissionDenied`](crate::Error::PermissionDenied). This
//! needs connections whose event callback calls
//! [`cim_wire::denials::record`], as [`cim_wire::connect_options`] sets up.

use std::error::Error as _;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{RequestError, RequestErrorKind};
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind, RawMessageError, RawMessageErrorKind};
use cim_wire::denials;
use tokio::time::Instant;

/// Exponential backoff with jitter, bounded in total time and attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The delay before the first retry (before jitter).
    pub first_delay: Duration,
    /// The longest delay between two attempts (before jitter).
    pub max_delay: Duration,
    /// No attempt starts this long after the first one began.
    pub window: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Policy {
    /// Requests that found no server able to answer: 25 ms doubling to
    /// 500 ms, for up to 10 s.
    pub const UNAVAILABLE: Self =
        Self::new(Duration::from_millis(25), Duration::from_millis(500), Duration::from_secs(10));

    /// Commits that failed on the connection: 200 ms doubling to 3.2 s,
    /// at most 9 attempts within 20 s.
    pub const TRANSIENT: Self =
        Self::new(Duration::from_millis(200), Duration::from_millis(3200), Duration::from_secs(20))
            .with_max_attempts(9);

    /// A policy bounded by `window` only.
    pub const fn new(first_delay: Duration, max_delay: Duration, window: Duration) -> Self {
        Self { first_delay, max_delay, window, max_attempts: u32::MAX }
    }

    /// The same policy, making at most `attempts` attempts (the first included).
    pub const fn with_max_attempts(self, attempts: u32) -> Self {
        Self { max_attempts: attempts, ..self }
    }

    /// The delays of one operation's retries, starting now: for loops that
    /// decide for themselves what to retry.
    pub fn backoff(&self) -> Backoff {
        Backoff { policy: *self, deadline: Instant::now() + self.window, attempts: 1, next: self.first_delay }
    }

    /// Runs `operation` until it succeeds, fails with an error `retryable`
    /// does not accept, or the policy gives up (then its last error).
    pub async fn retry<T, E, Fut>(
        &self,
        mut operation: impl FnMut() -> Fut,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: Debug,
    {
        let mut backoff = self.backoff();
        loop {
            match operation().await {
                Err(error) if retryable(&error) => match backoff.next() {
                    Some(delay) => {
                        tracing::debug!(?error, ?delay, "retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(error),
                },
                answer => return answer,
            }
        }
    }
}

/// The delays of one operation's retries under a [`Policy`]: `None` when
/// the policy gives up (no attempts left, or the next one would start after
/// the window).
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    deadline: Instant,
    attempts: u32,
    /// The next delay before jitter.
    next: Duration,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.attempts >= self.policy.max_attempts {
            return None;
        }
        let delay = jittered(self.next);
        if Instant::now() + delay >= self.deadline {
            return None;
        }
        self.attempts += 1;
        self.next = (self.next * 2).min(self.policy.max_delay);
        Some(delay)
    }
}

/// A delay drawn uniformly from `[delay / 2, delay]`.
fn jittered(delay: Duration) -> Duration {
    // Each `RandomState` is seeded afresh: random enough to spread retries,
    // without a dependency for it.
    let random = RandomState::new().hash_one(delay);
    let half = delay / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random % nanos.saturating_add(1))
}

/// A request the server refused to this connection's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    pub subject: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "permission denied for {}", self.subject)
    }
}

impl std::error::Error for Denied {}

/// Why a request that may be retried failed in the end.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    /// The server refused its subject to this user.
    Denied(Denied),
    /// Its last error.
    Failed(E),
}

/// Boxed as the error itself, or as [`Denied`], which
/// [`Error::nats`](crate::Error::nats) turns into `PermissionDenied`.
impl<E: std::error::Error + Send + Sync + 'static> From<Failure<E>> for Box<dyn std::error::Error + Send + Sync> {
    fn from(failure: Failure<E>) -> Self {
        match failure {
            Failure::Denied(denied) => Box::new(denied),
            Failure::Failed(error) => Box::new(error),
        }
    }
}

/// Runs `request` (to `subject`) until it succeeds or fails for another
/// reason than `is_unavailable`, or [`Policy::UNAVAILABLE`] gives up; a
/// request the server refuses fails at once as [`Failure::Denied`].
pub(crate) async fn while_unavailable<T, E, Fut>(
    subject: &str,
    mut request: impl FnMut() -> Fut,
    is_unavailable: impl Fn(&E) -> bool,
) -> Result<T, Failure<E>>
where
    Fut: Future<Output = Result<T, E>>,
    E: Debug,
{
    let attempt = || unless_denied(subject, request());
    Policy::UNAVAILABLE
        .retry(attempt, |failure| matches!(failure, Failure::Failed(error) if is_unavailable(error)))
        .await
}

/// Runs one request to `subject`, failing as [`Failure::Denied`] as soon as
/// the server reports it refused the subject, or when the request failed
/// (timed out, typically) after such a report.
pub(crate) async fn unless_denied<T, E>(
    subject: &str,
    request: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure<E>> {
    let since = denials::mark();
    let denied = || Failure::Denied(Denied { subject: subject.to_owned() });
    tokio::select! {
        answer = request => answer.map_err(|error| {
            if denials::denied_since(subject, since) { denied() } else { Failure::Failed(error) }
        }),
        () = denials::wait(subject, since) => Err(denied()),
    }
}

/// Whether creating a consumer failed only because no server could take
/// the request right now.
pub(crate) fn consumer_unavailable(error: &ConsumerError) -> bool {
    match error.kind() {
        ConsumerErrorKind::TimedOut => true,
        ConsumerErrorKind::JetStream(e) => cluster_busy(&e),
        ConsumerErrorKind::Request => request_unanswered(error.source()),
        _ => false,
    }
}

/// Whether a message get through the stream leader failed only because no
/// server could take the request right now.
pub(crate) fn leader_get_unavailable(error: &RawMessageError) -> bool {
    match error.kind() {
        RawMessageErrorKind::JetStream(e) => cluster_busy(&e),
        RawMessageErrorKind::Other => request_unanswered(error.source()),
        _ => false,
    }
}

/// The JetStream API's "no leader yet" answers.
fn cluster_busy(error: &async_nats::jetstream::Error) -> bool {
    [ErrorCode::CLUSTER_NOT_AVAILABLE, ErrorCode::CLUSTER_NOT_LEADER].contains(&error.error_code())
}

/// A request that nobody answered: no responders, or no reply in time.
pub(crate) fn request_unanswered(source: Option<&(dyn std::error::Error + 'static)>) -> bool {
    source
        .and_then(|source| source.downcast_ref::<RequestError>())
        .is_some_and(|e| matches!(e.kind(), RequestErrorKind::NoResponders | RequestErrorKind::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jetstream_error(err_code: u64) -> ConsumerError {
        let error =
            serde_json::from_value(serde_json::json!({ "code": 503, "err_code": err_code, "description": "x" }))
                .expect("a JetStream API error");
        ConsumerError::new(ConsumerErrorKind::JetStream(error))
    }

    #[test]
    fn only_a_missing_answer_makes_consumer_creation_retry() {
        assert!(consumer_unavailable(&ConsumerError::new(ConsumerErrorKind::TimedOut)));
        let no_responders = RequestError::new(RequestErrorKind::NoResponders);
        assert!(consumer_unavailable(&ConsumerError::with_source(ConsumerErrorKind::Request, no_responders)));
        assert!(consumer_unavailable(&jetstream_error(ErrorCode::CLUSTER_NOT_AVAILABLE.0)));
        assert!(consumer_unavailable(&jetstream_error(ErrorCode::CLUSTER_NOT_LEADER.0)));

        let refused = RequestError::new(RequestErrorKind::Other);
        assert!(!consumer_unavailable(&ConsumerError::with_source(ConsumerErrorKind::Request, refused)));
        assert!(!consumer_unavailable(&jetstream_error(ErrorCode::STREAM_NOT_FOUND.0)));
        assert!(!consumer_unavailable(&ConsumerError::new(ConsumerErrorKind::InvalidName)));
    }

    #[test]
    fn only_a_missing_answer_makes_a_leader_get_retry() {
        let unanswered = |kind| RawMessageError::with_source(RawMessageErrorKind::Other, RequestError::new(kind));
        assert!(leader_get_unavailable(&unanswered(RequestErrorKind::NoResponders)));
        assert!(leader_get_unavailable(&unanswered(RequestErrorKind::TimedOut)));
        assert!(!leader_get_unavailable(&unanswered(RequestErrorKind::Other)));
        assert!(!leader_get_unavailable(&RawMessageError::new(RawMessageErrorKind::NoMessageFound)));
        assert!(!leader_get_unavailable(&RawMessageError::new(RawMessageErrorKind::InvalidSubject)));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_another_error_or_when_the_window_closes() {
        let policy = Policy::UNAVAILABLE;
        let mut calls = 0;
        let answer: Result<(), &str> = policy
            .retry(
                || {
                    calls += 1;
                    std::future::ready(Err(if calls < 3 { "busy" } else { "refused" }))
                },
                |e: &&str| *e == "busy",
            )
            .await;
        assert_eq!((answer, calls), (Err("refused"), 3));

        let started = Instant::now();
        let answer: Result<(), &str> = policy.retry(|| std::future::ready(Err("busy")), |_| true).await;
        assert_eq!(answer, Err("busy"));
        assert!(started.elapsed() <= policy.window, "{:?}", started.elapsed());
        assert!(started.elapsed() >= policy.window - policy.max_delay, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn delays_grow_with_jitter_up_to_the_limits() {
        let policy = Policy::new(Duration::from_millis(100), Duration::from_millis(400), Duration::from_secs(60))
            .with_max_attempts(6);
        let delays: Vec<Duration> = policy.backoff().collect();
        assert_eq!(delays.len(), 5, "six attempts, five delays: {delays:?}");
        for (delay, ceiling) in delays.iter().zip([100, 200, 400, 400, 400]) {
            let ceiling = Duration::from_millis(ceiling);
            assert!(*delay >= ceiling / 2 && *delay <= ceiling, "{delay:?} outside [{:?}, {ceiling:?}]", ceiling / 2);
        }
        let distinct: std::collections::HashSet<Duration> = (0..20).map(|_| jittered(Duration::from_secs(1))).collect();
        assert!(distinct.len() > 1, "jitter varies the delays");

        let mut calls = 0;
        let answer: Result<(), ()> = policy
            .retry(
                || {
                    calls += 1;
                    std::future::ready(Err(()))
                },
                |_| true,
            )
            .await;
        assert_eq!((answer, calls), (Err(()), 6), "at most max_attempts attempts");
    }

    #[tokio::test]
    async fn a_reported_denial_ends_the_request_at_once() {
        let subject = "$JS.API.CONSUMER.CREATE.TEST.denied";
        let event = async_nats::Event::ServerError(async_nats::ServerError::Other(format!(
            "Permissions Violation for Publish to \"{subject}\""
        )));
        // A request that never answers on its own, refused while it waits.
        let request = async {
            tokio::task::yield_now().await;
            denials::record(&event);
            std::future::pending::<Result<(), &str>>().await
        };
        let mut request = Some(request);
        let answer = while_unavailable(subject, || request.take().expect("one attempt"), |_: &&str| true).await;
        assert!(matches!(answer, Err(Failure::Denied(Denied { subject: ref s })) if s == subject), "{answer:?}");

        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Failure::<std::io::Error>::Denied(Denied { subject: subject.to_owned() }).into();
        assert!(boxed.downcast_ref::<Denied>().is_some());
    }
}
