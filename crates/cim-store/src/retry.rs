//! Riding out the moments when no server can answer.
//!
//! While a cluster changes — a node dies or rejoins, a stream elects a
//! leader, a client fails over — requests can find nobody subscribed ("503
//! no responders"), time out, or be told the cluster is not available yet.
//! Those answers mean "not now", not "no", so reads retry them for a bounded
//! time before returning the error.

use std::error::Error as _;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{RequestError, RequestErrorKind};
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind, RawMessageError, RawMessageErrorKind};
use tokio::time::Instant;

/// How long a request keeps retrying while no server can answer it.
const UNAVAILABLE_RETRY_WINDOW: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Runs `request` until it succeeds, fails for another reason than
/// `is_unavailable`, or the retry window closes (then its last error).
pub(crate) async fn while_unavailable<T, E, Fut>(
    mut request: impl FnMut() -> Fut,
    is_unavailable: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: Debug,
{
    let deadline = Instant::now() + UNAVAILABLE_RETRY_WINDOW;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match request().await {
            Err(e) if is_unavailable(&e) && Instant::now() + backoff < deadline => {
                tracing::debug!(error = ?e, "no server could answer; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            answer => return answer,
        }
    }
}

/// Whether creating a consumer failed only because no server could take
/// the request right now.
pub(crate) fn consumer_unavailable(error: &ConsumerError) -> bool {
    match error.kind() {
        ConsumerErrorKind::TimedOut => true,
        ConsumerErrorKind::JetStream(e) => cluster_busy(&e),
        ConsumerErrorKind::Request => unanswered(error.source()),
        _ => false,
    }
}

/// Whether a message get through the stream leader failed only because no
/// server could take the request right now.
pub(crate) fn leader_get_unavailable(error: &RawMessageError) -> bool {
    match error.kind() {
        RawMessageErrorKind::JetStream(e) => cluster_busy(&e),
        RawMessageErrorKind::Other => unanswered(error.source()),
        _ => false,
    }
}

/// The JetStream API's "no leader yet" answers.
fn cluster_busy(error: &async_nats::jetstream::Error) -> bool {
    [ErrorCode::CLUSTER_NOT_AVAILABLE, ErrorCode::CLUSTER_NOT_LEADER].contains(&error.error_code())
}

/// A request that nobody answered: no responders, or no reply in time.
fn unanswered(source: Option<&(dyn std::error::Error + 'static)>) -> bool {
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
        let mut calls = 0;
        let answer: Result<(), &str> = while_unavailable(
            || {
                calls += 1;
                std::future::ready(Err(if calls < 3 { "busy" } else { "refused" }))
            },
            |e: &&str| *e == "busy",
        )
        .await;
        assert_eq!((answer, calls), (Err("refused"), 3));

        let started = Instant::now();
        let answer: Result<(), &str> = while_unavailable(|| std::future::ready(Err("busy")), |_| true).await;
        assert_eq!(answer, Err("busy"));
        assert!(started.elapsed() <= UNAVAILABLE_RETRY_WINDOW, "{:?}", started.elapsed());
        assert!(started.elapsed() >= UNAVAILABLE_RETRY_WINDOW - MAX_BACKOFF, "{:?}", started.elapsed());
    }
}
