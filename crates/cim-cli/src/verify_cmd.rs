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
///
/// When retention dropped early events from hot, they are read from the
/// Storage Manager's tiers and verified first (every segment against its
/// CID, the manifest chain, every event and chain), and hot is verified as
/// their continuation. Without the manager, hot is verified from the
/// checkpoint and the dropped part is reported as unverified.
pub async fn verify_store(session: &Session, with_objects: bool, out: &Output) -> anyhow::Result<Report> {
    let total = session.events.log_state().await?.events;
    let mut archived = Report::default();
    let found = match session.events.retention_point().await? {
        Some(point) => match verify_archive(session, point.through_seq, out).await {
            Ok((dag, events, problems)) => {
                archived.events = events;
                archived.problems = problems;
                let bar = out.progress(total, "events");
                let found =
                    session.events.verify_from(dag, point.through_seq, |done, _| bar.set_position(done)).await?;
                bar.finish_and_clear();
                found
            }
            Err(error) => {
                archived.problems.push(format!(
                    "events through stream sequence {} were dropped to the tiers and are not verified here: {error:#}",
                    point.through_seq
                ));
                let bar = out.progress(total, "events");
                let found = session.events.verify(|done, _| bar.set_position(done)).await?;
                bar.finish_and_clear();
                found
            }
        },
        None => {
            let bar = out.progress(total, "events");
            let found = session.events.verify(|done, _| bar.set_position(done)).await?;
            bar.finish_and_clear();
            found
        }
    };
    let mut report = Report {
        events: archived.events + found.verified,
        aggregates: found.aggregates,
        problems: archived.problems.into_iter().chain(found.problems.iter().map(ToString::to_string)).collect(),
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

/// Reads and verifies the archived events through `through_seq` from the
/// Storage Manager: the manifest chain, every segment against its CID, every
/// event and chain. Returns the DAG they make, the events verified and the
/// problems found.
async fn verify_archive(
    session: &Session,
    through_seq: u64,
    out: &Output,
) -> anyhow::Result<(cim_dag::MerkleDag, u64, Vec<String>)> {
    use cim_archive::segment::{SegmentManifest, check_chain, read_segment};
    use cim_storage_api::{ItemKind, SegmentQuery};

    let remote = crate::tiers::storage(session);
    let segments = remote
        .check(remote.client.segments(&SegmentQuery { from_seq: None, to_seq: Some(through_seq) }).await, |_| None)?
        .segments;
    let bar = out.progress_bytes(segments.iter().map(|s| s.bytes).sum(), "archive");
    let mut chain = Vec::new();
    let mut dag = cim_dag::MerkleDag::new();
    let mut problems = Vec::new();
    let mut events = 0;
    for info in &segments {
        let manifest_cid = args::cid(&info.manifest)?;
        let bytes = crate::tiers::read_item(session, ItemKind::Manifests, &manifest_cid).await?;
        let manifest = SegmentManifest::decode(&manifest_cid, &bytes)?;
        let bytes = crate::tiers::read_item(session, ItemKind::Segments, &manifest.segment).await?;
        let segment = read_segment(&bytes, Some(&manifest.segment)).await?;
        for (seq, event) in &segment.events {
            match dag.insert(event, *seq) {
                Ok(_) => events += 1,
                Err(error) => problems.push(format!("archived stream sequence {seq}: {error}")),
            }
        }
        chain.push((manifest_cid, manifest));
        bar.inc(info.bytes);
    }
    bar.finish_and_clear();
    if let Err(error) = check_chain(&chain) {
        problems.push(format!("the archive's manifest chain: {error}"));
    }
    if chain.last().map(|(_, m)| m.last_seq) < Some(through_seq) {
        problems.push(format!("the archive ends before stream sequence {through_seq}, where hot starts"));
    }
    Ok((dag, events, problems))
}
