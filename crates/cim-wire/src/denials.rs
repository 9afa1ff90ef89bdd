//! Permission denials the NATS server reported to this process.
//!
//! A publish the server refuses is dropped, not answered: the server only
//! sends `-ERR 'Permissions Violation for Publish to "<subject>"'` on the
//! connection, which async-nats hands to the connection's event callback.
//! A request to a refused subject would therefore just time out and look
//! like an unavailable server. Every CIM connection's callback passes its
//! events to [`record`]; [`crate::Caller`] and the store's retries ask
//! [`denied_since`] (or wait on [`wait`]) so a refused request fails at once
//! as refused and is never retried.
//!
//! The record is process-wide and keyed by subject: a process holding two
//! connections with different users could attribute one's denial to the
//! other's request on the same subject. CIM processes hold one connection.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use tokio::sync::watch;

/// Denials kept; older ones are forgotten (a request waits seconds at most).
const KEPT: usize = 256;

/// What the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Whether it was a publish (or a request) or a subscription.
    pub operation: Operation,
    /// The subject, as the server wrote it.
    pub subject: String,
}

/// The refused operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A publish or request.
    Publish,
    /// A subscription.
    Subscribe,
}

/// A point in the record: denials after it are "since" it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(u64);

struct Record {
    /// (sequence number, denial), oldest first.
    denials: Mutex<VecDeque<(u64, Denial)>>,
    /// The number of denials recorded so far.
    count: watch::Sender<u64>,
}

fn record_state() -> &'static Record {
    static RECORD: OnceLock<Record> = OnceLock::new();
    RECORD.get_or_init(|| Record { denials: Mutex::new(VecDeque::new()), count: watch::Sender::new(0) })
}

/// Reads a server error text as a permission denial.
pub fn parse(text: &str) -> Option<Denial> {
    const PREFIX: &str = "permissions violation for ";
    let lower = text.to_ascii_lowercase();
    let start = lower.find(PREFIX)? + PREFIX.len();
    let rest = &text[start..];
    let (operation, rest) = if lower[start..].starts_with("publish to ") {
        (Operation::Publish, &rest["publish to ".len()..])
    } else if lower[start..].starts_with("subscription to ") {
        (Operation::Subscribe, &rest["subscription to ".len()..])
    } else {
        return None;
    };
    let subject = rest.trim().trim_matches(|c| c == '"' || c == '\'').split_whitespace().next()?.trim_matches('"');
    (!subject.is_empty()).then(|| Denial { operation, subject: subject.to_owned() })
}

/// Records the denial an event reports, if it reports one, and returns it.
/// Call it from every connection's event callback.
pub fn record(event: &async_nats::Event) -> Option<Denial> {
    let async_nats::Event::ServerError(async_nats::ServerError::Other(text)) = event else { return None };
    let denial = parse(text)?;
    let state = record_state();
    let mut denials = state.denials.lock().unwrap_or_else(|e| e.into_inner());
    let seq = *state.count.borrow() + 1;
    if denials.len() == KEPT {
        denials.pop_front();
    }
    denials.push_back((seq, denial.clone()));
    drop(denials);
    state.count.send_replace(seq);
    Some(denial)
}

/// The current point of the record; take it before sending a request.
pub fn mark() -> Mark {
    Mark(*record_state().count.borrow())
}

/// Whether a publish to `subject` was refused after `since`.
pub fn denied_since(subject: &str, since: Mark) -> bool {
    let denials = record_state().denials.lock().unwrap_or_else(|e| e.into_inner());
    denials
        .iter()
        .rev()
        .take_while(|(seq, _)| *seq > since.0)
        .any(|(_, d)| d.operation == Operation::Publish && d.subject == subject)
}

/// Returns once a publish to `subject` is refused after `since`; never, if
/// none is.
pub async fn wait(subject: &str, since: Mark) {
    let mut count = record_state().count.subscribe();
    loop {
        if denied_since(subject, since) {
            return;
        }
        if count.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_servers_denials() {
        let denial = parse(r#"Permissions Violation for Publish to "$JS.API.STREAM.UPDATE.CIM_EVENTS""#);
        assert_eq!(
            denial,
            Some(Denial { operation: Operation::Publish, subject: "$JS.API.STREAM.UPDATE.CIM_EVENTS".to_owned() })
        );
        let denial = parse("permissions violation for subscription to _INBOX.x.y using queue \"q\"");
        assert_eq!(denial, Some(Denial { operation: Operation::Subscribe, subject: "_INBOX.x.y".to_owned() }));
        assert_eq!(parse("maximum payload exceeded"), None);
    }

    #[tokio::test]
    async fn a_recorded_denial_is_seen_since_the_mark_before_it() {
        let before = mark();
        let subject = "cim.test.denials.recorded";
        assert!(!denied_since(subject, before));
        let event = async_nats::Event::ServerError(async_nats::ServerError::Other(format!(
            "Permissions Violation for Publish to \"{subject}\""
        )));
        let waiting = tokio::spawn(async move { wait(subject, before).await });
        assert!(record(&event).is_some());
        waiting.await.expect("the wait ends");
        assert!(denied_since(subject, before));
        assert!(!denied_since(subject, mark()));
        assert!(!denied_since("cim.test.denials.other", before));
    }
}
