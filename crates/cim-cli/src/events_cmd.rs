//! `cim events`: append, read, show, log (replay) and tail.

use std::path::PathBuf;

use anyhow::Context;
use cim_store::{AggregateQuery, ExpectedVersion, NewEvent, StartAt, StoredEvent};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::args::{self, ipld_json, ipld_text};
use crate::exit::{Exit, not_found, usage};
use crate::output::Output;
use crate::session::Session;

/// `cim events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Append an event to an aggregate; prints its CID and version.
    Append(AppendArgs),
    /// Print an aggregate's events in version order.
    Read {
        /// The aggregate, `type/id`, e.g. `order/42`.
        aggregate: String,
        /// First version.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last version.
        #[arg(long)]
        to: Option<u64>,
        /// Only events whose timestamp is at or before this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
    },
    /// Print one event, found by CID.
    Show {
        /// The event's CID.
        cid: String,
    },
    /// Replay the whole log (every aggregate, stream order) up to now.
    Log(StartArgs),
    /// Follow the log live: new events as they are stored (Ctrl-C stops).
    Tail(StartArgs),
}

/// Arguments of `cim events append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The aggregate, `type/id`, e.g. `order/42`.
    aggregate: String,
    /// What happened, e.g. `OrderPlaced`.
    event_type: String,
    /// The payload as JSON; `{"/": "<cid>"}` is a link [default: {}].
    payload: Option<String>,
    /// Read the payload from a file (`-`: stdin) instead.
    #[arg(long, value_name = "FILE", conflicts_with = "payload")]
    payload_file: Option<PathBuf>,
    /// Append only if the aggregate is at this version (0: new aggregate); exit 4 if not.
    #[arg(long, value_name = "VERSION")]
    expect: Option<u64>,
    /// CID of an event that caused this one (repeatable).
    #[arg(long = "parent", value_name = "CID")]
    parents: Vec<String>,
    /// Version of the payload's schema.
    #[arg(long, default_value_t = 1)]
    schema_version: u32,
    /// The event's time (RFC 3339) [default: now]. A fixed time makes a retry idempotent.
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
}

/// Where `log` and `tail` start.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Start at this stream sequence.
    #[arg(long, value_name = "SEQ", conflicts_with_all = ["since", "all"])]
    from_seq: Option<u64>,
    /// Start at the first event the server stored at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME", conflicts_with = "all")]
    since: Option<String>,
    /// `tail` only: replay everything first, then follow.
    #[arg(long)]
    all: bool,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

/// Runs an `events` command.
pub async fn run(session: &Session, command: EventsCommand, out: &Output) -> anyhow::Result<Exit> {
    match command {
        EventsCommand::Append(args) => append(session, args, out).await,
        EventsCommand::Read { aggregate, from, to, as_of } => {
            let aggregate = args::aggregate(&aggregate)?;
            let as_of = as_of.as_deref().map(args::time).transpose()?;
            let mut events = session
                .events
                .read_aggregate(&aggregate, AggregateQuery { from_version: from, to_version: to, as_of })
                .await
                .with_context(|| format!("reading {aggregate}"))?;
            if events.first().is_none_or(|first| first.version() > from)
                && session.events.retention_point().await?.is_some()
            {
                events = with_archived(session, &aggregate, from, to, as_of, events, out).await?;
            }
            if events.is_empty() && session.events.head(&aggregate).await?.is_none() {
                return Err(not_found(format!("aggregate {aggregate} has no events")));
            }
            let json: Vec<Value> = events.iter().map(event_json).collect();
            out.emit(&json, || events.iter().map(|e| format!("{}\n", version_line(e))).collect());
            Ok(Exit::Ok)
        }
        EventsCommand::Show { cid } => {
            let cid = args::cid(&cid)?;
            let stored = match session.events.event(&cid).await {
                Ok(stored) => stored,
                Err(cim_store::Error::EventNotFound(_) | cim_store::Error::EventArchived { .. })
                    if session.events.retention_point().await?.is_some() =>
                {
                    let stored = crate::tiers::archived_event(session, &cid).await?;
                    out.note("(read from the archive: hot no longer holds this event)");
                    stored
                }
                Err(error) => return Err(error.into()),
            };
            out.emit(&event_json(&stored), || detail(&stored));
            Ok(Exit::Ok)
        }
        EventsCommand::Log(start) => follow(session, start, true, out).await,
        EventsCommand::Tail(start) => follow(session, start, false, out).await,
    }
}

/// An aggregate's events when retention dropped its early versions from
/// hot: the versions before the first hot one are read from the archive,
/// walking `prev` links back (each verified against the CID its successor
/// names, so the chain is checked as it is read).
async fn with_archived(
    session: &Session,
    aggregate: &cim_cid::AggregateKey,
    from: u64,
    to: Option<u64>,
    as_of: Option<cim_cid::Timestamp>,
    hot: Vec<StoredEvent>,
    out: &Output,
) -> anyhow::Result<Vec<StoredEvent>> {
    // Hot holds at least the aggregate's head at the retention point.
    let hot = if hot.is_empty() { session.events.read_aggregate(aggregate, AggregateQuery::all()).await? } else { hot };
    let Some(first) = hot.first() else { return Ok(hot) };
    let mut archived = Vec::new();
    let mut link = first.event.envelope.prev().copied();
    let mut version = first.version();
    while let Some(cid) = link {
        if version <= from {
            break;
        }
        let stored = crate::tiers::archived_event(session, &cid).await?;
        let envelope = &stored.event.envelope;
        if envelope.aggregate() != *aggregate || envelope.version() + 1 != version {
            return Err(crate::exit::problems(format!(
                "the archive's event {cid} is not version {} of {aggregate}",
                version - 1
            )));
        }
        version = envelope.version();
        link = envelope.prev().copied();
        archived.push(stored);
    }
    if !archived.is_empty() {
        out.note(format!("({} earlier versions read from the archive)", archived.len()));
    }
    archived.reverse();
    Ok(archived
        .into_iter()
        .chain(hot)
        .filter(|e| e.version() >= from && to.is_none_or(|to| e.version() <= to))
        .filter(|e| as_of.is_none_or(|time| e.event.envelope.timestamp() <= time))
        .collect())
}

async fn append(session: &Session, args: AppendArgs, out: &Output) -> anyhow::Result<Exit> {
    let aggregate = args::aggregate(&args.aggregate)?;
    let payload = match (&args.payload, &args.payload_file) {
        (Some(text), _) => args::payload(text, "the payload")?,
        (None, Some(path)) => {
            let text = args::read_text(path)?;
            args::payload(&text, &format!("the payload in {}", path.display()))?
        }
        (None, None) => args::payload("{}", "the payload")?,
    };
    let parents = args.parents.iter().map(|p| args::cid(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut event =
        NewEvent::new(args.event_type.clone(), payload).with_parents(parents).with_schema_version(args.schema_version);
    cim_cid::validate_event_type(&args.event_type).map_err(|e| usage(e.to_string()))?;
    if let Some(time) = &args.time {
        event = event.with_timestamp(args::time(time)?);
    }
    let expected = args.expect.map_or(ExpectedVersion::Any, ExpectedVersion::Exact);
    let appended = session.events.append(&aggregate, expected, vec![event]).await.map_err(|error| {
        let hint = match &error {
            cim_store::Error::ConcurrencyConflict { actual, .. } => {
                format!(
                    "not appended: read the aggregate (`cim events read {aggregate}`) and retry with --expect {actual}"
                )
            }
            cim_store::Error::DanglingLink { parent, .. } => {
                format!("not appended: --parent {parent} names no stored event (`cim events show` finds events by CID)")
            }
            _ => format!("appending to {aggregate}"),
        };
        anyhow::Error::new(error).context(hint)
    })?;
    let event = appended.events[0];
    let json = json!({
        "aggregate": aggregate.to_string(),
        "cid": event.cid.to_string(),
        "version": event.version,
        "seq": event.seq,
        "already_stored": appended.already_stored,
    });
    out.emit(&json, || {
        let retry = if appended.already_stored { " (already stored: this was a retry)" } else { "" };
        format!("{}\n{aggregate} is now at version {} (stream sequence {}){retry}", event.cid, event.version, event.seq)
    });
    Ok(Exit::Ok)
}

/// `log` (bounded) and `tail` (live).
async fn follow(session: &Session, start: StartArgs, bounded: bool, out: &Output) -> anyhow::Result<Exit> {
    let state = session.events.log_state().await?;
    let start_at = match (start.from_seq, &start.since) {
        (Some(seq), _) => StartAt::Sequence(seq),
        (None, Some(time)) => StartAt::Time(args::time(time)?),
        (None, None) if bounded || start.all => StartAt::Beginning,
        (None, None) => StartAt::Sequence(state.last_seq + 1),
    };
    let mut events =
        if bounded { session.events.read_log(start_at).await? } else { session.events.subscribe(start_at).await? };
    let limit = start.limit.unwrap_or(u64::MAX);
    // A bar only when the events themselves go elsewhere (a file, a pipe).
    let bar = if bounded && !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        out.progress(state.events, "replaying")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut shown = 0;
    while shown < limit {
        let next = tokio::select! {
            next = events.next() => next,
            _ = tokio::signal::ctrl_c(), if !bounded => None,
        };
        let Some(item) = next else { break };
        let stored = item.context("reading the event log")?;
        if out.is_json() {
            out.json_line(&event_json(&stored));
        } else {
            println!("{}", log_line(&stored));
        }
        bar.inc(1);
        shown += 1;
    }
    bar.finish_and_clear();
    Ok(Exit::Ok)
}

/// An event as JSON: the envelope's fields, the payload as DAG-JSON.
pub fn event_json(stored: &StoredEvent) -> Value {
    let envelope = &stored.event.envelope;
    json!({
        "cid": stored.event.cid.to_string(),
        "seq": stored.seq,
        "stored_at": stored.stored_at.to_string(),
        "aggregate": envelope.aggregate().to_string(),
        "version": envelope.version(),
        "event_type": envelope.event_type(),
        "schema_version": envelope.schema_version(),
        "timestamp": envelope.timestamp().to_string(),
        "timestamp_us": envelope.timestamp().unix_micros(),
        "prev": envelope.prev().map(ToString::to_string),
        "parents": envelope.parents().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "payload": ipld_json(envelope.payload()),
    })
}

fn version_line(stored: &StoredEvent) -> String {
    let envelope = &stored.event.envelope;
    format!(
        "v{:<4} {}  {}  {}  {}",
        envelope.version(),
        stored.event.cid,
        envelope.timestamp(),
        envelope.event_type(),
        ipld_text(envelope.payload())
    )
}

fn log_line(stored: &StoredEvent) -> String {
    let envelope = &stored.event.envelope;
    format!(
        "#{:<6} {} v{}  {}  {}  {}",
        stored.seq,
        envelope.aggregate(),
        envelope.version(),
        envelope.event_type(),
        stored.event.cid,
        ipld_text(envelope.payload())
    )
}

fn detail(stored: &StoredEvent) -> String {
    let envelope = &stored.event.envelope;
    let parents: Vec<String> = envelope.parents().iter().map(ToString::to_string).collect();
    let payload = serde_json::to_string_pretty(&ipld_json(envelope.payload())).unwrap_or_default();
    format!(
        "event      {}\naggregate  {} v{}\ntype       {} (schema {})\ntime       {}\nprev       {}\nparents    {}\n\
         stored     sequence {} at {}\npayload    {}",
        stored.event.cid,
        envelope.aggregate(),
        envelope.version(),
        envelope.event_type(),
        envelope.schema_version(),
        envelope.timestamp(),
        envelope.prev().map_or_else(|| "none (first event)".to_owned(), ToString::to_string),
        if parents.is_empty() { "none".to_owned() } else { parents.join(", ") },
        stored.seq,
        stored.stored_at,
        payload.replace('\n', "\n           ")
    )
}
