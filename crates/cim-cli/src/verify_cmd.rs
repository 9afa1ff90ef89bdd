//! `cim verify`: re-hash every event and object against its CID and check
//! every chain, parent link and name history; exit 3 naming each problem.

use clap::Args;
use serde::Serialize;

use crate::args;
use crate::exit::{Exit, not_found};
use crate::output::Output;
use crate::session::Session;

/// Arguments of `cim verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify only this aggregate's chain (`type/id`).
    #[arg(long, value_name = "AGGREGATE")]
    aggregate: Option<String>,
    /// Skip objects and names (events only).
    #[arg(long, conflicts_with = "aggregate")]
    events_only: bool,
}

/// What `cim verify` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Whether nothing is wrong.
    pub ok: bool,
    /// Events that passed every check.
    pub events: u64,
    /// Aggregates seen.
    pub aggregates: u64,
    /// Objects re-hashed and found intact.
    pub objects: u64,
    /// Their bytes.
    pub object_bytes: u64,
    /// Names whose version chain was checked.
    pub names: u64,
    /// Everything wrong, one sentence each.
    pub problems: Vec<String>,
}

/// Runs `cim verify`.
pub async fn run(session: &Session, args: VerifyArgs, out: &Output) -> anyhow::Result<Exit> {
    let report = match &args.aggregate {
        Some(aggregate) => {
            let aggregate = args::aggregate(aggregate)?;
            if session.events.head(&aggregate).await?.is_none() {
                return Err(not_found(format!("aggregate {aggregate} has no events")));
            }
            let found = session.events.verify_aggregate(&aggregate).await?;
            Report {
                events: found.verified,
                aggregates: 1,
                problems: found.problems.iter().map(ToString::to_string).collect(),
                ..Report::default()
            }
        }
        None => verify_store(session, !args.events_only, out).await?,
    };
    let report = Report { ok: report.problems.is_empty(), ..report };
    out.emit(&report, || {
        let mut text = format!(
            "verified {} events in {} aggregates, {} objects ({} bytes), {} names",
            report.events, report.aggregates, report.objects, report.object_bytes, report.names
        );
        if report.ok {
            text.push_str(": everything matches its CID and every chain is intact");
        } else {
            text = format!("{} problems found:\n  {}\n{text}", report.problems.len(), report.problems.join("\n  "));
        }
        text
    });
    Ok(if report.ok { Exit::Ok } else { Exit::Problems })
}

/// Verifies every event, and unless `events_only`, every object and name.
pub async fn verify_store(session: &Session, with_objects: bool, out: &Output) -> anyhow::Result<Report> {
    let total = session.events.log_state().await?.events;
    let bar = out.progress(total, "events");
    let found = session.events.verify(|done, _| bar.set_position(done)).await?;
    bar.finish_and_clear();
    let mut report = Report {
        events: found.verified,
        aggregates: found.aggregates,
        problems: found.problems.iter().map(ToString::to_string).collect(),
        ..Report::default()
    };
    if with_objects {
        let objects = session.objects.list().await?;
        let bar = out.progress_bytes(objects.iter().map(|o| o.size).sum(), "objects");
        for object in &objects {
            match session.objects.verify(&object.cid).await {
                Ok(meta) => {
                    report.objects += 1;
                    report.object_bytes += meta.size;
                }
                Err(error) => report.problems.push(format!("object {}: {error}", object.cid)),
            }
            bar.inc(object.size);
        }
        bar.finish_and_clear();
        for name in session.named.names().await? {
            match session.named.history(&name).await {
                Ok(_) => report.names += 1,
                Err(error) => report.problems.push(format!("name {name:?}: {error}")),
            }
        }
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}
