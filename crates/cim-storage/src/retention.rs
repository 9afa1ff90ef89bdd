//! Retention: the hot tier drops sealed segments' events and objects, by
//! the policy, and only what both lower tiers hold verified — re-hashed on
//! both right before it is dropped.
//!
//! Events: the segments to drop are chosen oldest first; their last
//! sequence *t* and the checkpoint at *t* (already in the archive, and put
//! back into hot if hot lost it) are recorded in the stream first, as an
//! `EventsDropped` event of `storage/retention`, and only then is the stream
//! purged below *t* + 1. A rebuild of the stream starts from that
//! checkpoint (`cim_store::EventStore::start_checkpoint`).
//!
//! Objects: raw blobs, oldest first by the time hot stored them.
//! Structured (dag-cbor) objects stay: they are small, and the store's own
//! structures read them (name version records, the checkpoint rebuilds
//! start from).

use cim_cid::{AggregateKey, Cid, NewEvent};
use cim_storage_api::{ItemKind, RetentionReport};
use cim_store::{EVENTS_DROPPED, ExpectedVersion, RETENTION_AGGREGATE_ID, RETENTION_AGGREGATE_TYPE, RetentionPoint};
use tracing::info;

use crate::copy::verify;
use crate::error::{Error, Result};
use crate::manager::{Manager, now_us};
use crate::state::RetentionRecord;
use crate::tier::Tier;

impl Manager {
    /// Applies the retention policy now (with `dry_run`, only reports).
    ///
    /// # Errors
    /// Hot is behind the archive, a tier fails, or something to drop is no
    /// longer intact on both tiers (then nothing of it is dropped).
    pub async fn retention(&self, dry_run: bool) -> Result<RetentionReport> {
        let _op = self.inner.ops.retention.lock().await;
        let _busy = self.busy("retention");
        self.require_hot_complete().await?;
        let mut report = RetentionReport { dry_run, ..RetentionReport::default() };
        self.drop_events(dry_run, &mut report).await?;
        self.drop_objects(dry_run, &mut report).await?;
        self.update_gauges().await;
        Ok(report)
    }

    async fn drop_events(&self, dry_run: bool, report: &mut RetentionReport) -> Result<()> {
        let policy = &self.inner.settings.retention;
        if policy.events_max_age_secs == 0 && policy.events_max_hot == 0 {
            return Ok(());
        }
        let log = self.inner.events.log_state().await?;
        let archive = self.inner.archive.read().await.clone();
        let previous = self.inner.retention.lock().await.clone();
        let dropped = previous.dropped_through_seq;
        report.events_dropped_through_seq = dropped;
        let now = now_us();
        let mut hot_events = log.events;
        let mut through = None;
        for segment in archive.segments.iter().filter(|s| s.info.last_seq > dropped) {
            let old = policy.events_max_age_secs > 0
                && now - segment.newest_event_us
                    >= i64::try_from(policy.events_max_age_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
            let too_many = policy.events_max_hot > 0 && hot_events > policy.events_max_hot;
            if !(old || too_many) || !segment.verified_on_both() {
                break;
            }
            hot_events = hot_events.saturating_sub(segment.info.events);
            through = Some(segment.clone());
        }
        let Some(last) = through else { return Ok(()) };
        let t = last.info.last_seq;
        let checkpoint: Cid = last.info.checkpoint.parse().map_err(|_| Error::Archive("checkpoint CID".into()))?;
        report.checkpoint = Some(checkpoint.to_string());
        report.events_dropped_through_seq = t;
        if dry_run {
            report.events_dropped = archive
                .segments
                .iter()
                .filter(|s| s.info.last_seq > dropped && s.info.last_seq <= t)
                .map(|s| s.info.events)
                .sum();
            return Ok(());
        }
        // Re-verify, on both tiers, every segment and manifest to drop and
        // the checkpoint the stream will start from.
        for segment in archive.segments.iter().filter(|s| s.info.last_seq > dropped && s.info.last_seq <= t) {
            let cid: Cid = segment.info.segment.parse().map_err(|_| Error::Archive("segment CID".into()))?;
            let manifest: Cid = segment.info.manifest.parse().map_err(|_| Error::Archive("manifest CID".into()))?;
            for tier in self.tiers() {
                self.require_intact(tier, ItemKind::Segments, &Tier::key(ItemKind::Segments, &cid, None), &cid).await?;
                let key = Tier::key(ItemKind::Manifests, &manifest, Some(segment.info.index));
                self.require_intact(tier, ItemKind::Manifests, &key, &manifest).await?;
            }
        }
        for tier in self.tiers() {
            let key = Tier::key(ItemKind::Objects, &checkpoint, None);
            self.require_intact(tier, ItemKind::Objects, &key, &checkpoint).await?;
        }
        // The checkpoint must be in hot for rebuilds.
        if self.inner.objects.stat(&checkpoint).await?.is_none() {
            let bytes = self.read_object(&checkpoint).await?;
            self.inner.objects.put_expecting(bytes.as_slice(), &checkpoint).await?;
        }
        let new_checkpoint = self.load_checkpoint(&checkpoint).await?;
        let previous_checkpoint = match previous.checkpoint.as_deref().map(str::parse::<Cid>) {
            Some(Ok(cid)) => Some(self.load_checkpoint(&cid).await?),
            _ => None,
        };
        let point = RetentionPoint { through_seq: t, checkpoint };
        let aggregate = AggregateKey::new(RETENTION_AGGREGATE_TYPE, RETENTION_AGGREGATE_ID)?;
        let event = NewEvent::new(EVENTS_DROPPED, point.to_payload());
        self.inner.events.append(&aggregate, ExpectedVersion::Any, vec![event]).await?;
        let purged = self.inner.events.drop_before_heads(&new_checkpoint, previous_checkpoint.as_ref()).await?;
        let record = RetentionRecord { dropped_through_seq: t, checkpoint: Some(checkpoint.to_string()) };
        self.inner.state.put_retention(&record).await?;
        *self.inner.retention.lock().await = record;
        report.events_dropped = purged;
        self.inner.metrics.events_dropped.inc_by(purged);
        info!(through_seq = t, purged, %checkpoint, "dropped sealed events from hot (each aggregate's head stays)");
        Ok(())
    }

    async fn drop_objects(&self, dry_run: bool, report: &mut RetentionReport) -> Result<()> {
        let policy = &self.inner.settings.retention;
        if policy.objects_max_age_secs == 0 && policy.objects_max_hot_bytes == 0 && policy.objects_max_hot_count == 0 {
            return Ok(());
        }
        let pinned: Option<Cid> = self.inner.retention.lock().await.checkpoint.as_deref().and_then(|c| c.parse().ok());
        let pinned = report.checkpoint.as_deref().and_then(|c| c.parse().ok()).or(pinned);
        let mut hot = self.inner.objects.list().await?;
        hot.sort_by_key(|m| m.stored_at.map_or(0, |t| t.unix_micros()));
        let now = now_us();
        let mut count = hot.len() as u64;
        let mut bytes: u64 = hot.iter().map(|m| m.size).sum();
        let records = self.inner.object_records.lock().await.clone();
        let mut chosen = Vec::new();
        for meta in &hot {
            let old = policy.objects_max_age_secs > 0
                && meta.stored_at.is_some_and(|t| {
                    now - t.unix_micros()
                        >= i64::try_from(policy.objects_max_age_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000)
                });
            let over = (policy.objects_max_hot_bytes > 0 && bytes > policy.objects_max_hot_bytes)
                || (policy.objects_max_hot_count > 0 && count > policy.objects_max_hot_count);
            if !(old || over) {
                continue;
            }
            // Structured objects (name version records, checkpoints, names
            // snapshots) are small and the store's own structures read
            // them: they stay hot. Only raw blobs are dropped.
            if Some(meta.cid) == pinned || meta.cid.codec() != cim_cid::RAW {
                continue;
            }
            if !records.get(&meta.cid.to_string()).is_some_and(|r| r.verified_on_both()) {
                continue;
            }
            count -= 1;
            bytes -= meta.size;
            chosen.push(meta.clone());
        }
        for meta in chosen {
            if !dry_run {
                let key = Tier::key(ItemKind::Objects, &meta.cid, None);
                for tier in self.tiers() {
                    self.require_intact(tier, ItemKind::Objects, &key, &meta.cid).await?;
                }
                self.inner.objects.delete(&meta.cid).await?;
                let mut records = self.inner.object_records.lock().await;
                let record = records.entry(meta.cid.to_string()).or_default();
                record.dropped_from_hot_us = Some(now_us());
                self.inner.state.put_object(&meta.cid.to_string(), record).await?;
                self.inner.metrics.objects_dropped.inc();
            }
            report.object_bytes_dropped += meta.size;
            report.objects_dropped.push(meta.cid.to_string());
        }
        if !dry_run && !report.objects_dropped.is_empty() {
            info!(
                objects = report.objects_dropped.len(),
                bytes = report.object_bytes_dropped,
                "dropped objects from hot"
            );
        }
        Ok(())
    }

    /// Re-hashes an item on a tier; an error unless it is intact there.
    async fn require_intact(&self, tier: &Tier, kind: ItemKind, key: &str, cid: &Cid) -> Result<()> {
        match verify(tier, kind, key, cid).await? {
            Ok(()) => Ok(()),
            Err(reason) => Err(Error::Corrupt {
                tier: Some(tier.name()),
                kind,
                cid: *cid,
                reason: format!("{reason}: not dropping it from hot; run a scrub"),
            }),
        }
    }
}
