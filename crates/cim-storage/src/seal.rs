//! Sealing the event stream into segments.
//!
//! One seal, crash-safe in this order:
//! 1. the events after the last segment are read from hot (verified) into a
//!    segment file, up to the policy's size; the checkpoint at its end (the
//!    previous heads advanced by its events) and a snapshot of the names go
//!    into the hot object store;
//! 2. its manifest is drawn up and recorded as `seal.pending` — from here a
//!    restart redoes exactly this seal (the segment is rebuilt from the same
//!    events, so it has the same CID);
//! 3. the segment, then the checkpoint and names objects, then the manifest
//!    are put on both tiers and read back ([`crate::copy::ensure_on`], which
//!    skips what a tier already holds intact);
//! 4. only then is the segment recorded as sealed.
//!
//! So a manifest on a tier only ever names a segment both tiers hold
//! verified, and a restart copies nothing twice.

use std::collections::BTreeMap;

use bytes::Bytes;
use cim_archive::manifest::NameHead;
use cim_archive::segment::{BuiltSegment, NamesSnapshot, SEGMENT_MANIFEST_FORMAT, SegmentBuilder, SegmentManifest};
use cim_cid::{Cid, Timestamp};
use cim_storage_api::{ItemKind, SealReport, SegmentInfo, TierName};
use cim_store::{CHECKPOINT_FORMAT, Checkpoint, CheckpointHead, StartAt};
use futures::StreamExt;
use tracing::info;

use crate::copy::{Ensured, Source, ensure_on};
use crate::error::{Error, Result};
use crate::manager::{Heads, Manager, now_us, segment_info};
use crate::state::{ObjectRecord, PendingSeal, SegmentRecord, hex, unhex};
use crate::tier::Tier;

/// A segment built locally, with its manifest drawn up.
struct Drafted {
    built: BuiltSegment,
    manifest_cid: Cid,
    manifest: SegmentManifest,
    manifest_bytes: Vec<u8>,
    heads: Heads,
    newest_event_us: i64,
}

impl Manager {
    /// Seals what the policy says is due (everything, with `force`), then
    /// copies objects down: the `seal` request and the periodic run.
    ///
    /// # Errors
    /// Hot is behind the archive, a tier fails, or the stream cannot be
    /// sealed (an unreadable or corrupt event).
    pub async fn seal_and_copy(&self, force: bool) -> Result<SealReport> {
        let sealed = self.seal(force).await?;
        let copied = self.copy_objects().await?;
        let sealed_through_seq = self.inner.archive.read().await.sealed_through();
        self.update_gauges().await;
        Ok(SealReport {
            sealed,
            objects_copied: copied.copied,
            object_bytes_copied: copied.bytes,
            already_present: copied.present,
            sealed_through_seq,
        })
    }

    /// Seals segments while the policy says one is due.
    pub async fn seal(&self, force: bool) -> Result<Vec<SegmentInfo>> {
        let _op = self.inner.ops.seal.lock().await;
        let _busy = self.busy("seal");
        self.require_hot_complete().await?;
        self.require_tiers().await?;
        let mut sealed = Vec::new();
        if let Some(info) = self.resume_pending().await? {
            sealed.push(info);
        }
        while self.seal_due(force).await? {
            let drafted = self.draft().await?;
            let info = self.commit(drafted).await?;
            sealed.push(info);
        }
        Ok(sealed)
    }

    /// Whether a segment should be sealed now: enough events or bytes wait,
    /// or the oldest waiting one is old enough; with `force`, any.
    async fn seal_due(&self, force: bool) -> Result<bool> {
        let log = self.inner.events.log_state().await?;
        let sealed = self.inner.archive.read().await.sealed_through();
        let waiting = log.last_seq.saturating_sub(sealed);
        if waiting == 0 {
            return Ok(false);
        }
        let policy = &self.inner.settings.seal;
        if force || waiting >= policy.max_events {
            return Ok(true);
        }
        let average = log.bytes.checked_div(log.events).unwrap_or(0);
        if waiting.saturating_mul(average) >= policy.max_bytes {
            return Ok(true);
        }
        if policy.max_age_secs == 0 {
            return Ok(false);
        }
        let mut first = self.inner.events.read_log_until(StartAt::Sequence(sealed + 1), sealed + 1).await?;
        let Some(first) = first.next().await else { return Ok(false) };
        let stored_at = match first {
            Ok(stored) => stored.stored_at.unix_micros(),
            // A corrupt event is due at once: sealing reports it.
            Err(_) => return Ok(true),
        };
        Ok(now_us() - stored_at >= i64::try_from(policy.max_age_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000))
    }

    /// Builds the next segment from hot and draws up its manifest.
    async fn draft(&self) -> Result<Drafted> {
        let archive = self.inner.archive.read().await.clone();
        let first_seq = archive.sealed_through() + 1;
        let policy = &self.inner.settings.seal;
        let log = self.inner.events.log_state().await?;
        let until = log.last_seq.min(first_seq + policy.max_events - 1);
        let (built, heads, newest_event_us) = self.build(first_seq, until, archive.heads.clone(), true).await?;
        let checkpoint =
            checkpoint(&self.inner.store.namespace, built.last_seq, archive.events() + built.events, &heads);
        let checkpoint_cid = self.inner.objects.put_ipld(&checkpoint).await?;
        let names = self.names_snapshot().await?;
        let names_cid = self.inner.objects.put_ipld(&names).await?;
        let manifest = SegmentManifest {
            format: SEGMENT_MANIFEST_FORMAT.to_owned(),
            namespace: self.inner.store.namespace.clone(),
            index: archive.segments.len() as u64,
            prev: archive.head_manifest(),
            segment: built.cid,
            header: built.header_cid,
            first_seq: built.first_seq,
            last_seq: built.last_seq,
            events: built.events,
            bytes: built.bytes,
            checkpoint: checkpoint_cid,
            names: Some(names_cid),
            sealed_us: Timestamp::now(),
        };
        let (manifest_cid, manifest_bytes) = manifest.encode()?;
        let pending = PendingSeal {
            index: manifest.index,
            manifest: manifest_cid.to_string(),
            manifest_hex: hex(&manifest_bytes),
            newest_event_us,
        };
        self.inner.state.put_pending(&pending).await?;
        *self.inner.pending.lock().await = Some(pending);
        info!(index = manifest.index, first_seq = built.first_seq, last_seq = built.last_seq, events = built.events, bytes = built.bytes, segment = %built.cid, "segment built");
        Ok(Drafted { built, manifest_cid, manifest, manifest_bytes, heads, newest_event_us })
    }

    /// Reads stream sequences `first_seq..=until` from hot into a segment
    /// (stopping early at the policy's size when `cut` is set), advancing
    /// `heads`. Returns the segment, the heads after it and the time of its
    /// newest event.
    async fn build(
        &self,
        first_seq: u64,
        until: u64,
        mut heads: Heads,
        cut: bool,
    ) -> Result<(BuiltSegment, Heads, i64)> {
        let policy = &self.inner.settings.seal;
        let mut builder = SegmentBuilder::new(&self.inner.work_dir, &self.inner.store.namespace, first_seq).await?;
        let mut events = self.inner.events.read_log_until(StartAt::Sequence(first_seq), until).await?;
        let mut expected = first_seq;
        let mut newest = 0;
        while let Some(item) = events.next().await {
            let stored = match item {
                Ok(stored) => stored,
                Err(cim_store::Error::CorruptEvent { seq, reason, .. }) => {
                    return Err(Error::Unsealable { seq, reason: format!("the event there is corrupt: {reason}") });
                }
                Err(error) => return Err(error.into()),
            };
            if stored.seq != expected {
                return Err(Error::Unsealable {
                    seq: expected,
                    reason: format!("the server cannot read it (the next readable event is at {})", stored.seq),
                });
            }
            let (cid, bytes) = stored.event.envelope.encode()?;
            if cid != stored.event.cid {
                return Err(Error::Unsealable { seq: stored.seq, reason: format!("it re-encodes to {cid}") });
            }
            builder.push(stored.seq, &cid, &bytes).await?;
            let envelope = &stored.event.envelope;
            heads.insert(envelope.aggregate().to_string(), (envelope.version(), cid, stored.seq));
            newest = newest.max(stored.stored_at.unix_micros());
            expected += 1;
            if cut && (builder.events() >= policy.max_events || builder.body_bytes() >= policy.max_bytes) {
                break;
            }
        }
        drop(events);
        if expected <= until && !cut {
            return Err(Error::Unsealable { seq: expected, reason: "the stream ends before it".to_owned() });
        }
        if builder.events() == 0 {
            return Err(Error::Unsealable { seq: first_seq, reason: "no readable event there".to_owned() });
        }
        Ok((builder.finish(&self.inner.work_dir).await?, heads, newest))
    }

    /// Every name and its latest version record.
    async fn names_snapshot(&self) -> Result<NamesSnapshot> {
        let mut names = Vec::new();
        for name in self.inner.named.names().await? {
            if let Some(record) = self.inner.named.head(&name).await? {
                names.push(NameHead { name, head: record.cid });
            }
        }
        Ok(NamesSnapshot::new(names))
    }

    /// Finishes a seal a crash interrupted: rebuilds its segment from hot
    /// (the same events give the same bytes) and completes its copies.
    async fn resume_pending(&self) -> Result<Option<SegmentInfo>> {
        let Some(pending) = self.inner.pending.lock().await.clone() else { return Ok(None) };
        let archive = self.inner.archive.read().await.clone();
        let cid: Cid = pending.manifest.parse().map_err(|_| Error::Archive("pending manifest CID".into()))?;
        let bytes = unhex(&pending.manifest_hex).ok_or_else(|| Error::Archive("pending manifest bytes".into()))?;
        let manifest = SegmentManifest::decode(&cid, &bytes).map_err(|e| Error::Archive(e.to_string()))?;
        if manifest.index != archive.segments.len() as u64 || manifest.prev != archive.head_manifest() {
            info!(index = manifest.index, "a pending seal does not follow the archive; dropping it");
            self.inner.state.clear_pending().await?;
            *self.inner.pending.lock().await = None;
            return Ok(None);
        }
        info!(
            index = manifest.index,
            first_seq = manifest.first_seq,
            last_seq = manifest.last_seq,
            "resuming an interrupted seal"
        );
        let (built, heads, _) = self.build(manifest.first_seq, manifest.last_seq, archive.heads.clone(), false).await?;
        if built.cid != manifest.segment {
            return Err(Error::Archive(format!(
                "the interrupted seal of sequences {}..={} made segment {}, the same events now make {}",
                manifest.first_seq, manifest.last_seq, manifest.segment, built.cid
            )));
        }
        let drafted = Drafted {
            built,
            manifest_cid: cid,
            manifest,
            manifest_bytes: bytes,
            heads,
            newest_event_us: pending.newest_event_us,
        };
        self.commit(drafted).await.map(Some)
    }

    /// Puts a drafted segment, its checkpoint and names, and its manifest on
    /// both tiers, verified, then records it.
    async fn commit(&self, drafted: Drafted) -> Result<SegmentInfo> {
        let Drafted { built, manifest_cid, manifest, manifest_bytes, heads, newest_event_us } = drafted;
        let single = self.inner.settings.copy.single_put_max_bytes;
        let segment_key = Tier::key(ItemKind::Segments, &built.cid, None);
        let source = Source::File(built.path.to_path_buf());
        let (warm, cold) = self.tiers().split_first().map(|(w, rest)| (w, &rest[0])).expect("two tiers");
        futures::try_join!(
            ensure_on(warm, ItemKind::Segments, &segment_key, &built.cid, built.bytes, &source, single),
            ensure_on(cold, ItemKind::Segments, &segment_key, &built.cid, built.bytes, &source, single),
        )?;
        let mut linked = vec![manifest.checkpoint];
        linked.extend(manifest.names);
        for cid in &linked {
            self.copy_object_to_both(cid).await?;
        }
        let manifest_key = Tier::key(ItemKind::Manifests, &manifest_cid, Some(manifest.index));
        let source = Source::Bytes(Bytes::from(manifest_bytes.clone()));
        let size = manifest_bytes.len() as u64;
        let (w, c) = futures::try_join!(
            ensure_on(warm, ItemKind::Manifests, &manifest_key, &manifest_cid, size, &source, single),
            ensure_on(cold, ItemKind::Manifests, &manifest_key, &manifest_cid, size, &source, single),
        )?;
        let now = now_us();
        let record = SegmentRecord {
            info: segment_info(&manifest_cid, &manifest),
            newest_event_us,
            verified: BTreeMap::from([(TierName::Warm, now), (TierName::Cold, now)]),
        };
        self.inner.state.put_segment(&record).await?;
        self.inner.state.clear_pending().await?;
        *self.inner.pending.lock().await = None;
        {
            let mut archive = self.inner.archive.write().await;
            archive.segments.push(record.clone());
            archive.heads = heads;
        }
        self.inner.metrics.segments_sealed.inc();
        info!(
            index = manifest.index,
            manifest = %manifest_cid,
            segment = %built.cid,
            last_seq = manifest.last_seq,
            manifest_written = ?(w == Ensured::Written, c == Ensured::Written),
            "segment sealed and verified on both tiers"
        );
        Ok(record.info)
    }

    /// Copies one hot object to both tiers, verified, and records it.
    pub(crate) async fn copy_object_to_both(&self, cid: &Cid) -> Result<(u64, bool)> {
        let meta = self.inner.objects.stat(cid).await?.ok_or(Error::NotFound { kind: ItemKind::Objects, cid: *cid })?;
        let key = Tier::key(ItemKind::Objects, cid, None);
        let source = Source::Hot(self.inner.objects.clone());
        let single = self.inner.settings.copy.single_put_max_bytes;
        let known = self.inner.object_records.lock().await.get(&cid.to_string()).cloned().unwrap_or_default();
        let need = |tier: TierName| !known.verified_on(tier);
        let (warm, cold) = (self.tier(TierName::Warm), self.tier(TierName::Cold));
        let (w, c) = futures::try_join!(
            async {
                if need(TierName::Warm) {
                    ensure_on(warm, ItemKind::Objects, &key, cid, meta.size, &source, single).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if need(TierName::Cold) {
                    ensure_on(cold, ItemKind::Objects, &key, cid, meta.size, &source, single).await.map(Some)
                } else {
                    Ok(None)
                }
            },
        )?;
        let now = now_us();
        let mut record = ObjectRecord { size: meta.size, ..known };
        if w.is_some() {
            record.verified.insert(TierName::Warm, now);
        }
        if c.is_some() {
            record.verified.insert(TierName::Cold, now);
        }
        self.inner.state.put_object(&cid.to_string(), &record).await?;
        self.inner.object_records.lock().await.insert(cid.to_string(), record);
        let written = [w, c].iter().filter(|e| **e == Some(Ensured::Written)).count() as u64;
        Ok((written * meta.size, written > 0))
    }
}

/// The checkpoint of `heads` at `through_seq`.
pub(crate) fn checkpoint(namespace: &str, through_seq: u64, events: u64, heads: &Heads) -> Checkpoint {
    Checkpoint {
        format: CHECKPOINT_FORMAT.to_owned(),
        namespace: namespace.to_owned(),
        through_seq,
        events,
        heads: heads
            .iter()
            .map(|(aggregate, (version, head, seq))| CheckpointHead {
                aggregate: aggregate.clone(),
                version: *version,
                head: *head,
                seq: *seq,
            })
            .collect(),
    }
}
