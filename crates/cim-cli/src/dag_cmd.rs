//! `cim dag`: walks through the MerkleDAG, as text, JSON or Graphviz DOT.

use cim_cid::Cid;
use cim_dag::{DagError, EventRef, MerkleDag};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::args;
use crate::exit::{Exit, not_found};
use crate::output::Output;
use crate::session::Session;

/// `cim dag …`.
#[derive(Debug, Subcommand)]
pub enum DagCommand {
    /// The events an event descends from (its prev chain and causes), nearest first.
    Ancestors(WalkArgs),
    /// The events that descend from an event, nearest first.
    Descendants(WalkArgs),
    /// A shortest causal path from one event to a later one (exit 5 if there is none).
    Path {
        /// The earlier event's CID.
        from: String,
        /// The later event's CID.
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Arguments of `ancestors` and `descendants`.
#[derive(Debug, Args)]
pub struct WalkArgs {
    /// The event's CID.
    cid: String,
    /// Go at most this many links away.
    #[arg(long)]
    depth: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How a walk is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One event per line.
    Text,
    /// A JSON document (also what `--json` gives).
    Json,
    /// A Graphviz digraph: `cim dag … --format dot | dot -Tsvg > dag.svg`.
    Dot,
}

/// Runs a `dag` command.
pub async fn run(session: &Session, command: DagCommand, out: &Output) -> anyhow::Result<Exit> {
    let live = session.events.dag().await?;
    live.catch_up().await?;
    let dag = live.read();
    match command {
        DagCommand::Ancestors(walk) => print_walk(&dag, walk, true, out),
        DagCommand::Descendants(walk) => print_walk(&dag, walk, false, out),
        DagCommand::Path { from, to, format } => {
            let (from, to) = (args::cid(&from)?, args::cid(&to)?);
            let path = dag.causal_path(&from, &to).map_err(unknown)?;
            let Some(path) = path else {
                return Err(not_found(format!("{to} does not descend from {from}: no causal path")));
            };
            let events: Vec<EventRef<'_>> = path.iter().filter_map(|cid| dag.get(cid)).collect();
            print(
                &dag,
                format,
                out,
                json!({ "from": from.to_string(), "to": to.to_string(), "path": events_json(&events) }),
                &path,
                || events.iter().map(|e| format!("{}\n", line(e))).collect::<Vec<_>>().join("  ↓\n"),
            );
            Ok(Exit::Ok)
        }
    }
}

fn print_walk(dag: &MerkleDag, walk: WalkArgs, ancestors: bool, out: &Output) -> anyhow::Result<Exit> {
    let cid = args::cid(&walk.cid)?;
    let found = if ancestors { dag.ancestors(&cid, walk.depth) } else { dag.descendants(&cid, walk.depth) };
    let events: Vec<EventRef<'_>> = found.map_err(unknown)?.collect();
    let mut shown: Vec<Cid> = events.iter().map(|e| e.cid).collect();
    shown.push(cid);
    let key = if ancestors { "ancestors" } else { "descendants" };
    print(dag, walk.format, out, json!({ "cid": cid.to_string(), key: events_json(&events) }), &shown, || {
        if events.is_empty() {
            format!("{cid} has no {key}")
        } else {
            events.iter().map(|e| format!("{}\n", line(e))).collect()
        }
    });
    Ok(Exit::Ok)
}

fn print(dag: &MerkleDag, format: Format, out: &Output, json: Value, shown: &[Cid], text: impl FnOnce() -> String) {
    match format {
        Format::Dot if !out.is_json() => print!("{}", dag.to_dot(shown)),
        Format::Json => out.json_line(&json),
        _ => out.emit(&json, text),
    }
}

fn line(event: &EventRef<'_>) -> String {
    format!("{} v{}  {}  (stream sequence {})", event.aggregate, event.version, event.cid, event.position)
}

fn events_json(events: &[EventRef<'_>]) -> Value {
    events
        .iter()
        .map(|e| json!({ "cid": e.cid.to_string(), "aggregate": e.aggregate.to_string(), "version": e.version, "seq": e.position }))
        .collect()
}

fn unknown(error: DagError) -> anyhow::Error {
    match error {
        DagError::UnknownEvent { cid } => not_found(format!("event {cid} is not in the store")),
        other => other.into(),
    }
}
