//! Importing: an archive into the store, verified completely before anything
//! is written, in memory bounded by a small index rather than by the archive.
//!
//! Checking, in order, with nothing written until all of it passes:
//! 1. every block's bytes against its CID, and the file's structure, so a
//!    flipped byte or a file cut short is named with its offset. This is one
//!    pass over the file that keeps no block: of each event only an index
//!    entry (its digest, offset, length, aggregate, version and parents), of
//!    each object its place in the file;
//! 2. the manifest (the root) against the blocks: every object and head it
//!    lists is present and the event count matches, so an archive cut short
//!    at a block boundary is caught too;
//! 3. every chain combined with the target store's: events the store already
//!    holds must be the same events (else it is a conflict: importing would
//!    fork a chain); the rest are ordered parents first from the index, then
//!    read back one chunk at a time by offset and checked with
//!    [`cim_cid::check_next`]: they must continue the store's chains, and
//!    every parent must be in the archive or the store.
//!
//! Then objects are written (raw ones streamed from the file), and events
//! through `EventStore::import` in that order, read back by offset once more
//! and batched per aggregate; the server checks each batch again. Importing
//! the same archive twice writes nothing the second time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cim_cid::{AggregateKey, ChainError, ChainState, Cid, DAG_CBOR, DIGEST_LEN, Event, Ipld, RAW};
use cim_store::{AggregateQuery, LiveDag, MAX_BATCH_EVENTS};
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, BufReader};

use crate::Stores;
use crate::car::{BlockStart, CarReader};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, NameHead};
use crate::progress::{Phase, Progress};

/// Events read back from the file at a time, to check them.
const READ_CHUNK: usize = 1024;

/// Buffer of the first pass over the file.
const SCAN_BUFFER: usize = 256 * 1024;

/// Heads of aggregates asked of the store at once.
const CONCURRENT_HEADS: usize = 32;

type Digest = [u8; DIGEST_LEN];

/// What an import found in the archive and did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The archive's root, its manifest.
    pub root: Cid,
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
}

/// Verifies the archive at `path` against the store and writes it.
pub async fn import(stores: Stores<'_>, path: &Path, progress: &dyn Progress) -> Result<Imported> {
    verify(stores, path, progress).await?.write(stores, progress).await
}

/// Reads the archive at `path` and verifies it, and its chains against the
/// store's; writes nothing. [`Verified::write`] then writes it.
pub async fn verify(stores: Stores<'_>, path: &Path, progress: &dyn Progress) -> Result<Verified> {
    let scan = Scan::read(path, progress).await?;
    let checked = scan.against_manifest(path).await?;
    checked.against_store(stores, path, progress).await
}

/// An archive verified against the store, ready to write.
#[derive(Debug)]
pub struct Verified {
    path: PathBuf,
    summary: Imported,
    index: Index,
    objects: Vec<BlockStart>,
    /// Events to write, parents first, as indices into `index.events`.
    order: Vec<u32>,
    names: Vec<NameHead>,
}

impl Verified {
    /// What the archive holds, and how many of its events the store holds
    /// already.
    pub fn summary(&self) -> &Imported {
        &self.summary
    }

    /// Writes objects, then events (read back from the file in batches),
    /// then points names at their records. Writing is idempotent: after a
    /// failure ([`Error::Stopped`]) the same import skips what is stored.
    pub async fn write(self, stores: Stores<'_>, progress: &dyn Progress) -> Result<Imported> {
        let Self { path, mut summary, index, objects, order, names } = self;
        let stopped = |summary: &Imported| {
            let (events, objects) = (summary.events_written, summary.objects_written);
            move |source| Error::Stopped { events, objects, source }
        };
        progress.start(Phase::ImportObjects, objects.len() as u64);
        for block in &objects {
            progress.advance(Phase::ImportObjects, 1);
            if stores.objects.stat(&block.cid).await.map_err(stopped(&summary))?.is_some() {
                continue;
            }
            let mut file = tokio::fs::File::open(&path).await.map_err(Error::io(cannot_open(&path)))?;
            file.seek(SeekFrom::Start(block.offset)).await.map_err(Error::io(cannot_read(&path)))?;
            let stored = if block.cid.codec() == RAW {
                stores.objects.put(file.take(block.len)).await.map_err(stopped(&summary))?.cid
            } else {
                let mut bytes = vec![0; block.len as usize];
                file.read_exact(&mut bytes).await.map_err(Error::io(cannot_read(&path)))?;
                let value: Ipld = cim_cid::decode_dag_cbor("IPLD object", &bytes)
                    .map_err(|e| Error::Changed(format!("object {}: {e}", block.cid)))?;
                stores.objects.put_ipld(&value).await.map_err(stopped(&summary))?
            };
            if stored != block.cid {
                return Err(Error::Changed(format!("object {} was stored as {stored}", block.cid)));
            }
            summary.objects_written += 1;
        }
        progress.finish(Phase::ImportObjects);

        progress.start(Phase::ImportEvents, order.len() as u64);
        let mut reader = EventReader::open(&path)?;
        let mut start = 0;
        while start < order.len() {
            let end = batch_end(&index, &order, start);
            let batch = reader.read(&index, &order[start..end]).await?;
            let count = (end - start) as u64;
            let appended = stores.events.import(batch).await.map_err(stopped(&summary))?;
            if appended.already_stored {
                summary.events_present += count;
            } else {
                summary.events_written += count;
            }
            progress.advance(Phase::ImportEvents, count);
            start = end;
        }
        progress.finish(Phase::ImportEvents);

        for name in &names {
            stores.named.adopt(&name.name, name.head).await.map_err(|source| Error::NameNotMoved {
                name: name.name.clone(),
                head: name.head,
                source,
            })?;
        }
        Ok(summary)
    }
}

/// The end of the batch of `order` starting at `start`: consecutive events
/// of one aggregate, at most [`MAX_BATCH_EVENTS`], none a parent of a later
/// one (the store checks that parents are stored before the batch is).
fn batch_end(index: &Index, order: &[u32], start: usize) -> usize {
    let first = &index.events[order[start] as usize];
    let mut digests: Vec<&Digest> = vec![&first.digest];
    let mut end = start + 1;
    while end < order.len() && end - start < MAX_BATCH_EVENTS {
        let next = &index.events[order[end] as usize];
        if next.aggregate != first.aggregate || next.parents.iter().any(|p| digests.contains(&p)) {
            break;
        }
        digests.push(&next.digest);
        end += 1;
    }
    end
}

/// An event of the archive, as the index keeps it.
#[derive(Debug)]
struct EventEntry {
    /// The sha2-256 digest of its dag-cbor CID.
    digest: Digest,
    /// Byte offset of its block's data.
    offset: u64,
    /// Digests of its parents (always dag-cbor sha2-256 CIDs).
    parents: Box<[Digest]>,
    version: u64,
    /// Length of its block's data (events are far smaller than 4 GiB).
    len: u32,
    /// Index into [`Index::aggregates`].
    aggregate: u32,
    state: State,
}

impl EventEntry {
    fn cid(&self) -> Cid {
        cim_cid::cid_from_digest(DAG_CBOR, &self.digest)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// To be written.
    Pending,
    /// The store holds it already, at the same version.
    Present,
    /// Placed in the write order.
    Ordered,
    /// Checked and applied to its chain.
    Applied,
}

/// The archive's events, without their bytes.
#[derive(Debug, Default)]
struct Index {
    /// Sorted by digest.
    events: Vec<EventEntry>,
    /// Sorted.
    aggregates: Vec<AggregateKey>,
    /// Event indices by aggregate, then version: aggregate `a`'s chain is
    /// `chains[starts[a]..starts[a + 1]]`.
    chains: Vec<u32>,
    starts: Vec<usize>,
}

impl Index {
    fn find(&self, digest: &Digest) -> Option<usize> {
        self.events.binary_search_by(|e| e.digest.cmp(digest)).ok()
    }

    fn find_cid(&self, cid: &Cid) -> Option<usize> {
        if cid.codec() != DAG_CBOR {
            return None;
        }
        self.find(&cim_cid::sha256_digest(cid).ok()?)
    }

    fn aggregate(&self, aggregate_type: &str, aggregate_id: &str) -> Option<usize> {
        self.aggregates
            .binary_search_by(|k| (k.aggregate_type(), k.aggregate_id()).cmp(&(aggregate_type, aggregate_id)))
            .ok()
    }

    fn chain(&self, aggregate: usize) -> &[u32] {
        &self.chains[self.starts[aggregate]..self.starts[aggregate + 1]]
    }
}

/// The first pass: every block read and checked against its CID.
#[derive(Debug)]
struct Scan {
    root: Cid,
    manifest: Option<Manifest>,
    /// The manifest's objects, once it has been read.
    listed: HashSet<Cid>,
    events: Vec<EventEntry>,
    aggregates: Vec<AggregateKey>,
    aggregate_ids: HashMap<AggregateKey, u32>,
    objects: Vec<BlockStart>,
    /// Dag-cbor blocks read before the manifest that are not events: objects
    /// if the manifest lists them; with why they are not events.
    unknown: Vec<(BlockStart, String)>,
    /// The first problem with what a block is (not with its bytes), reported
    /// once the whole file has been read, so that damage comes first.
    problem: Option<Error>,
}

impl Scan {
    async fn read(path: &Path, progress: &dyn Progress) -> Result<Self> {
        let file = tokio::fs::File::open(path).await.map_err(Error::io(cannot_open(path)))?;
        let file_len = file.metadata().await.map_err(Error::io(cannot_read(path)))?.len();
        let (mut car, roots) = CarReader::open(BufReader::with_capacity(SCAN_BUFFER, file), file_len).await?;
        let [root] = roots[..] else {
            return Err(Error::Malformed {
                offset: 0,
                reason: format!("it has {} roots; an archive of `cim export` has one, its manifest", roots.len()),
            });
        };
        let mut scan = Self {
            root,
            manifest: None,
            listed: HashSet::new(),
            events: Vec::new(),
            aggregates: Vec::new(),
            aggregate_ids: HashMap::new(),
            objects: Vec::new(),
            unknown: Vec::new(),
            problem: None,
        };
        progress.start(Phase::Verify, file_len);
        let mut done = 0;
        while let Some(block) = car.next_block().await? {
            scan.block(&mut car, block).await?;
            progress.advance(Phase::Verify, car.offset() - done);
            done = car.offset();
        }
        progress.finish(Phase::Verify);
        Ok(scan)
    }

    async fn block<R>(&mut self, car: &mut CarReader<R>, block: BlockStart) -> Result<()>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let cid = block.cid;
        if cim_cid::sha256_digest(&cid).is_err() {
            return Err(Error::InvalidBlock {
                cid,
                offset: block.offset,
                reason: "its CID is not one cim writes (CIDv1, dag-cbor or raw, sha2-256 only)".to_owned(),
            });
        }
        if cid.codec() == RAW {
            let actual = cim_cid::cid_from_digest(RAW, &car.hash(&block).await?);
            if actual != cid {
                return Err(Error::CidMismatch { cid, actual, offset: block.offset });
            }
            self.objects.push(block);
            return Ok(());
        }
        let bytes = car.read(&block).await?;
        let actual = cim_cid::dag_cbor_cid(&bytes);
        if actual != cid {
            return Err(Error::CidMismatch { cid, actual, offset: block.offset });
        }
        if cid == self.root {
            if self.manifest.is_none() {
                let manifest = Manifest::decode(&cid, &bytes)?;
                self.listed = manifest.objects.iter().copied().collect();
                self.manifest = Some(manifest);
            }
            return Ok(());
        }
        if self.manifest.is_some() && self.listed.contains(&cid) {
            if let Err(e) = cim_cid::decode_dag_cbor::<Ipld>("IPLD object", &bytes) {
                self.note(Error::InvalidBlock { cid, offset: block.offset, reason: format!("object {cid}: {e}") });
            }
            self.objects.push(block);
            return Ok(());
        }
        match Event::from_block(&cid, &bytes) {
            Ok(event) => self.index(&block, &event),
            Err(e) if self.manifest.is_some() => self.note(not_an_event(&block, &e.to_string())),
            Err(e) => self.unknown.push((block, e.to_string())),
        }
        Ok(())
    }

    fn index(&mut self, block: &BlockStart, event: &Event) {
        let envelope = &event.envelope;
        let key = envelope.aggregate();
        let aggregate = match self.aggregate_ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.aggregates.len() as u32;
                self.aggregates.push(key.clone());
                self.aggregate_ids.insert(key, id);
                id
            }
        };
        // Links of a valid envelope are dag-cbor sha2-256 CIDs.
        let digest = |cid: &Cid| cim_cid::sha256_digest(cid).unwrap_or([0; DIGEST_LEN]);
        self.events.push(EventEntry {
            digest: digest(&event.cid),
            offset: block.offset,
            parents: envelope.parents().iter().map(digest).collect(),
            version: envelope.version(),
            // At most MAX_IN_MEMORY bytes: it was read whole.
            len: block.len as u32,
            aggregate,
            state: State::Pending,
        });
    }

    fn note(&mut self, problem: Error) {
        self.problem.get_or_insert(problem);
    }

    /// Step 2: the blocks against the manifest.
    async fn against_manifest(mut self, path: &Path) -> Result<Checked> {
        if let Some(problem) = self.problem.take() {
            return Err(problem);
        }
        let root = self.root;
        let manifest = self
            .manifest
            .take()
            .ok_or_else(|| Error::ManifestMismatch(format!("its root block (the manifest {root}) is missing")))?;
        let mut events = std::mem::take(&mut self.events);
        events.sort_unstable_by_key(|e| e.digest);
        events.dedup_by(|a, b| a.digest == b.digest);

        // Blocks read before the manifest: objects if it lists them.
        let mut reader = None;
        let mut check_object = async |block: &BlockStart| -> Result<()> {
            let reader = match &mut reader {
                Some(reader) => reader,
                None => reader.insert(EventReader::open(path)?),
            };
            let bytes = reader.bytes(block.offset, block.len).await?;
            cim_cid::decode_dag_cbor::<Ipld>("IPLD object", &bytes).map_err(|e| Error::InvalidBlock {
                cid: block.cid,
                offset: block.offset,
                reason: format!("object {}: {e}", block.cid),
            })?;
            Ok(())
        };
        for (block, why) in std::mem::take(&mut self.unknown) {
            if !self.listed.contains(&block.cid) {
                return Err(not_an_event(&block, &why));
            }
            check_object(&block).await?;
            self.objects.push(block);
        }
        // Valid events the manifest lists as objects are objects.
        let mut moved = Vec::new();
        for cid in manifest.objects.iter().filter(|cid| cid.codec() == DAG_CBOR) {
            let digest = cim_cid::sha256_digest(cid)?;
            if let Ok(at) = events.binary_search_by(|e| e.digest.cmp(&digest)) {
                let entry = &events[at];
                moved.push(at);
                let block = BlockStart { cid: *cid, offset: entry.offset, len: u64::from(entry.len) };
                check_object(&block).await?;
                self.objects.push(block);
            }
        }
        if !moved.is_empty() {
            let moved: HashSet<usize> = moved.into_iter().collect();
            let mut at = 0;
            events.retain(|_| {
                at += 1;
                !moved.contains(&(at - 1))
            });
        }

        let mut objects = std::mem::take(&mut self.objects);
        objects.sort_unstable_by_key(|b| b.cid);
        objects.dedup_by(|a, b| a.cid == b.cid);
        if let Some(block) = objects.iter().find(|b| !self.listed.contains(&b.cid)) {
            return Err(Error::InvalidBlock {
                cid: block.cid,
                offset: block.offset,
                reason: "it is a raw block not listed in the manifest's objects".to_owned(),
            });
        }
        if objects.len() != self.listed.len() {
            let present: HashSet<Cid> = objects.iter().map(|b| b.cid).collect();
            let mut lost: Vec<String> = self.listed.difference(&present).map(ToString::to_string).collect();
            lost.sort();
            return Err(Error::ManifestMismatch(format!(
                "the manifest lists objects the archive lacks (was it cut short?): {}",
                lost.join(", ")
            )));
        }
        if events.len() as u64 != manifest.events {
            return Err(Error::ManifestMismatch(format!(
                "the manifest counts {} events but the archive holds {} (was it cut short?)",
                manifest.events,
                events.len()
            )));
        }

        let index = build_index(events, std::mem::take(&mut self.aggregates));
        for head in &manifest.heads {
            let last = head
                .aggregate
                .parse::<AggregateKey>()
                .ok()
                .and_then(|key| index.aggregate(key.aggregate_type(), key.aggregate_id()))
                .and_then(|a| index.chain(a).last())
                .map(|&i| &index.events[i as usize]);
            if last.map(|e| (e.cid(), e.version)) != Some((head.head, head.version)) {
                return Err(Error::ManifestMismatch(format!(
                    "the manifest's head of {} (version {}, {}) is not the archive's last event of it",
                    head.aggregate, head.version, head.head
                )));
            }
        }
        if manifest.heads.len() != index.aggregates.len() {
            return Err(Error::ManifestMismatch(
                "the manifest's heads do not name every aggregate in the archive".to_owned(),
            ));
        }
        Ok(Checked { root, manifest, index, objects })
    }
}

fn not_an_event(block: &BlockStart, why: &str) -> Error {
    Error::InvalidBlock {
        cid: block.cid,
        offset: block.offset,
        reason: format!("it is neither an object listed in the manifest nor a valid event: {why}"),
    }
}

/// Sorts the aggregates, drops those left without events, and orders each
/// one's events by version.
fn build_index(mut events: Vec<EventEntry>, aggregates: Vec<AggregateKey>) -> Index {
    let mut used = vec![false; aggregates.len()];
    for event in &events {
        used[event.aggregate as usize] = true;
    }
    let mut kept: Vec<(AggregateKey, usize)> =
        aggregates.into_iter().enumerate().filter(|(old, _)| used[*old]).map(|(old, key)| (key, old)).collect();
    kept.sort_unstable();
    let mut renumber = vec![0u32; used.len()];
    for (new, (_, old)) in kept.iter().enumerate() {
        renumber[*old] = new as u32;
    }
    for event in &mut events {
        event.aggregate = renumber[event.aggregate as usize];
    }
    let mut chains: Vec<u32> = (0..events.len() as u32).collect();
    chains.sort_unstable_by_key(|&i| {
        let e = &events[i as usize];
        (e.aggregate, e.version, e.digest)
    });
    let mut starts = Vec::with_capacity(kept.len() + 1);
    let mut at = 0;
    for aggregate in 0..kept.len() as u32 {
        starts.push(at);
        while at < chains.len() && events[chains[at] as usize].aggregate == aggregate {
            at += 1;
        }
    }
    starts.push(at);
    Index { events, aggregates: kept.into_iter().map(|(key, _)| key).collect(), chains, starts }
}

/// The archive checked against its manifest.
#[derive(Debug)]
struct Checked {
    root: Cid,
    manifest: Manifest,
    index: Index,
    objects: Vec<BlockStart>,
}

impl Checked {
    /// Step 3: the chains, combined with the store's.
    async fn against_store(self, stores: Stores<'_>, path: &Path, progress: &dyn Progress) -> Result<Verified> {
        let Self { root, manifest, mut index, objects } = self;
        let live = stores.events.dag().await?;
        live.catch_up().await?;

        // Events the store holds already must be the archive's.
        let mut heads: Vec<Option<(u64, Digest)>> = vec![None; index.aggregates.len()];
        let mut present = 0;
        {
            let Index { events, aggregates, chains, starts } = &mut index;
            let keys: &[AggregateKey] = aggregates;
            // By number: a stream of futures over borrowed keys is not `Send`.
            let mut store_heads = futures::stream::iter(0..keys.len())
                .map(|a| async move { stores.events.head(&keys[a]).await.map(|head| (a, head)) })
                .buffered(CONCURRENT_HEADS);
            while let Some((a, head)) = store_heads.try_next().await? {
                let aggregate = &keys[a];
                let Some((version, head)) = head else { continue };
                let chain = &chains[starts[a]..starts[a + 1]];
                let first = chain.first().map_or(1, |&i| events[i as usize].version);
                if first <= version {
                    let query = AggregateQuery { from_version: first, to_version: Some(version), as_of: None };
                    let mut stored = stores.events.aggregate_events(aggregate, query).await?;
                    let mut next = chain.iter();
                    while let Some(stored) = stored.try_next().await? {
                        let Some(&i) = next.next() else { break };
                        let event = &mut events[i as usize];
                        if event.version != stored.version() {
                            break;
                        }
                        if event.cid() != stored.event.cid {
                            return Err(Error::ChainConflict {
                                aggregate: aggregate.clone(),
                                version: stored.version(),
                                store: stored.event.cid,
                                archive: event.cid(),
                            });
                        }
                        event.state = State::Present;
                        present += 1;
                    }
                }
                heads[a] = Some((version, cim_cid::sha256_digest(&head)?));
            }
        }

        // The rest, parents first, checked as they would be appended.
        let order = parents_first(&mut index)?;
        progress.start(Phase::CheckChains, order.len() as u64);
        let mut reader = EventReader::open(path)?;
        let mut problems = Vec::new();
        for chunk in order.chunks(READ_CHUNK) {
            for (&i, event) in chunk.iter().zip(reader.read(&index, chunk).await?) {
                let outcome = cim_cid::check_next(&Chains { index: &index, heads: &heads, live }, &event);
                if !matches!(outcome, Err(ChainError::Fork { .. } | ChainError::Duplicate { .. })) {
                    let entry = &mut index.events[i as usize];
                    heads[entry.aggregate as usize] = Some((entry.version, entry.digest));
                    entry.state = State::Applied;
                }
                if let Err(problem) = outcome {
                    problems.push(problem);
                }
            }
            progress.advance(Phase::CheckChains, chunk.len() as u64);
        }
        progress.finish(Phase::CheckChains);
        if !problems.is_empty() {
            return Err(Error::Chains(problems));
        }
        let summary = Imported {
            root,
            events: manifest.events,
            events_written: 0,
            events_present: present,
            objects: objects.len() as u64,
            objects_written: 0,
            aggregates: manifest.heads.len() as u64,
            names: manifest.names.iter().map(|n| n.name.clone()).collect(),
        };
        Ok(Verified { path: path.to_owned(), summary, index, objects, order, names: manifest.names })
    }
}

/// The chains as they would be after appending the events applied so far.
struct Chains<'a> {
    index: &'a Index,
    heads: &'a [Option<(u64, Digest)>],
    live: &'a LiveDag,
}

impl ChainState for Chains<'_> {
    fn head(&self, aggregate_type: &str, aggregate_id: &str) -> Option<(u64, Cid)> {
        let (version, digest) = self.heads[self.index.aggregate(aggregate_type, aggregate_id)?]?;
        Some((version, cim_cid::cid_from_digest(DAG_CBOR, &digest)))
    }

    fn contains(&self, cid: &Cid) -> bool {
        match self.index.find_cid(cid) {
            // An event of the archive counts once applied (or stored).
            Some(i) => matches!(self.index.events[i].state, State::Present | State::Applied),
            None => self.live.contains(cid),
        }
    }
}

/// Orders the events to write so that each comes after its predecessor in
/// its aggregate and after every parent to write, staying with one
/// aggregate as long as it can (long runs make large import batches).
/// Fails if some events can never be placed: they wait, through parents, on
/// each other.
fn parents_first(index: &mut Index) -> Result<Vec<u32>> {
    let aggregates = index.aggregates.len();
    // Each aggregate's next event to place: the store's events come first.
    let mut next: Vec<usize> = (0..aggregates)
        .map(|a| {
            let chain = index.chain(a);
            index.starts[a] + chain.iter().take_while(|&&i| index.events[i as usize].state == State::Present).count()
        })
        .collect();
    let to_write = index.events.iter().filter(|e| e.state == State::Pending).count();
    let mut order = Vec::with_capacity(to_write);
    // Aggregates whose next event waits for a parent, by that parent.
    let mut waiting: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut ready: VecDeque<usize> = VecDeque::new();
    let blocker = |index: &Index, event: u32| {
        index.events[event as usize].parents.iter().find_map(|parent| {
            let at = index.find(parent)?;
            (index.events[at].state == State::Pending).then_some(at as u32)
        })
    };
    for (a, &at) in next.iter().enumerate() {
        if at < index.starts[a + 1] {
            match blocker(index, index.chains[at]) {
                Some(parent) => waiting.entry(parent).or_default().push(a),
                None => ready.push_back(a),
            }
        }
    }
    while let Some(a) = ready.pop_front() {
        while next[a] < index.starts[a + 1] {
            let event = index.chains[next[a]];
            if let Some(parent) = blocker(index, event) {
                waiting.entry(parent).or_default().push(a);
                break;
            }
            index.events[event as usize].state = State::Ordered;
            next[a] += 1;
            if let Some(woken) = waiting.remove(&event) {
                ready.extend(woken);
            }
            order.push(event);
        }
    }
    if order.len() == to_write {
        Ok(order)
    } else {
        let stuck = (0..aggregates)
            .filter(|&a| next[a] < index.starts[a + 1])
            .map(|a| index.events[index.chains[next[a]] as usize].cid())
            .collect();
        Err(Error::Unorderable(stuck))
    }
}

/// Reads blocks back from the archive by offset, on the blocking pool.
#[derive(Debug)]
struct EventReader {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl EventReader {
    fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(Error::io(cannot_open(path)))?;
        Ok(Self { path: path.to_owned(), file: Some(file) })
    }

    /// The events `chunk` (indices into the index's events), decoded and
    /// checked against their CIDs again.
    async fn read(&mut self, index: &Index, chunk: &[u32]) -> Result<Vec<Event>> {
        let blocks: Vec<(Cid, u64, u32)> = chunk
            .iter()
            .map(|&i| {
                let entry = &index.events[i as usize];
                (entry.cid(), entry.offset, entry.len)
            })
            .collect();
        self.blocking(move |file, path| {
            let mut events = Vec::with_capacity(blocks.len());
            let mut bytes = Vec::new();
            for (cid, offset, len) in blocks {
                bytes.resize(len as usize, 0);
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(Error::io(cannot_read(path)))?;
                let event = Event::from_block(&cid, &bytes).map_err(|e| {
                    Error::Changed(format!("block {cid} at byte {offset} is no longer that event: {e}"))
                })?;
                events.push(event);
            }
            Ok(events)
        })
        .await
    }

    /// `len` bytes at `offset`.
    async fn bytes(&mut self, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.blocking(move |file, path| {
            let mut bytes = vec![0; len as usize];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(Error::io(cannot_read(path)))?;
            Ok(bytes)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut std::fs::File, &Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut file = self.file.take().expect("the file is back after every read");
        let path = self.path.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = work(&mut file, &path);
            (file, result)
        })
        .await;
        match outcome {
            Ok((file, result)) => {
                self.file = Some(file);
                result
            }
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(Error::io(cannot_read(&self.path))(std::io::Error::other(error))),
        }
    }
}

fn cannot_open(path: &Path) -> String {
    format!("cannot open {}", path.display())
}

fn cannot_read(path: &Path) -> String {
    format!("cannot read {}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        [n; DIGEST_LEN]
    }

    /// An event `n` of `aggregate` (an index into `keys`) at `version`.
    fn entry(n: u8, aggregate: u32, version: u64, parents: &[u8]) -> EventEntry {
        EventEntry {
            digest: digest(n),
            offset: u64::from(n),
            parents: parents.iter().map(|&p| digest(p)).collect(),
            version,
            len: 1,
            aggregate,
            state: State::Pending,
        }
    }

    fn keys() -> Vec<AggregateKey> {
        ["b/1", "a/1", "c/1"].iter().map(|k| k.parse().expect("valid")).collect()
    }

    fn order(index: &Index, order: &[u32]) -> Vec<u8> {
        order.iter().map(|&i| index.events[i as usize].digest[0]).collect()
    }

    #[test]
    fn the_index_sorts_aggregates_and_chains_and_drops_empty_aggregates() {
        // b/1 has 3 then 1; a/1 has 2; c/1 has nothing.
        let index = build_index(vec![entry(3, 0, 2, &[]), entry(2, 1, 1, &[]), entry(1, 0, 1, &[])], keys());
        assert_eq!(index.aggregates, keys()[..2].iter().rev().cloned().collect::<Vec<_>>());
        let chain = |a| index.chain(a).iter().map(|&i| index.events[i as usize].digest[0]).collect::<Vec<_>>();
        assert_eq!((chain(0), chain(1)), (vec![2], vec![1, 3]));
        assert_eq!(index.aggregate("b", "1"), Some(1));
        assert_eq!(index.aggregate("c", "1"), None);
    }

    #[test]
    fn events_are_ordered_parents_first_staying_with_an_aggregate() {
        // b/1: 1, 3 (caused by 2), 4; a/1: 2 (caused by 1), 5 (caused by 4).
        let mut events = vec![
            entry(1, 0, 1, &[]),
            entry(3, 0, 2, &[2]),
            entry(4, 0, 3, &[]),
            entry(2, 1, 1, &[1]),
            entry(5, 1, 2, &[4]),
        ];
        events.sort_unstable_by_key(|e| e.digest);
        let mut index = build_index(events, keys());
        let placed = parents_first(&mut index).expect("orderable");
        assert_eq!(order(&index, &placed), [1, 2, 3, 4, 5]);
        // A batch is a run of one aggregate.
        assert_eq!(batch_end(&index, &placed, 0), 1);
        assert_eq!(batch_end(&index, &placed, 2), 4);

        // Events the store holds are not placed, nor waited for.
        let mut events = vec![entry(1, 0, 1, &[]), entry(2, 1, 1, &[1]), entry(3, 0, 2, &[2])];
        events.sort_unstable_by_key(|e| e.digest);
        let mut index = build_index(events, keys());
        let first = index.find(&digest(1)).expect("indexed");
        index.events[first].state = State::Present;
        let placed = parents_first(&mut index).expect("orderable");
        assert_eq!(order(&index, &placed), [2, 3]);
    }

    #[test]
    fn events_waiting_on_each_other_cannot_be_ordered() {
        let mut events = vec![entry(1, 0, 1, &[2]), entry(2, 1, 1, &[1])];
        events.sort_unstable_by_key(|e| e.digest);
        let mut index = build_index(events, keys());
        let Err(Error::Unorderable(stuck)) = parents_first(&mut index) else { panic!("ordered a cycle") };
        assert_eq!(stuck.len(), 2);
    }
}
