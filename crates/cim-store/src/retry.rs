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
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind};
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
        ConsumerErrorKind::JetStream(e) => {
            [ErrorCode::CLUSTER_NOT_AVAILABLE, ErrorCode::CLUSTER_NOT_LEADER].contains(&e.error_code())
        }
        ConsumerErrorKind::Request => error
            .source()
            .and_then(|source| source.downcast_ref::<async_nats::jetstream::context::RequestError>())
            .is_some_and(|e| e.kind() == async_nats::jetstream::context::RequestErrorKind::NoResponders),
        _ => false,
    }
}
