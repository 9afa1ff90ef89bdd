//! The Storage Manager: its stores, tiers and state, how it starts (and
//! resumes what a crash interrupted), and its status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cim_archive::segment::SegmentManifest;
use cim_cid::Cid;
use cim_storage_api::{HotStatus, ItemKind, ScrubReport, SegmentInfo, Status, TierName, TierStatus};
use cim_store::{Checkpoint, EventStore, NamedObjects, ObjectStore, StoreConfig};
use tokio::sync::{Mutex, RwLock};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::metrics::StorageMetrics;
use crate::settings::StorageSettings;
use crate::state::{Loaded, ObjectRecord, RetentionRecord, SegmentRecord, State};
use crate::tier::Tier;

/// Every aggregate's head at the sealed point: `type/id` → (version, CID,
/// stream sequence).
pub type Heads = BTreeMap<String, (u64, Cid, u64)>;

/// What is sealed: the committed segments and the heads after the last.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    /// Committed segments, by index (0, 1, … without gaps).
    pub segments: Vec<SegmentRecord>,
    /// Heads at the last segment's end.
    pub heads: Heads,
}

impl Archive {
    /// Last stream sequence sealed (0: none).
    pub fn sealed_through(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.info.last_seq)
    }

    /// Events sealed.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.info.events).sum()
    }

    /// The newest manifest's CID.
    pub fn head_manifest(&self) -> Option<Cid> {
        self.segments.last().and_then(|s| s.info.manifest.parse().ok())
    }
}

/// The operations that exclude themselves (one at a time each).
#[derive(Debug, Default)]
pub(crate) struct Ops {
    pub seal: Mutex<()>,
    pub copy: Mutex<()>,
    pub scrub: Mutex<()>,
    pub retention: Mutex<()>,
    pub gc: Mutex<()>,
}

/// The manager. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Manager {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub settings: StorageSettings,
    pub store: StoreConfig,
    pub instance: String,
    pub events: EventStore,
    pub objects: ObjectStore,
    pub named: NamedObjects,
    pub state: State,
    pub tiers: [Tier; 2],
    pub work_dir: PathBuf,
    pub archive: RwLock<Archive>,
    pub object_records: Mutex<BTreeMap<String, ObjectRecord>>,
    pub retention: Mutex<RetentionRecord>,
    pub last_scrub: Mutex<Option<ScrubReport>>,
    pub pending: Mutex<Option<crate::state::PendingSeal>>,
    pub busy: std::sync::Mutex<BTreeSet<&'static str>>,
    pub ops: Ops,
    pub metrics: StorageMetrics,
    pub event_index: Mutex<crate::reads::EventIndex>,
    /// Objects in hot, as the last copy pass listed them.
    pub hot_objects: std::sync::atomic::AtomicU64,
    /// Hot objects not yet verified on warm and on cold, as of the last
    /// copy pass.
    pub lag_objects: [std::sync::atomic::AtomicU64; 2],
}

/// Marks an operation busy while it runs.
pub(crate) struct BusyGuard<'a> {
    busy: &'a std::sync::Mutex<BTreeSet<&'static str>>,
    what: &'static str,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.busy.lock().expect("busy lock").remove(self.what);
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    cim_cid::Timestamp::now().unix_micros()
}

impl Manager {
    /// Opens the stores and the tiers (reading the credential files), loads
    /// the state and reconciles it with the tiers: a fresh host's state is
    /// rebuilt from the manifests found there. Tiers that cannot be reached
    /// are reported and tried again by every operation.
    ///
    /// # Errors
    /// A credential file cannot be read, or the hot store cannot be opened.
    pub async fn open(
        client: async_nats::Client,
        store: StoreConfig,
        settings: StorageSettings,
        instance: String,
        metrics: StorageMetrics,
    ) -> Result<Self> {
        let part = settings.copy.part_bytes;
        let tiers =
            [Tier::open(TierName::Warm, &settings.warm, part)?, Tier::open(TierName::Cold, &settings.cold, part)?];
        let events = EventStore::open(client.clone(), store.clone()).await?;
        let objects = ObjectStore::open(client.clone(), &store).await?;
        let named = NamedObjects::open(objects.clone(), client.clone(), &store).await?;
        let state = State::open(client, &store).await?;
        let work_dir = settings.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&work_dir)?;
        for tier in &tiers {
            match tier.check().await {
                Ok(()) => {
                    info!(tier = %tier.name(), endpoint = tier.endpoint(), bucket = tier.bucket(), "tier reachable")
                }
                Err(error) => warn!(tier = %tier.name(), %error, "tier not usable now; every operation tries again"),
            }
        }
        let Loaded { segments, pending, objects: records, retention, last_scrub } = state.load().await?;
        let manager = Self {
            inner: Arc::new(Inner {
                settings,
                store,
                instance,
                events,
                objects,
                named,
                state,
                tiers,
                work_dir,
                archive: RwLock::new(Archive::default()),
                object_records: Mutex::new(records),
                retention: Mutex::new(retention),
                last_scrub: Mutex::new(last_scrub),
                pending: Mutex::new(pending),
                busy: std::sync::Mutex::new(BTreeSet::new()),
                ops: Ops::default(),
                metrics,
                event_index: Mutex::new(crate::reads::EventIndex::default()),
                hot_objects: Default::default(),
                lag_objects: Default::default(),
            }),
        };
        manager.load_archive(segments).await?;
        let no_records = manager.inner.object_records.lock().await.is_empty();
        if no_records && let Err(error) = manager.adopt_objects().await {
            warn!(%error, "cannot list the objects on the tiers now");
        }
        manager.update_gauges().await;
        Ok(manager)
    }

    /// The configuration.
    pub fn settings(&self) -> &StorageSettings {
        &self.inner.settings
    }

    /// The hot event store.
    pub fn events(&self) -> &EventStore {
        &self.inner.events
    }

    /// The tier called `name`.
    pub fn tier(&self, name: TierName) -> &Tier {
        match name {
            TierName::Warm => &self.inner.tiers[0],
            TierName::Cold => &self.inner.tiers[1],
        }
    }

    /// Both tiers, warm first.
    pub fn tiers(&self) -> &[Tier; 2] {
        &self.inner.tiers
    }

    pub(crate) fn busy(&self, what: &'static str) -> BusyGuard<'_> {
        self.inner.busy.lock().expect("busy lock").insert(what);
        BusyGuard { busy: &self.inner.busy, what }
    }

    /// Sets up the archive from the state's segment records, or — when it
    /// has none — from the manifests on the tiers (a fresh host). Then the
    /// heads after the last segment, from its checkpoint.
    async fn load_archive(&self, records: BTreeMap<u64, SegmentRecord>) -> Result<()> {
        let mut segments: Vec<SegmentRecord> = Vec::with_capacity(records.len());
        for (index, record) in records {
            if index != segments.len() as u64 {
                warn!(index, "segment records have a gap; rebuilding them from the tiers");
                segments.clear();
                break;
            }
            segments.push(record);
        }
        if segments.is_empty() {
            match self.adopt_from_tiers().await {
                Ok(adopted) => segments = adopted,
                Err(error) => warn!(%error, "cannot read the archive's manifests from the tiers now"),
            }
        }
        let heads = match segments.last() {
            Some(last) => {
                let cid: Cid = last.info.checkpoint.parse().map_err(|_| Error::Archive("a checkpoint CID".into()))?;
                let checkpoint = self.load_checkpoint(&cid).await?;
                checkpoint.heads.into_iter().map(|h| (h.aggregate, (h.version, h.head, h.seq))).collect()
            }
            None => Heads::new(),
        };
        info!(
            segments = segments.len(),
            sealed_through = segments.last().map_or(0, |s| s.info.last_seq),
            "archive loaded"
        );
        *self.inner.archive.write().await = Archive { segments, heads };
        Ok(())
    }

    /// The manifest chain as the tiers hold it (warm, else cold), checked,
    /// as segment records not yet verified (a scrub verifies them).
    async fn adopt_from_tiers(&self) -> Result<Vec<SegmentRecord>> {
        let mut last_error = None;
        for tier in self.tiers() {
            match self.read_chain(tier).await {
                Ok(chain) if chain.is_empty() => continue,
                Ok(chain) => {
                    info!(tier = %tier.name(), segments = chain.len(), "adopting the archive's manifests found on the tier");
                    let mut records = Vec::with_capacity(chain.len());
                    for (cid, manifest) in chain {
                        let record = SegmentRecord {
                            info: segment_info(&cid, &manifest),
                            newest_event_us: manifest.sealed_us.unix_micros(),
                            verified: BTreeMap::new(),
                        };
                        self.inner.state.put_segment(&record).await?;
                        records.push(record);
                    }
                    return Ok(records);
                }
                Err(error) => last_error = Some(error),
            }
        }
        match last_error {
            Some(error) => Err(error),
            None => Ok(Vec::new()),
        }
    }

    /// Records the objects the tiers hold, on a host whose state is empty
    /// (fresh, or rebuilt): listed, not yet verified by this manager (a
    /// scrub or a copy verifies them; `objects.list` shows them for a
    /// restore, which verifies every one itself).
    async fn adopt_objects(&self) -> Result<()> {
        let mut found: BTreeMap<String, ObjectRecord> = BTreeMap::new();
        for tier in self.tiers() {
            for listed in tier.list(ItemKind::Objects).await? {
                let Some((_, cid, _)) = Tier::parse_key(&listed.key) else { continue };
                let record = found
                    .entry(cid.to_string())
                    .or_insert_with(|| ObjectRecord { size: listed.size, ..ObjectRecord::default() });
                record.verified.insert(tier.name(), 0);
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        info!(objects = found.len(), "adopting the objects found on the tiers (not yet verified here)");
        for (cid, record) in &found {
            self.inner.state.put_object(cid, record).await?;
        }
        *self.inner.object_records.lock().await = found;
        Ok(())
    }

    /// Reads and checks the manifest chain on `tier`, oldest first.
    pub(crate) async fn read_chain(&self, tier: &Tier) -> Result<Vec<(Cid, SegmentManifest)>> {
        let mut chain = Vec::new();
        for listed in tier.list(ItemKind::Manifests).await? {
            let Some((_, cid, _)) = Tier::parse_key(&listed.key) else { continue };
            let bytes = tier.get(&listed.key).await?.ok_or(Error::NotFound { kind: ItemKind::Manifests, cid })?;
            let manifest = SegmentManifest::decode(&cid, &bytes).map_err(|e| Error::Corrupt {
                tier: Some(tier.name()),
                kind: ItemKind::Manifests,
                cid,
                reason: e.to_string(),
            })?;
            chain.push((cid, manifest));
        }
        cim_archive::segment::check_chain(&chain).map_err(|e| Error::Archive(e.to_string()))?;
        Ok(chain)
    }

    /// A checkpoint object, from hot or else a tier, verified.
    pub(crate) async fn load_checkpoint(&self, cid: &Cid) -> Result<Checkpoint> {
        let bytes = self.read_object(cid).await?;
        Ok(Checkpoint::decode(cid, &bytes)?)
    }

    /// A small object's bytes from hot, else warm, else cold; verified.
    pub(crate) async fn read_object(&self, cid: &Cid) -> Result<Vec<u8>> {
        match self.inner.objects.get_bytes(cid).await {
            Ok(bytes) => return Ok(bytes),
            Err(cim_store::Error::ObjectNotFound(_)) => {}
            Err(error) => warn!(%cid, %error, "reading an object from hot failed; trying the tiers"),
        }
        let key = Tier::key(ItemKind::Objects, cid, None);
        for tier in self.tiers() {
            let Some(bytes) = tier.get(&key).await? else { continue };
            let actual = cim_cid::cid_from_digest(cid.codec(), &{
                let mut hasher = cim_cid::RawHasher::default();
                hasher.update(&bytes);
                hasher.digest()
            });
            if actual == *cid {
                return Ok(bytes.to_vec());
            }
            warn!(tier = %tier.name(), %cid, %actual, "a tier holds a corrupt copy; trying the other");
        }
        Err(Error::NotFound { kind: ItemKind::Objects, cid: *cid })
    }

    /// The status: hot, tiers, lag, last scrub.
    pub async fn status(&self) -> Result<Status> {
        let log = self.inner.events.log_state().await?;
        let usage = self.inner.objects.usage().await?;
        let archive = self.inner.archive.read().await;
        let records = self.inner.object_records.lock().await;
        let retention = self.inner.retention.lock().await.clone();
        let hot_objects = self.inner.hot_objects.load(Ordering::Relaxed);
        let mut tiers = Vec::new();
        for tier in self.tiers() {
            let name = tier.name();
            let verified = |r: &&ObjectRecord| r.verified.get(&name).is_some_and(|&us| us > 0) && !r.collected;
            let objects: Vec<&ObjectRecord> = records.values().filter(verified).collect();
            let segments: Vec<&SegmentRecord> =
                archive.segments.iter().filter(|s| s.verified.get(&name).is_some_and(|&us| us > 0)).collect();
            let verified_through = archive
                .segments
                .iter()
                .take_while(|s| s.verified.get(&name).is_some_and(|&us| us > 0))
                .last()
                .map_or(0, |s| s.info.last_seq);
            let counters = tier.counters();
            let last_error = tier.last_error();
            tiers.push(TierStatus {
                name: name.to_string(),
                endpoint: tier.endpoint().to_owned(),
                bucket: tier.bucket().to_owned(),
                prefix: tier.prefix().to_owned(),
                reachable: last_error.is_none(),
                last_error,
                objects: objects.len() as u64,
                object_bytes: objects.iter().map(|r| r.size).sum(),
                segments: segments.len() as u64,
                segment_bytes: segments.iter().map(|s| s.info.bytes).sum(),
                lag_events: log.last_seq.saturating_sub(verified_through),
                lag_objects: self.inner.lag_objects[usize::from(name == TierName::Cold)].load(Ordering::Relaxed),
                written: counters.written.load(Ordering::Relaxed),
                written_bytes: counters.written_bytes.load(Ordering::Relaxed),
                skipped_present: counters.skipped_present.load(Ordering::Relaxed),
            });
        }
        let sealed_through = archive.sealed_through();
        Ok(Status {
            namespace: self.inner.store.namespace.clone(),
            instance: self.inner.instance.clone(),
            hot: HotStatus {
                first_seq: log.first_seq,
                last_seq: log.last_seq,
                events: log.events,
                event_bytes: log.bytes,
                objects: hot_objects,
                object_bytes: usage.bytes,
                dropped_through_seq: retention.dropped_through_seq,
            },
            segments: archive.segments.len() as u64,
            sealed_through_seq: sealed_through,
            manifest_head: archive.head_manifest().map(|c| c.to_string()),
            tiers,
            last_scrub: self.inner.last_scrub.lock().await.clone(),
            restore_needed: log.last_seq < sealed_through,
            busy: self.inner.busy.lock().expect("busy lock").iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// Refreshes the metrics' gauges from the status.
    pub async fn update_gauges(&self) {
        match self.status().await {
            Ok(status) => self.inner.metrics.set_status(&status),
            Err(error) => warn!(%error, "cannot compute the status for the metrics"),
        }
    }

    /// Fails with [`Error::RestoreNeeded`] when hot is behind the archive.
    pub(crate) async fn require_hot_complete(&self) -> Result<()> {
        let log = self.inner.events.log_state().await?;
        let sealed = self.inner.archive.read().await.sealed_through();
        if log.last_seq < sealed {
            return Err(Error::RestoreNeeded { hot_last_seq: log.last_seq, archive_last_seq: sealed });
        }
        Ok(())
    }

    /// Lists each tier once before anything is written to it, so a missing
    /// bucket, wrong credentials or a dead endpoint is named at once (some
    /// providers — s3s-fs — create a missing bucket's directory on a PUT,
    /// see [`crate::quirks`]).
    pub(crate) async fn require_tiers(&self) -> Result<()> {
        for tier in self.tiers() {
            tier.check().await?;
        }
        Ok(())
    }
}

/// The API's view of a manifest.
pub(crate) fn segment_info(cid: &Cid, manifest: &SegmentManifest) -> SegmentInfo {
    SegmentInfo {
        index: manifest.index,
        manifest: cid.to_string(),
        segment: manifest.segment.to_string(),
        header: manifest.header.to_string(),
        first_seq: manifest.first_seq,
        last_seq: manifest.last_seq,
        events: manifest.events,
        bytes: manifest.bytes,
        checkpoint: manifest.checkpoint.to_string(),
        names: manifest.names.map(|c| c.to_string()),
        sealed_us: manifest.sealed_us.unix_micros(),
    }
}
