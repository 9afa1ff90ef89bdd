//! `cim export`: events (everything, some aggregates, or a time range) and
//! the objects they link, to a CARv1 file whose root is the export manifest.
//!
//! An archive is self-contained: with every selected event come all the
//! events it descends from (its `prev` chain and its parents, transitively),
//! so it imports into an empty store and every link in it can be walked.
//! Blocks are written in stream order, which is a topological order; the
//! manifest (known only at the end) is the first block, so the events go to
//! a temporary file first. The CAR appears at its path only when complete.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cim_cid::{AggregateKey, Cid, DAG_CBOR, Ipld, RAW, Timestamp};
use cim_store::StartAt;
use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::args;
use crate::car::{write_block, write_block_start, write_header};
use crate::exit::not_found;
use crate::manifest::{EXPORT_FORMAT, Head, Manifest, NameHead, Selection, links};
use crate::output::Output;
use crate::session::Session;

/// Arguments of `cim export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The CAR file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Only this aggregate, `type/id` (repeatable), with everything its events descend from.
    #[arg(long = "aggregate", value_name = "AGGREGATE")]
    aggregates: Vec<String>,
    /// Only events with a timestamp at or after this RFC 3339 time (and what they descend from).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events with a timestamp before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// The CAR file.
    pub path: PathBuf,
    /// The root: the manifest's CID.
    pub root: String,
    /// Event blocks.
    pub events: u64,
    /// Object blocks.
    pub objects: u64,
    /// Size of the file.
    pub bytes: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// Links from payloads to objects the store does not hold (not exported).
    pub missing_objects: Vec<String>,
}

/// Runs `cim export`.
pub async fn run(session: &Session, args: ExportArgs, out: &Output) -> anyhow::Result<Exported> {
    let aggregates = args.aggregates.iter().map(|a| args::aggregate(a)).collect::<anyhow::Result<Vec<_>>>()?;
    let since = args.since.as_deref().map(args::time).transpose()?;
    let until = args.until.as_deref().map(args::time).transpose()?;
    let exported = export(session, &aggregates, since, until, &args.output, out).await?;
    out.emit(&exported, || summary(&exported));
    Ok(exported)
}

/// One line per fact, for people.
pub fn summary(exported: &Exported) -> String {
    let mut text = format!(
        "wrote {} ({} bytes): {} events in {} aggregates, {} objects, {} names\nroot (export manifest): {}",
        exported.path.display(),
        exported.bytes,
        exported.events,
        exported.manifest.heads.len(),
        exported.objects,
        exported.manifest.names.len(),
        exported.root
    );
    if !exported.missing_objects.is_empty() {
        text.push_str(&format!("\nnot in the store, so not exported: {}", exported.missing_objects.join(", ")));
    }
    text
}

/// Writes the archive of the selected events to `path`.
pub async fn export(
    session: &Session,
    aggregates: &[AggregateKey],
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    path: &Path,
    out: &Output,
) -> anyhow::Result<Exported> {
    let everything = aggregates.is_empty() && since.is_none() && until.is_none();
    let selected = if everything { None } else { Some(select(session, aggregates, since, until).await?) };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let body_file =
        tempfile::tempfile_in(dir).with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut body = BufWriter::new(tokio::fs::File::from_std(body_file));

    // Events, in stream order.
    let total = session.events.log_state().await?.events;
    let bar = out.progress(total, "events");
    let mut events = session.events.read_log(StartAt::Beginning).await?;
    let mut heads: BTreeMap<String, (u64, Cid)> = BTreeMap::new();
    let mut linked = Vec::new();
    let mut count = 0;
    while let Some(item) = events.next().await {
        let stored = item.context("reading the event log (run `cim verify` to find corrupt events)")?;
        bar.inc(1);
        if selected.as_ref().is_some_and(|set| !set.contains(&stored.event.cid)) {
            continue;
        }
        let (cid, bytes) = stored.event.envelope.encode()?;
        anyhow::ensure!(cid == stored.event.cid, "event {} re-encodes to {cid}", stored.event.cid);
        write_block(&mut body, &cid, &bytes).await.context("writing the archive")?;
        let envelope = &stored.event.envelope;
        heads.insert(envelope.aggregate().to_string(), (envelope.version(), cid));
        links(envelope.payload(), &mut linked);
        count += 1;
    }
    bar.finish_and_clear();

    // Objects: all of them, or those the events link (and what they link).
    let (objects, missing) = if everything {
        (session.objects.list().await?.into_iter().map(|o| o.cid).collect(), Vec::new())
    } else {
        linked_objects(session, linked).await?
    };
    let mut objects: Vec<Cid> = objects;
    objects.sort_by_key(ToString::to_string);
    objects.dedup();
    let sizes = futures::future::try_join_all(objects.iter().map(|cid| session.objects.stat(cid))).await?;
    let bar = out.progress_bytes(sizes.iter().flatten().map(|m| m.size).sum(), "objects");
    for (cid, meta) in objects.iter().zip(&sizes) {
        let meta = meta.as_ref().ok_or_else(|| not_found(format!("object {cid} vanished during the export")))?;
        write_block_start(&mut body, cid, meta.size).await?;
        session.objects.copy_to(cid, &mut body).await.with_context(|| format!("exporting object {cid}"))?;
        bar.inc(meta.size);
    }
    bar.finish_and_clear();
    body.flush().await?;

    let mut names = Vec::new();
    if everything {
        for name in session.named.names().await? {
            if let Some(head) = session.named.head(&name).await? {
                names.push(NameHead { name, head: head.cid });
            }
        }
        names.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        created_us: Timestamp::now(),
        namespace: session.events.config().namespace.clone(),
        selection: Selection {
            aggregates: (!aggregates.is_empty()).then(|| aggregates.iter().map(ToString::to_string).collect()),
            since_us: since,
            until_us: until,
        },
        events: count,
        heads: heads.into_iter().map(|(aggregate, (version, head))| Head { aggregate, version, head }).collect(),
        objects: objects.clone(),
        names,
    };
    let (root, manifest_bytes) = manifest.encode()?;

    // Header and manifest, then the body, into a file renamed into place.
    let car =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut file = BufWriter::new(tokio::fs::File::from_std(car.reopen()?));
    write_header(&mut file, &[root]).await?;
    write_block(&mut file, &root, &manifest_bytes).await?;
    let mut body = body.into_inner();
    body.rewind().await?;
    tokio::io::copy(&mut body, &mut file).await.context("writing the archive")?;
    file.flush().await?;
    file.get_ref().sync_all().await?;
    car.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(Exported {
        path: path.to_owned(),
        root: root.to_string(),
        events: count,
        objects: objects.len() as u64,
        bytes,
        manifest,
        missing_objects: missing.iter().map(ToString::to_string).collect(),
    })
}

/// The selected events and everything they descend from.
async fn select(
    session: &Session,
    aggregates: &[AggregateKey],
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> anyhow::Result<HashSet<Cid>> {
    let live = session.events.dag().await?;
    live.catch_up().await?;
    let mut seeds = Vec::new();
    if since.is_none() && until.is_none() {
        let dag = live.read();
        for aggregate in aggregates {
            let head = dag
                .aggregate_head(aggregate)
                .ok_or_else(|| not_found(format!("aggregate {aggregate} has no events")))?;
            seeds.push(head.cid);
        }
    } else {
        let mut events = session.events.read_log(StartAt::Beginning).await?;
        while let Some(item) = events.next().await {
            let stored = item?;
            let envelope = &stored.event.envelope;
            let time = envelope.timestamp();
            if (aggregates.is_empty() || aggregates.contains(&envelope.aggregate()))
                && since.is_none_or(|since| time >= since)
                && until.is_none_or(|until| time < until)
            {
                seeds.push(stored.event.cid);
            }
        }
    }
    // Breadth-first through direct links with one visited set, so shared
    // history is walked once however many seeds reach it.
    let dag = live.read();
    let mut selected: HashSet<Cid> = seeds.iter().copied().collect();
    while let Some(cid) = seeds.pop() {
        for older in dag.ancestors(&cid, Some(1))? {
            if selected.insert(older.cid) {
                seeds.push(older.cid);
            }
        }
    }
    Ok(selected)
}

/// Objects linked from payloads, and from dag-cbor objects, transitively;
/// also the linked CIDs the store does not hold.
async fn linked_objects(session: &Session, mut pending: Vec<Cid>) -> anyhow::Result<(Vec<Cid>, Vec<Cid>)> {
    let live = session.events.dag().await?;
    let mut seen = HashSet::new();
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    while let Some(cid) = pending.pop() {
        if !seen.insert(cid) || ![RAW, DAG_CBOR].contains(&cid.codec()) || live.contains(&cid) {
            continue;
        }
        if session.objects.stat(&cid).await?.is_none() {
            missing.push(cid);
            continue;
        }
        if cid.codec() == DAG_CBOR {
            let value: Ipld = session.objects.get_ipld(&cid).await?;
            links(&value, &mut pending);
        }
        found.push(cid);
    }
    Ok((found, missing))
}
