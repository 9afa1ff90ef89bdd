//! Exporting: events (everything, some aggregates, or a time range) and the
//! objects they link, to a CARv1 file whose root is the export manifest.
//!
//! An archive is self-contained: with every selected event come all the
//! events it descends from (its `prev` chain and its parents, transitively),
//! so it imports into an empty store and every link in it can be walked.
//! Blocks are written in stream order, which is a topological order, as
//! they are read: events one at a time, objects streamed from the object
//! store. The manifest (known only at the end) is the first block, so the
//! events and objects go to a temporary file first. The CAR appears at its
//! path only when complete.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use cim_cid::{AggregateKey, Cid, DAG_CBOR, Ipld, RAW, Timestamp};
use cim_store::StartAt;
use futures::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::Stores;
use crate::car::{write_block, write_block_start, write_header};
use crate::error::{Error, Result};
use crate::manifest::{EXPORT_FORMAT, Head, Manifest, NameHead, Selection, links};
use crate::progress::{Phase, Progress};

/// What to export. The default, nothing narrowed, is the whole store: every
/// event, every object and every name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSelection {
    /// Only these aggregates, with everything their events descend from.
    pub aggregates: Vec<AggregateKey>,
    /// Only events with a timestamp at or after this time (and what they
    /// descend from).
    pub since: Option<Timestamp>,
    /// Only events with a timestamp before this time.
    pub until: Option<Timestamp>,
}

impl ExportSelection {
    /// Whether this selects the whole store.
    pub fn is_everything(&self) -> bool {
        self.aggregates.is_empty() && self.since.is_none() && self.until.is_none()
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The CAR file.
    pub path: PathBuf,
    /// The root: the manifest's CID.
    pub root: Cid,
    /// Event blocks.
    pub events: u64,
    /// Object blocks.
    pub objects: u64,
    /// Size of the file.
    pub bytes: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// Links from payloads to objects the store does not hold (not exported).
    pub missing_objects: Vec<Cid>,
}

/// Writes the archive of the selected events to `path`, replacing the file
/// only once the archive is complete.
pub async fn export(
    stores: Stores<'_>,
    selection: &ExportSelection,
    path: &Path,
    progress: &dyn Progress,
) -> Result<Exported> {
    let everything = selection.is_everything();
    let selected = if everything { None } else { Some(select(stores, selection).await?) };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let body_file = tempfile::tempfile_in(dir)
        .map_err(Error::io(format!("cannot create a temporary file in {}", dir.display())))?;
    let mut body = BufWriter::new(tokio::fs::File::from_std(body_file));
    let written = || Error::io("writing the archive");

    // Events, in stream order.
    let total = stores.events.log_state().await?.events;
    progress.start(Phase::ExportEvents, total);
    let mut events = stores.events.read_log(StartAt::Beginning).await?;
    let mut heads: BTreeMap<String, (u64, Cid)> = BTreeMap::new();
    let mut linked: HashSet<Cid> = HashSet::new();
    let mut found = Vec::new();
    let mut count = 0;
    while let Some(item) = events.next().await {
        let stored = item?;
        progress.advance(Phase::ExportEvents, 1);
        if selected.as_ref().is_some_and(|set| !set.contains(&stored.event.cid)) {
            continue;
        }
        let (cid, bytes) = stored.event.envelope.encode()?;
        if cid != stored.event.cid {
            return Err(cim_cid::Error::CidMismatch { expected: stored.event.cid, actual: cid }.into());
        }
        write_block(&mut body, &cid, &bytes).await.map_err(written())?;
        let envelope = &stored.event.envelope;
        heads.insert(envelope.aggregate().to_string(), (envelope.version(), cid));
        links(envelope.payload(), &mut found);
        linked.extend(found.drain(..));
        count += 1;
    }
    progress.finish(Phase::ExportEvents);

    // Objects: all of them, or those the events link (and what they link).
    let (mut objects, missing) = if everything {
        (stores.objects.list().await?.into_iter().map(|o| o.cid).collect(), Vec::new())
    } else {
        linked_objects(stores, linked.into_iter().collect()).await?
    };
    objects.sort_by_key(ToString::to_string);
    objects.dedup();
    let sizes = futures::future::try_join_all(objects.iter().map(|cid| stores.objects.stat(cid))).await?;
    progress.start(Phase::ExportObjects, sizes.iter().flatten().map(|m| m.size).sum());
    for (cid, meta) in objects.iter().zip(&sizes) {
        let meta = meta.as_ref().ok_or(Error::ObjectVanished(*cid))?;
        write_block_start(&mut body, cid, meta.size).await.map_err(written())?;
        stores.objects.copy_to(cid, &mut body).await?;
        progress.advance(Phase::ExportObjects, meta.size);
    }
    progress.finish(Phase::ExportObjects);
    body.flush().await.map_err(written())?;

    let mut names = Vec::new();
    if everything {
        for name in stores.named.names().await? {
            if let Some(head) = stores.named.head(&name).await? {
                names.push(NameHead { name, head: head.cid });
            }
        }
        names.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        created_us: Timestamp::now(),
        namespace: stores.events.config().namespace.clone(),
        selection: Selection {
            aggregates: (!selection.aggregates.is_empty())
                .then(|| selection.aggregates.iter().map(ToString::to_string).collect()),
            since_us: selection.since,
            until_us: selection.until,
        },
        events: count,
        heads: heads.into_iter().map(|(aggregate, (version, head))| Head { aggregate, version, head }).collect(),
        objects: objects.clone(),
        names,
    };
    let (root, manifest_bytes) = manifest.encode()?;

    // Header and manifest, then the body, into a file renamed into place.
    let car = tempfile::NamedTempFile::new_in(dir)
        .map_err(Error::io(format!("cannot create a file in {}", dir.display())))?;
    let file = car.reopen().map_err(Error::io(format!("cannot open {}", car.path().display())))?;
    let mut file = BufWriter::new(tokio::fs::File::from_std(file));
    write_header(&mut file, &[root]).await.map_err(written())?;
    write_block(&mut file, &root, &manifest_bytes).await.map_err(written())?;
    let mut body = body.into_inner();
    body.rewind().await.map_err(written())?;
    tokio::io::copy(&mut body, &mut file).await.map_err(written())?;
    file.flush().await.map_err(written())?;
    file.get_ref().sync_all().await.map_err(written())?;
    car.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()))(e.error))?;
    let bytes = std::fs::metadata(path).map_err(Error::io(format!("cannot read {}", path.display())))?.len();
    Ok(Exported {
        path: path.to_owned(),
        root,
        events: count,
        objects: objects.len() as u64,
        bytes,
        manifest,
        missing_objects: missing,
    })
}

/// The selected events and everything they descend from.
async fn select(stores: Stores<'_>, selection: &ExportSelection) -> Result<HashSet<Cid>> {
    let ExportSelection { aggregates, since, until } = selection;
    let live = stores.events.dag().await?;
    live.catch_up().await?;
    let mut seeds = Vec::new();
    if since.is_none() && until.is_none() {
        let dag = live.read();
        for aggregate in aggregates {
            let head = dag.aggregate_head(aggregate).ok_or_else(|| Error::AggregateNotFound(aggregate.clone()))?;
            seeds.push(head.cid);
        }
    } else {
        let mut events = stores.events.read_log(StartAt::Beginning).await?;
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
async fn linked_objects(stores: Stores<'_>, mut pending: Vec<Cid>) -> Result<(Vec<Cid>, Vec<Cid>)> {
    let live = stores.events.dag().await?;
    let mut seen = HashSet::new();
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    while let Some(cid) = pending.pop() {
        if !seen.insert(cid) || ![RAW, DAG_CBOR].contains(&cid.codec()) || live.contains(&cid) {
            continue;
        }
        if stores.objects.stat(&cid).await?.is_none() {
            missing.push(cid);
            continue;
        }
        if cid.codec() == DAG_CBOR {
            let value: Ipld = stores.objects.get_ipld(&cid).await?;
            links(&value, &mut pending);
        }
        found.push(cid);
    }
    missing.sort_by_key(ToString::to_string);
    Ok((found, missing))
}
