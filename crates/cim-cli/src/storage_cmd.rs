//! `cim storage …` and `cim restore`: the Storage Manager through its
//! client (`cim_storage_api::Client`): status, seal, scrub, gc, retention,
//! segments, and restoring a host from the tiers.
//!
//! `cim restore` goes through the manager's API rather than reading S3
//! itself: the tiers' credentials stay with the manager (the CLI never
//! holds S3 secrets, and needs no S3 client), provider quirks live in one
//! place, and the manager serves the ranges the CLI asks for. Nothing is
//! trusted on the way: the CLI verifies every manifest, segment, event,
//! chain and checkpoint itself before it writes anything, and every object
//! against its CID as it writes it (an object whose bytes do not hash to
//! its CID is never published under it). A fresh host therefore runs the
//! manager (its configuration names the tiers) before `cim restore`; the
//! manager sees the archive ahead of hot and pauses sealing, retention and
//! collection until hot has caught up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use cim_archive::segment::{NamesSnapshot, SegmentManifest, check_chain, read_segment};
use cim_cid::{ChainVerifier, Cid};
use cim_storage_api::{ItemKind, ObjectQuery, ReadRange, SegmentInfo, SegmentQuery, Status, TierName};
use cim_store::{Checkpoint, MAX_BATCH_EVENTS};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde::Serialize;

use crate::args;
use crate::exit::{Exit, problems};
use crate::output::Output;
use crate::services::Remote;
use crate::session::Session;

/// `cim storage …`.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Seconds to wait for the manager's reply (seals and scrubs of large archives take long).
    #[arg(long, global = true, default_value_t = 3600, value_name = "SECS")]
    timeout: u64,
    #[command(subcommand)]
    command: StorageCommand,
}

/// The storage commands.
#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Usage per tier, lag of each tier behind hot, the last scrub.
    Status,
    /// Seal the event stream into segments and copy objects down now.
    Seal {
        /// Seal every event stored so far, below the policy's thresholds too.
        #[arg(long)]
        force: bool,
    },
    /// Re-hash every item on every tier; repair what is missing or corrupt from a good copy.
    Scrub {
        /// Report only.
        #[arg(long)]
        no_repair: bool,
    },
    /// Sweep unreferenced objects whose grace period has passed.
    Gc {
        /// List what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply the retention policy to the hot tier now.
    Retention {
        /// List what would be dropped; drop nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The sealed segments, oldest first.
    Segments,
    /// Bring this host's store back from the tiers (see `cim restore`).
    Restore(RestoreArgs),
}

/// `cim restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Directory for the segments while they are verified [default: the system's temporary directory].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Objects restored at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// Seconds to wait for each of the manager's replies.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    request_timeout: u64,
}

/// Runs `cim storage …`.
pub async fn run(session: &Session, args: StorageArgs, out: &Output) -> anyhow::Result<Exit> {
    let remote = Remote::storage(session, Duration::from_secs(args.timeout.max(1)));
    match args.command {
        StorageCommand::Status => {
            let status = remote.check(remote.client.status().await, |_| None)?;
            out.emit(&status, || status_text(&status));
        }
        StorageCommand::Seal { force } => {
            let report = remote.check(remote.client.seal(force).await, |_| None)?;
            out.emit(&report, || {
                let mut text = format!(
                    "sealed {} segments (through stream sequence {}); copied {} objects ({} bytes), {} already there",
                    report.sealed.len(),
                    report.sealed_through_seq,
                    report.objects_copied,
                    report.object_bytes_copied,
                    report.already_present
                );
                for segment in &report.sealed {
                    text.push_str(&format!("\n  {}", segment_line(segment)));
                }
                text
            });
        }
        StorageCommand::Scrub { no_repair } => {
            let report = remote.check(remote.client.scrub(!no_repair).await, |_| None)?;
            out.emit(&report, || {
                let mut text = format!(
                    "checked {} items ({} bytes): {} findings, {} repaired, {} not",
                    report.items_checked,
                    report.bytes_checked,
                    report.findings.len(),
                    report.repaired,
                    report.unrepaired
                );
                for f in &report.findings {
                    let fix = match (&f.repaired, &f.repaired_from) {
                        (true, Some(from)) => format!("repaired from {from}"),
                        _ => "not repaired".to_owned(),
                    };
                    text.push_str(&format!(
                        "\n  {} {} {} ({}): {} {}; {fix}",
                        f.tier, f.kind, f.key, f.cid, f.problem, f.detail
                    ));
                }
                text
            });
            if report.unrepaired > 0 {
                return Ok(Exit::Problems);
            }
        }
        StorageCommand::Gc { dry_run } => {
            let report = remote.check(remote.client.gc(dry_run).await, |_| None)?;
            out.emit(&report, || {
                let mut text = format!(
                    "{} objects referenced, {} unreferenced; swept {} ({} bytes){}",
                    report.referenced,
                    report.unreferenced.len(),
                    report.swept,
                    report.swept_bytes,
                    if report.dry_run { " (dry run)" } else { "" }
                );
                for item in &report.unreferenced {
                    text.push_str(&format!(
                        "\n  {} {} bytes{}",
                        item.cid,
                        item.size,
                        if item.due { ", past its grace period" } else { "" }
                    ));
                }
                text
            });
        }
        StorageCommand::Retention { dry_run } => {
            let report = remote.check(remote.client.retention(dry_run).await, |_| None)?;
            out.emit(&report, || {
                format!(
                    "{}events through stream sequence {} dropped from hot ({} now); {} objects ({} bytes){}",
                    if report.dry_run { "would drop: " } else { "" },
                    report.events_dropped_through_seq,
                    report.events_dropped,
                    report.objects_dropped.len(),
                    report.object_bytes_dropped,
                    report
                        .checkpoint
                        .as_ref()
                        .map(|c| format!("; hot rebuilds from checkpoint {c}"))
                        .unwrap_or_default()
                )
            });
        }
        StorageCommand::Segments => {
            let list = remote.check(remote.client.segments(&SegmentQuery::default()).await, |_| None)?;
            out.emit(&list, || list.segments.iter().map(segment_line).collect::<Vec<_>>().join("\n"));
        }
        StorageCommand::Restore(args) => return restore(session, args, out).await,
    }
    Ok(Exit::Ok)
}

fn segment_line(s: &SegmentInfo) -> String {
    format!(
        "#{} sequences {}..={} ({} events, {} bytes) segment {} manifest {}",
        s.index, s.first_seq, s.last_seq, s.events, s.bytes, s.segment, s.manifest
    )
}

fn status_text(status: &Status) -> String {
    let mut text = format!(
        "hot: stream sequences {}..={} ({} events, {} bytes), {} objects ({} bytes){}\n",
        status.hot.first_seq,
        status.hot.last_seq,
        status.hot.events,
        status.hot.event_bytes,
        status.hot.objects,
        status.hot.object_bytes,
        if status.hot.dropped_through_seq > 0 {
            format!("; events through {} dropped to the tiers", status.hot.dropped_through_seq)
        } else {
            String::new()
        }
    );
    text.push_str(&format!(
        "archive: {} segments sealed through stream sequence {}{}\n",
        status.segments,
        status.sealed_through_seq,
        status.manifest_head.as_ref().map(|m| format!(", newest manifest {m}")).unwrap_or_default()
    ));
    for tier in &status.tiers {
        text.push_str(&format!(
            "{}: {} {}/{}{} — {} segments ({} bytes), {} objects ({} bytes); lag {} events, {} objects{}\n",
            tier.name,
            tier.endpoint,
            tier.bucket,
            tier.prefix,
            if tier.reachable { "" } else { " UNREACHABLE" },
            tier.segments,
            tier.segment_bytes,
            tier.objects,
            tier.object_bytes,
            tier.lag_events,
            tier.lag_objects,
            tier.last_error.as_ref().map(|e| format!("\n  last error: {e}")).unwrap_or_default()
        ));
    }
    match &status.last_scrub {
        Some(scrub) => text.push_str(&format!(
            "last scrub: {} items, {} findings ({} repaired, {} not), finished at {}\n",
            scrub.items_checked,
            scrub.findings.len(),
            scrub.repaired,
            scrub.unrepaired,
            cim_cid::Timestamp::from_unix_micros(scrub.finished_us)
        )),
        None => text.push_str("last scrub: never\n"),
    }
    if status.restore_needed {
        text.push_str("hot is behind the archive: run `cim restore`\n");
    }
    if !status.busy.is_empty() {
        text.push_str(&format!("running now: {}\n", status.busy.join(", ")));
    }
    text.trim_end().to_owned()
}

/// What a restore did.
#[derive(Debug, Default, Serialize)]
pub struct Restored {
    /// Segments verified (all of the archive's).
    pub segments: u64,
    /// Events in them.
    pub events: u64,
    /// Events written now (the others were already in hot).
    pub events_written: u64,
    /// Aggregates.
    pub aggregates: u64,
    /// Objects the tiers hold.
    pub objects: u64,
    /// Objects written now.
    pub objects_written: u64,
    /// Bytes of objects written now.
    pub object_bytes_written: u64,
    /// Names pointed at their records.
    pub names: u64,
    /// The archive's newest manifest.
    pub manifest_head: Option<String>,
    /// Seconds it took.
    pub seconds: f64,
}

/// Runs `cim restore`: verifies the whole archive, then writes it.
pub async fn restore(session: &Session, args: RestoreArgs, out: &Output) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let request_timeout = Duration::from_secs(args.request_timeout.max(1));
    let remote = Remote::storage(session, request_timeout);
    let client = &remote.client;
    let segments = remote.check(client.segments(&SegmentQuery::default()).await, |_| None)?.segments;
    let work = tempfile::Builder::new()
        .prefix("cim-restore-")
        .tempdir_in(args.work_dir.clone().unwrap_or_else(std::env::temp_dir))
        .context("creating the restore's work directory")?;
    let mut summary = Restored { segments: segments.len() as u64, ..Restored::default() };

    // 1. Verify everything before writing anything.
    let log = session.events.log_state().await?;
    let archive_last = segments.last().map_or(0, |s| s.last_seq);
    if log.last_seq > archive_last {
        return Err(problems(format!(
            "this store already holds {} events, more than the archive's {archive_last}: restore into an empty store",
            log.last_seq
        )));
    }
    let bar = out.progress_bytes(segments.iter().map(|s| s.bytes).sum(), "verifying");
    let mut chain = Vec::with_capacity(segments.len());
    let mut verifier = ChainVerifier::new();
    let mut files = Vec::with_capacity(segments.len());
    for info in &segments {
        let manifest_cid = args::cid(&info.manifest)?;
        let bytes = crate::tiers::read_item(session, ItemKind::Manifests, &manifest_cid).await?;
        let manifest = SegmentManifest::decode(&manifest_cid, &bytes)?;
        let bytes = crate::tiers::read_item(session, ItemKind::Segments, &manifest.segment).await?;
        let segment = read_segment(&bytes, Some(&manifest.segment)).await?;
        if segment.header.first_seq != manifest.first_seq || segment.header.last_seq != manifest.last_seq {
            return Err(problems(format!(
                "segment {} does not hold the sequences its manifest {manifest_cid} says",
                manifest.segment
            )));
        }
        for (seq, event) in &segment.events {
            verifier.push(event).map_err(|e| problems(format!("the archive's event at stream sequence {seq}: {e}")))?;
        }
        summary.events += segment.events.len() as u64;
        let path = work.path().join(format!("{:012}.car", manifest.index));
        tokio::fs::write(&path, &bytes).await.context("keeping a verified segment")?;
        files.push((manifest.segment, manifest.first_seq, path));
        chain.push((manifest_cid, manifest));
        bar.inc(info.bytes);
    }
    bar.finish_and_clear();
    check_chain(&chain).map_err(|e| problems(format!("the archive's manifest chain: {e}")))?;
    summary.aggregates = verifier.heads().count() as u64;
    summary.manifest_head = chain.last().map(|(cid, _)| cid.to_string());
    let mut names = NamesSnapshot::default();
    if let Some((_, last)) = chain.last() {
        let bytes = crate::tiers::read_item(session, ItemKind::Objects, &last.checkpoint).await?;
        let checkpoint = Checkpoint::decode(&last.checkpoint, &bytes)?;
        let heads: BTreeMap<String, (u64, Cid)> =
            verifier.heads().map(|(aggregate, version, cid)| (aggregate.to_owned(), (version, *cid))).collect();
        let claimed: BTreeMap<String, (u64, Cid)> =
            checkpoint.heads.iter().map(|h| (h.aggregate.clone(), (h.version, h.head))).collect();
        if heads != claimed || checkpoint.through_seq != last.last_seq {
            return Err(problems(format!(
                "checkpoint {} does not match the heads of the archive's events",
                last.checkpoint
            )));
        }
        if let Some(cid) = last.names {
            let bytes = crate::tiers::read_item(session, ItemKind::Objects, &cid).await?;
            names = NamesSnapshot::decode(&cid, &bytes)?;
        }
    }
    if log.last_seq > 0 {
        // A restore that stopped part way: hot must be the archive's start.
        let segment = files.iter().rev().find(|(_, first, _)| *first <= log.last_seq).context("the store's events")?;
        let bytes = tokio::fs::read(&segment.2).await?;
        let read = read_segment(&bytes, Some(&segment.0)).await?;
        let expected = read.events.iter().find(|(seq, _)| *seq == log.last_seq).map(|(_, e)| e.cid);
        let mut stored =
            session.events.read_log_until(cim_store::StartAt::Sequence(log.last_seq), log.last_seq).await?;
        let actual = stored.next().await.transpose()?.map(|s| s.event.cid);
        if expected.is_none() || expected != actual {
            return Err(problems(format!(
                "this store's event at stream sequence {} is not the archive's: restore into an empty store",
                log.last_seq
            )));
        }
    }
    let mut objects = Vec::new();
    let mut page = ObjectQuery::default();
    loop {
        let found = remote.check(client.objects(&page).await, |_| None)?;
        objects.extend(found.objects.into_iter().map(|o| (o.cid, o.size, o.tiers)));
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    summary.objects = objects.len() as u64;
    let listed: std::collections::HashSet<&str> = objects.iter().map(|(cid, _, _)| cid.as_str()).collect();
    for name in &names.names {
        if !listed.contains(name.head.to_string().as_str()) {
            return Err(problems(format!("name {:?} points at record {}, which no tier holds", name.name, name.head)));
        }
    }
    out.note(format!(
        "verified {} segments ({} events, {} aggregates) and the manifest chain; restoring {} objects and {} names",
        summary.segments,
        summary.events,
        summary.aggregates,
        summary.objects,
        names.names.len()
    ));

    // 2. Objects, each checked against its CID as it is written.
    let bar = out.progress_bytes(objects.iter().map(|(_, size, _)| size).sum(), "objects");
    let results: Vec<anyhow::Result<Option<u64>>> = futures::stream::iter(objects.iter())
        .map(|(cid, size, tiers)| {
            let bar = bar.clone();
            async move {
                let cid = args::cid(cid)?;
                if session.objects.stat(&cid).await?.is_some() {
                    bar.inc(*size);
                    return Ok(None);
                }
                let mut last = None;
                for tier in tiers {
                    match restore_object(session, client, &cid, *tier, request_timeout).await {
                        Ok(written) => {
                            bar.inc(*size);
                            return Ok(Some(written));
                        }
                        Err(error) => last = Some(error),
                    }
                }
                Err(last.unwrap_or_else(|| anyhow::anyhow!("no tier holds object {cid}")))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    for result in results {
        if let Some(written) = result? {
            summary.objects_written += 1;
            summary.object_bytes_written += written;
        }
    }

    // 3. Events, at their stream sequences, from the verified segments.
    let bar = out.progress(summary.events, "events");
    for (cid, _, path) in &files {
        let bytes = tokio::fs::read(path).await?;
        let segment = read_segment(&bytes, Some(cid)).await?;
        for batch in segment.events.chunks(MAX_BATCH_EVENTS) {
            let first_seq = batch[0].0;
            if batch.last().is_some_and(|(seq, _)| *seq <= log.last_seq) {
                bar.inc(batch.len() as u64);
                continue;
            }
            let events: Vec<_> = batch.iter().map(|(_, e)| e.clone()).collect();
            if session
                .events
                .restore_at(first_seq, &events)
                .await
                .with_context(|| format!("restoring stream sequences from {first_seq}"))?
            {
                summary.events_written += events.len() as u64;
            }
            bar.inc(batch.len() as u64);
        }
    }
    bar.finish_and_clear();

    // 4. Names.
    for name in &names.names {
        session
            .named
            .adopt(&name.name, name.head)
            .await
            .with_context(|| format!("pointing name {:?} at {}", name.name, name.head))?;
        summary.names += 1;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    out.emit(&summary, || {
        format!(
            "restored {} of {} events ({} segments, {} aggregates), {} of {} objects ({} bytes), {} names in {:.1}s; \
             run `cim verify` to check the restored store",
            summary.events_written,
            summary.events,
            summary.segments,
            summary.aggregates,
            summary.objects_written,
            summary.objects,
            summary.object_bytes_written,
            summary.names,
            summary.seconds
        )
    });
    Ok(Exit::Ok)
}

/// Streams one object from `tier` into the hot object store, which refuses
/// to publish it unless its bytes hash to `cid`. Returns its size.
///
/// The fetching half owns the channel's only sender, so the reading half
/// sees the end of the object as soon as the last range has been passed on
/// (the hot store reads whole chunks and waits for that end to publish the
/// last, short one). Every wait is bounded: each range is a request with
/// `idle` as its timeout, and the reading half gives up when no bytes
/// arrive for `idle` plus a margin, so a stall is an error naming the
/// object, never a hang.
async fn restore_object(
    session: &Session,
    client: &cim_storage_api::Client,
    cid: &Cid,
    tier: TierName,
    idle: Duration,
) -> anyhow::Result<u64> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let fetch = async move {
        let sender = sender;
        let mut range = ReadRange {
            kind: ItemKind::Objects,
            cid: cid.to_string(),
            offset: 0,
            len: cim_storage_api::MAX_READ_LEN,
            tier: Some(tier),
        };
        loop {
            let item = match client.read(&range).await {
                Ok(item) => item,
                Err(error) => {
                    let _ = sender.send(Err(std::io::Error::other(error.to_string()))).await;
                    return;
                }
            };
            if item.bytes.is_empty() && range.offset < item.size {
                let _ = sender
                    .send(Err(std::io::Error::other(format!(
                        "the manager returned no bytes at offset {} of {}",
                        range.offset, item.size
                    ))))
                    .await;
                return;
            }
            range.offset += item.bytes.len() as u64;
            let done = range.offset >= item.size;
            if sender.send(Ok(item.bytes)).await.is_err() || done {
                // Returning drops the sender: the reader sees the end.
                return;
            }
        }
    };
    let reader = tokio_util::io::StreamReader::new(bounded_stream(receiver, idle + IDLE_MARGIN));
    let put = session.objects.put_expecting(reader, cid);
    let ((), stored) = tokio::join!(fetch, put);
    let meta = stored.with_context(|| format!("restoring object {cid} from the {tier} tier"))?;
    Ok(meta.size)
}

/// Added to the request timeout for the reading half's wait for bytes, so
/// that a request's own timeout (the more specific error) comes first.
const IDLE_MARGIN: Duration = Duration::from_secs(5);

/// The receiver as a stream that ends when every sender is gone, and
/// yields a timeout error (then ends) when nothing arrives for `idle`.
fn bounded_stream(
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    idle: Duration,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin {
    Box::pin(futures::stream::unfold(Some(receiver), move |receiver| async move {
        let mut receiver = receiver?;
        match tokio::time::timeout(idle, receiver.recv()).await {
            Ok(Some(item)) => Some((item, Some(receiver))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no bytes from the storage manager for {}s", idle.as_secs()),
                )),
                None,
            )),
        }
    }))
}
