//! Point reads: one message by sequence, or the last or next one on a subject.
//!
//! On a single server they are direct gets (`$JS.API.DIRECT.GET`), which
//! any replica may answer. In a cluster that includes a replica still
//! catching up, which can answer "not found" for a message the majority
//! stored, or an older last message (CI once saw a direct get answer "not
//! found" for an object right after a node of the test cluster rejoined;
//! a lagging replica is the likely cause). So the point reads of a replicated stream go
//! to the stream leader (`$JS.API.STREAM.MSG.GET`), which holds every
//! acknowledged message. Either way, while no server can answer (see
//! [`retry`]), the read is retried rather than failed; a read the server
//! refuses to this user fails at once.

use async_nats::StatusCode;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{DirectGetError, DirectGetErrorKind, RawMessageError, RawMessageErrorKind, Stream};

use crate::retry::{self, Failure};

/// Which message a direct get asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lookup<'a> {
    /// The message at this stream sequence.
    Seq(u64),
    /// The last message on a subject (wildcards allowed).
    LastFor(&'a str),
    /// The first message on a subject at or after a sequence.
    NextFor(&'a str, u64),
}

/// The message `lookup` names, or `None` if the stream has no such message.
/// A refused request fails as [`retry::Denied`].
pub(crate) async fn get(stream: &Stream, lookup: Lookup<'_>) -> Result<Option<StreamMessage>, async_nats::Error> {
    if stream.cached_info().config.num_replicas > 1 {
        Ok(from_leader(stream, lookup).await?)
    } else {
        Ok(direct(stream, lookup).await?)
    }
}

async fn direct(stream: &Stream, lookup: Lookup<'_>) -> Result<Option<StreamMessage>, Failure<DirectGetError>> {
    let name = &stream.cached_info().config.name;
    let subject = match lookup {
        Lookup::LastFor(subject) => format!("$JS.API.DIRECT.GET.{name}.{subject}"),
        Lookup::Seq(_) | Lookup::NextFor(..) => format!("$JS.API.DIRECT.GET.{name}"),
    };
    let request = || async move {
        match lookup {
            Lookup::Seq(seq) => stream.direct_get(seq).await,
            Lookup::LastFor(subject) => stream.direct_get_last_for_subject(subject).await,
            Lookup::NextFor(subject, from) => stream.direct_get_next_for_subject(subject, Some(from)).await,
        }
    };
    match retry::while_unavailable(&subject, request, |e: &DirectGetError| is_unavailable(&e.kind())).await {
        Ok(message) => Ok(Some(message)),
        Err(Failure::Failed(e)) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn from_leader(stream: &Stream, lookup: Lookup<'_>) -> Result<Option<StreamMessage>, Failure<RawMessageError>> {
    let subject = format!("$JS.API.STREAM.MSG.GET.{}", stream.cached_info().config.name);
    let request = || async move {
        let builder = stream.raw_message_builder();
        let builder = match lookup {
            Lookup::Seq(seq) => builder.sequence(seq),
            Lookup::LastFor(subject) => builder.last_by_subject(subject),
            Lookup::NextFor(subject, from) => builder.sequence(from).next_by_subject(subject),
        };
        builder.send().await
    };
    match retry::while_unavailable(&subject, request, retry::leader_get_unavailable).await {
        Ok(message) => Ok(Some(message)),
        Err(Failure::Failed(e)) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Answers that say no replica could serve the read right now.
fn is_unavailable(kind: &DirectGetErrorKind) -> bool {
    match kind {
        DirectGetErrorKind::TimedOut => true,
        DirectGetErrorKind::ErrorResponse(status, _) => *status == StatusCode::NO_RESPONDERS,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_nats::jetstream::{self, stream};
    use cim_test_support::NatsServer;

    use super::*;

    /// A stream that is gone gets "no responders"; the read waits for it to
    /// come back rather than failing at once.
    #[tokio::test]
    async fn a_read_waits_out_a_moment_without_responders() {
        let server = NatsServer::start().await;
        let js = jetstream::new(server.connect().await);
        let config = stream::Config {
            name: "DIRECT_RETRY".into(),
            subjects: vec!["retry.>".into()],
            allow_direct: true,
            ..Default::default()
        };
        let handle = js.create_stream(config.clone()).await.unwrap();
        js.delete_stream("DIRECT_RETRY").await.unwrap();

        let unavailable = handle.direct_get_last_for_subject("retry.a").await.unwrap_err();
        assert!(is_unavailable(&unavailable.kind()), "{unavailable}");
        let restore = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            js.create_stream(config).await.unwrap();
            js.publish("retry.a", "back".into()).await.unwrap().await.unwrap();
        });
        let message = get(&handle, Lookup::LastFor("retry.a")).await.unwrap().expect("the message stored meanwhile");
        assert_eq!(&message.payload[..], b"back");
        restore.await.unwrap();
    }

    #[test]
    fn only_unavailability_is_retried() {
        assert!(is_unavailable(&DirectGetErrorKind::TimedOut));
        assert!(is_unavailable(&DirectGetErrorKind::ErrorResponse(StatusCode::NO_RESPONDERS, "no responders".into())));
        assert!(!is_unavailable(&DirectGetErrorKind::NotFound));
        assert!(!is_unavailable(&DirectGetErrorKind::InvalidSubject));
        assert!(!is_unavailable(&DirectGetErrorKind::ErrorResponse(
            StatusCode::REQUEST_TERMINATED,
            "terminated".into()
        )));
    }
}
