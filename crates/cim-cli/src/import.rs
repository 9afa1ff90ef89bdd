//! `cim import`: a CAR into the store, verified completely before anything
//! is written.
//!
//! Checking, in order, with nothing written until all of it passes:
//! 1. every block's bytes against its CID (raw blocks are hashed while
//!    streaming, in bounded memory), and the file's structure, so a flipped
//!    byte or a file cut short is named with its offset;
//! 2. the manifest (the root) against the blocks: every object and head it
//!    lists is present and the event count matches, so a CAR cut short at a
//!    block boundary is caught too;
//! 3. every event as a valid envelope, and every chain combined with the
//!    target store's heads: events the store already holds must be the same
//!    events (else it is a conflict: importing would fork a chain), the rest
//!    must continue the store's chains, and every parent must be in the
//!    archive or the store.
//!
//! Then objects are written (raw ones streamed from the file), and events
//! through `EventStore::import` in an order that puts every parent first,
//! batched per aggregate; the server checks each batch again. Importing the
//! same archive twice writes nothing the second time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cim_cid::{AggregateKey, ChainVerifier, Cid, Event, Ipld, RAW};
use cim_store::{AggregateQuery, MAX_BATCH_EVENTS};
use clap::Args;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::car::{BlockStart, CarReader};
use crate::exit::{Exit, conflict, problems};
use crate::manifest::{Manifest, NameHead};
use crate::output::Output;
use crate::session::Session;

/// Arguments of `cim import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CAR file (as written by `cim export`).
    file: PathBuf,
    /// Verify everything against the store, then stop without writing.
    #[arg(long)]
    dry_run: bool,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    /// The archive.
    pub file: PathBuf,
    /// Its root (the manifest's CID).
    pub root: String,
    /// Events in the archive.
    pub events: u64,
    /// Events written.
    pub events_written: u64,
    /// Events the store already held.
    pub events_present: u64,
    /// Objects in the archive.
    pub objects: u64,
    /// Objects written.
    pub objects_written: u64,
    /// Aggregates in the archive.
    pub aggregates: u64,
    /// Names in the manifest, each pointed at its imported version record.
    pub names: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// An object block to write.
#[derive(Debug)]
enum ObjectBlock {
    /// A raw block, streamed from the file.
    Raw(BlockStart),
    /// A dag-cbor object, decoded.
    Ipld(Cid, Ipld),
}

/// Everything checked, ready to write.
#[derive(Debug)]
struct Plan {
    imported: Imported,
    objects: Vec<ObjectBlock>,
    /// Events to write, parents first.
    events: Vec<Event>,
    /// Names to point at their version records, once those are stored.
    names: Vec<NameHead>,
}

/// Runs `cim import`.
pub async fn run(session: &Session, args: ImportArgs, out: &Output) -> anyhow::Result<Exit> {
    let plan = check(session, &args.file, out).await?;
    let imported = if args.dry_run {
        Imported { dry_run: true, ..plan.imported }
    } else {
        write(session, &args.file, plan, out).await?
    };
    out.emit(&imported, || {
        let verb = if imported.dry_run { "verified (dry run, nothing written)" } else { "imported" };
        format!(
            "{verb} {}: root {}\n  events:  {} in {} aggregates, {} written, {} already in the store\n  objects: {}, {} written{}",
            imported.file.display(),
            imported.root,
            imported.events,
            imported.aggregates,
            imported.events_written,
            imported.events_present,
            imported.objects,
            imported.objects_written,
            if imported.names.is_empty() { String::new() } else { format!("\n  names:   {}", imported.names.join(", ")) }
        )
    });
    Ok(Exit::Ok)
}

/// Reads and verifies the archive against the store; writes nothing.
async fn check(session: &Session, path: &Path, out: &Output) -> anyhow::Result<Plan> {
    let refuse = |what: String| problems(format!("refusing {}: {what}; nothing was written", path.display()));
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let file_len = file.metadata()?.len();
    let (mut car, roots) = CarReader::open(BufReader::new(file), file_len).map_err(|e| refuse(e.to_string()))?;
    let [root] = roots[..] else {
        return Err(refuse(format!("it has {} roots; an archive of `cim export` has one, its manifest", roots.len())));
    };

    // 1. Every block against its CID.
    let bar = out.progress_bytes(file_len, "verifying");
    let mut manifest = None;
    let mut raw_blocks: HashMap<Cid, BlockStart> = HashMap::new();
    let mut dag_cbor_blocks: Vec<(Cid, Vec<u8>)> = Vec::new();
    loop {
        let block = match car.next_block() {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(error) => return Err(refuse(error.to_string())),
        };
        let at = format!("block {} at byte {}", block.cid, block.offset);
        if cim_cid::sha256_digest(&block.cid).is_err() {
            return Err(refuse(format!("{at} has a CID cim does not write (CIDv1, dag-cbor or raw, sha2-256 only)")));
        }
        if block.cid.codec() == RAW {
            let digest = car.hash(&block).map_err(|e| refuse(e.to_string()))?;
            let actual = cim_cid::cid_from_digest(RAW, &digest);
            if actual != block.cid {
                return Err(refuse(format!("{at}: its bytes hash to {actual}: the archive was altered or damaged")));
            }
            raw_blocks.insert(block.cid, block);
        } else {
            let bytes = car.read(&block).map_err(|e| refuse(e.to_string()))?;
            cim_cid::verify_block(&block.cid, &bytes)
                .map_err(|e| refuse(format!("{at}: {e}: the archive was altered or damaged")))?;
            if block.cid == root {
                manifest = Some(
                    Manifest::decode(&bytes)
                        .map_err(|e| refuse(format!("its root {root} is not an export manifest: {e:#}")))?,
                );
            } else {
                dag_cbor_blocks.push((block.cid, bytes));
            }
        }
        bar.set_position(block.offset + block.len);
    }
    bar.finish_and_clear();
    let manifest = manifest.ok_or_else(|| refuse(format!("its root block (the manifest {root}) is missing")))?;

    // 2. The blocks against the manifest.
    let listed: HashSet<Cid> = manifest.objects.iter().copied().collect();
    let mut objects = Vec::new();
    let mut events: HashMap<Cid, Event> = HashMap::new();
    for (cid, bytes) in dag_cbor_blocks {
        if listed.contains(&cid) {
            let value: Ipld =
                cim_cid::decode_dag_cbor("IPLD object", &bytes).map_err(|e| refuse(format!("object {cid}: {e}")))?;
            objects.push(ObjectBlock::Ipld(cid, value));
        } else {
            let event = Event::from_block(&cid, &bytes).map_err(|e| {
                refuse(format!("block {cid} is neither an object listed in the manifest nor a valid event: {e}"))
            })?;
            events.insert(cid, event);
        }
    }
    for (cid, block) in raw_blocks {
        if !listed.contains(&cid) {
            return Err(refuse(format!("raw block {cid} is not listed in the manifest's objects")));
        }
        objects.push(ObjectBlock::Raw(block));
    }
    if objects.len() != listed.len() {
        let present: HashSet<Cid> = objects.iter().map(ObjectBlock::cid).collect();
        let lost: Vec<String> = listed.difference(&present).map(ToString::to_string).collect();
        return Err(refuse(format!(
            "the manifest lists objects the archive lacks (was it cut short?): {}",
            lost.join(", ")
        )));
    }
    if events.len() as u64 != manifest.events {
        return Err(refuse(format!(
            "the manifest counts {} events but the archive holds {} (was it cut short?)",
            manifest.events,
            events.len()
        )));
    }
    let mut chains: BTreeMap<AggregateKey, Vec<Event>> = BTreeMap::new();
    for event in events.into_values() {
        chains.entry(event.envelope.aggregate()).or_default().push(event);
    }
    for chain in chains.values_mut() {
        chain.sort_by_key(|e| e.envelope.version());
    }
    for head in &manifest.heads {
        let last = head.aggregate.parse().ok().and_then(|a: AggregateKey| chains.get(&a)).and_then(|c| c.last());
        if last.map(|e| (e.cid, e.envelope.version())) != Some((head.head, head.version)) {
            return Err(refuse(format!(
                "the manifest's head of {} (version {}, {}) is not the archive's last event of it",
                head.aggregate, head.version, head.head
            )));
        }
    }
    if manifest.heads.len() != chains.len() {
        return Err(refuse("the manifest's heads do not name every aggregate in the archive".to_owned()));
    }

    // 3. Chains, combined with the store's.
    let live = session.events.dag().await?;
    live.catch_up().await?;
    let mut verifier = ChainVerifier::new();
    let mut present = 0;
    let mut pending: BTreeMap<AggregateKey, VecDeque<Event>> = BTreeMap::new();
    for (aggregate, chain) in chains {
        let mut chain: VecDeque<Event> = chain.into();
        if let Some((version, head)) = session.events.head(&aggregate).await? {
            let first = chain.front().map_or(1, |e| e.envelope.version());
            if first <= version {
                let query = AggregateQuery { from_version: first, to_version: Some(version), as_of: None };
                let stored = session.events.read_aggregate(&aggregate, query).await?;
                for stored in stored {
                    let Some(event) = chain.front() else { break };
                    if event.envelope.version() != stored.version() {
                        break;
                    }
                    if event.cid != stored.event.cid {
                        return Err(conflict(format!(
                            "refusing {}: the store's {aggregate} differs from the archive's at version {}: the store \
                             has {}, the archive {}; importing would fork the chain; nothing was written",
                            path.display(),
                            stored.version(),
                            stored.event.cid,
                            event.cid
                        )));
                    }
                    verifier.assume_known(event.cid);
                    chain.pop_front();
                    present += 1;
                }
            }
            verifier.assume_head(&aggregate, version, head);
        }
        if !chain.is_empty() {
            pending.insert(aggregate, chain);
        }
    }
    let to_write: HashSet<Cid> = pending.values().flatten().map(|e| e.cid).collect();
    let order = parents_first(pending, &to_write).map_err(refuse)?;
    for event in &order {
        for parent in event.envelope.parents() {
            if !to_write.contains(parent) && live.contains(parent) {
                verifier.assume_known(*parent);
            }
        }
        // Problems are collected by the verifier and reported together below.
        let _ = verifier.push(event);
    }
    if !verifier.problems().is_empty() {
        let list: Vec<String> = verifier.problems().iter().map(ToString::to_string).collect();
        return Err(refuse(format!("its chains do not fit the store:\n  {}", list.join("\n  "))));
    }
    let imported = Imported {
        file: path.to_owned(),
        root: root.to_string(),
        events: manifest.events,
        events_present: present,
        objects: objects.len() as u64,
        aggregates: manifest.heads.len() as u64,
        names: manifest.names.iter().map(|n| n.name.clone()).collect(),
        ..Imported::default()
    };
    Ok(Plan { imported, objects, events: order, names: manifest.names })
}

impl ObjectBlock {
    fn cid(&self) -> Cid {
        match self {
            Self::Raw(block) => block.cid,
            Self::Ipld(cid, _) => *cid,
        }
    }
}

/// Orders events so that each comes after its predecessor in its aggregate
/// and after every parent among `to_write`, staying with one aggregate as
/// long as it can (long runs make large import batches). Fails if some
/// events can never be placed: they wait, through parents, on each other.
fn parents_first(
    mut pending: BTreeMap<AggregateKey, VecDeque<Event>>,
    to_write: &HashSet<Cid>,
) -> Result<Vec<Event>, String> {
    let mut order = Vec::with_capacity(to_write.len());
    let mut done: HashSet<Cid> = HashSet::new();
    // Aggregates whose next event waits for a parent, by that parent.
    let mut waiting: HashMap<Cid, Vec<AggregateKey>> = HashMap::new();
    let mut ready: VecDeque<AggregateKey> = VecDeque::new();
    let blocker = |event: &Event, done: &HashSet<Cid>| {
        event.envelope.parents().iter().find(|p| to_write.contains(p) && !done.contains(p)).copied()
    };
    for (aggregate, chain) in &pending {
        match chain.front().and_then(|e| blocker(e, &done)) {
            Some(parent) => waiting.entry(parent).or_default().push(aggregate.clone()),
            None => ready.push_back(aggregate.clone()),
        }
    }
    while let Some(aggregate) = ready.pop_front() {
        let chain = pending.get_mut(&aggregate).expect("ready aggregates are pending");
        while let Some(event) = chain.front() {
            if let Some(parent) = blocker(event, &done) {
                waiting.entry(parent).or_default().push(aggregate.clone());
                break;
            }
            let event = chain.pop_front().expect("front exists");
            done.insert(event.cid);
            if let Some(woken) = waiting.remove(&event.cid) {
                ready.extend(woken);
            }
            order.push(event);
        }
    }
    if order.len() == to_write.len() {
        Ok(order)
    } else {
        let stuck: Vec<String> = pending.values().filter_map(|c| c.front()).map(|e| e.cid.to_string()).collect();
        Err(format!("its events cannot be ordered parents first; stuck at {}", stuck.join(", ")))
    }
}

/// Writes a checked plan: objects, then events in batches.
async fn write(session: &Session, path: &Path, plan: Plan, out: &Output) -> anyhow::Result<Imported> {
    let mut imported = plan.imported;
    for object in &plan.objects {
        let cid = object.cid();
        if session.objects.stat(&cid).await?.is_some() {
            continue;
        }
        let stored = match object {
            ObjectBlock::Raw(block) => {
                let mut file =
                    tokio::fs::File::open(path).await.with_context(|| format!("cannot open {}", path.display()))?;
                file.seek(std::io::SeekFrom::Start(block.offset)).await?;
                session.objects.put(file.take(block.len)).await?.cid
            }
            ObjectBlock::Ipld(_, value) => session.objects.put_ipld(value).await?,
        };
        anyhow::ensure!(
            stored == cid,
            "object {cid} was stored as {stored}: {} changed while importing",
            path.display()
        );
        imported.objects_written += 1;
    }
    let bar = out.progress(plan.events.len() as u64, "importing");
    let mut batch: Vec<Event> = Vec::new();
    let mut batch_cids: HashSet<Cid> = HashSet::new();
    let mut events = plan.events.into_iter().peekable();
    while let Some(event) = events.next() {
        batch_cids.insert(event.cid);
        batch.push(event);
        let flush = match events.peek() {
            None => true,
            Some(next) => {
                next.envelope.aggregate() != batch[0].envelope.aggregate()
                    || batch.len() == MAX_BATCH_EVENTS
                    || next.envelope.parents().iter().any(|p| batch_cids.contains(p))
            }
        };
        if flush {
            let count = batch.len() as u64;
            let appended = session.events.import(std::mem::take(&mut batch)).await.with_context(|| {
                format!(
                    "importing {} stopped after writing {} events and {} objects; run the same import again once \
                     the cause is fixed: what is already stored is skipped",
                    path.display(),
                    imported.events_written,
                    imported.objects_written
                )
            })?;
            if appended.already_stored {
                imported.events_present += count;
            } else {
                imported.events_written += count;
            }
            batch_cids.clear();
            bar.inc(count);
        }
    }
    bar.finish_and_clear();
    for name in &plan.names {
        session.named.adopt(&name.name, name.head).await.with_context(|| {
            format!(
                "importing {}: the events and objects are stored, but name {:?} was not moved to {}",
                path.display(),
                name.name,
                name.head
            )
        })?;
    }
    Ok(imported)
}
