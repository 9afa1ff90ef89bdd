//! Garbage collection of unreferenced objects.
//!
//! Mark: every IPLD link in every event (hot, and the archived segments hot
//! dropped), every version record of every name and the content it links,
//! and the archive's own objects (checkpoints, names snapshots), and
//! transitively every link inside the dag-cbor objects reached. Units are
//! events, so their attachments are marked with them.
//!
//! Sweep: an object not marked is remembered as unreferenced since now; once
//! it stayed unreferenced for the grace period it is deleted from hot, warm
//! and cold. A dry run reports and deletes nothing; so does a manager whose
//! `[storage.gc] enabled` is false.

use std::collections::{BTreeMap, HashSet};

use cim_archive::segment::NamesSnapshot;
use cim_cid::{Cid, DAG_CBOR, Ipld};
use cim_storage_api::{GcItem, GcReport, ItemKind};
use cim_store::StartAt;
use futures::StreamExt;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::manager::{Manager, now_us};
use crate::tier::Tier;

impl Manager {
    /// Collects garbage now (with `dry_run`, or when collection is disabled,
    /// only reports).
    ///
    /// # Errors
    /// Hot is behind the archive (its references are not all readable),
    /// or reading the events or a tier fails: nothing is swept then.
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport> {
        let _op = self.inner.ops.gc.lock().await;
        let _busy = self.busy("gc");
        self.require_hot_complete().await?;
        let policy = self.inner.settings.gc.clone();
        let dry_run = dry_run || !policy.enabled;
        let marked = self.mark().await?;
        let mut known: BTreeMap<String, u64> = BTreeMap::new();
        for meta in self.inner.objects.list().await? {
            known.insert(meta.cid.to_string(), meta.size);
        }
        for (cid, record) in self.inner.object_records.lock().await.iter().filter(|(_, r)| !r.collected) {
            known.entry(cid.clone()).or_insert(record.size);
        }
        for tier in self.tiers() {
            for listed in tier.list(ItemKind::Objects).await? {
                if let Some((_, cid, _)) = Tier::parse_key(&listed.key) {
                    known.entry(cid.to_string()).or_insert(listed.size);
                }
            }
        }
        let now = now_us();
        let grace_us = i64::try_from(policy.grace_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
        let mut report =
            GcReport { dry_run, grace_secs: policy.grace_secs, referenced: marked.len() as u64, ..GcReport::default() };
        for (cid_text, size) in known {
            let Ok(cid) = cid_text.parse::<Cid>() else { continue };
            let mut records = self.inner.object_records.lock().await;
            let record = records
                .entry(cid_text.clone())
                .or_insert_with(|| crate::state::ObjectRecord { size, ..Default::default() });
            if marked.contains(&cid) {
                if record.unreferenced_since_us.take().is_some() {
                    self.inner.state.put_object(&cid_text, record).await?;
                }
                continue;
            }
            let since = *record.unreferenced_since_us.get_or_insert(now);
            if since == now {
                self.inner.state.put_object(&cid_text, record).await?;
            }
            let due = now - since >= grace_us;
            report.unreferenced.push(GcItem { cid: cid_text.clone(), size, unreferenced_since_us: since, due });
            if !due || dry_run {
                continue;
            }
            drop(records);
            self.inner.objects.delete(&cid).await?;
            let key = Tier::key(ItemKind::Objects, &cid, None);
            for tier in self.tiers() {
                tier.delete(&key).await?;
            }
            let mut records = self.inner.object_records.lock().await;
            let record = records.entry(cid_text.clone()).or_default();
            record.collected = true;
            record.verified.clear();
            self.inner.state.put_object(&cid_text, record).await?;
            report.swept += 1;
            report.swept_bytes += size;
            self.inner.metrics.objects_collected.inc();
        }
        info!(
            referenced = report.referenced,
            unreferenced = report.unreferenced.len(),
            swept = report.swept,
            dry_run,
            "garbage collection"
        );
        Ok(report)
    }

    /// Every object CID something references.
    async fn mark(&self) -> Result<HashSet<Cid>> {
        let mut marked = HashSet::new();
        let mut pending: Vec<Cid> = Vec::new();
        // Events dropped from hot: from the archived segments.
        let log = self.inner.events.log_state().await?;
        let segments = self.inner.archive.read().await.segments.clone();
        for segment in segments.iter().filter(|s| s.info.first_seq < log.first_seq) {
            let cid: Cid = segment.info.segment.parse().map_err(|_| Error::Archive("segment CID".into()))?;
            let bytes = self.read_tier_item(ItemKind::Segments, &cid).await?;
            let read = cim_archive::segment::read_segment(&bytes, Some(&cid)).await?;
            for (_, event) in read.events {
                cim_archive::manifest::links(event.envelope.payload(), &mut pending);
            }
        }
        // Events in hot.
        let mut events = self.inner.events.read_log(StartAt::Beginning).await?;
        while let Some(item) = events.next().await {
            match item {
                Ok(stored) => cim_archive::manifest::links(stored.event.envelope.payload(), &mut pending),
                Err(error) => return Err(Error::Invalid(format!("cannot mark from every event: {error}"))),
            }
        }
        drop(events);
        // Names and their whole histories.
        for name in self.inner.named.names().await? {
            for record in self.inner.named.history(&name).await? {
                pending.push(record.cid);
                pending.push(record.record.content);
            }
        }
        // The archive's own objects.
        for segment in &segments {
            if let Ok(cid) = segment.info.checkpoint.parse() {
                pending.push(cid);
            }
            if let Some(Ok(names)) = segment.info.names.as_deref().map(str::parse::<Cid>) {
                pending.push(names);
                match self.read_object(&names).await.map(|b| NamesSnapshot::decode(&names, &b)) {
                    Ok(Ok(snapshot)) => pending.extend(snapshot.names.iter().map(|n| n.head)),
                    Ok(Err(error)) => warn!(%names, %error, "a names snapshot is unreadable"),
                    Err(error) => warn!(%names, %error, "a names snapshot is unreadable"),
                }
            }
        }
        // Transitively through dag-cbor objects.
        while let Some(cid) = pending.pop() {
            if !marked.insert(cid) || cid.codec() != DAG_CBOR {
                continue;
            }
            match self.read_object(&cid).await {
                Ok(bytes) => {
                    if let Ok(value) = cim_cid::decode_dag_cbor::<Ipld>("object", &bytes) {
                        cim_archive::manifest::links(&value, &mut pending);
                    }
                }
                // A link to an object nobody stored (or an event CID): nothing inside to follow.
                Err(Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(marked)
    }

    /// A whole item from warm, else cold, verified.
    pub(crate) async fn read_tier_item(&self, kind: ItemKind, cid: &Cid) -> Result<bytes::Bytes> {
        let key = self.key_of(kind, cid).await;
        for tier in self.tiers() {
            let Some(bytes) = tier.get(&key).await? else { continue };
            let mut hasher = cim_cid::RawHasher::default();
            hasher.update(&bytes);
            if cim_cid::cid_from_digest(cid.codec(), &hasher.digest()) == *cid {
                return Ok(bytes);
            }
            warn!(tier = %tier.name(), %kind, %cid, "a tier holds a corrupt copy; trying the other");
        }
        Err(Error::NotFound { kind, cid: *cid })
    }

    /// The key of an item (manifests need their index, from the archive).
    pub(crate) async fn key_of(&self, kind: ItemKind, cid: &Cid) -> String {
        if kind == ItemKind::Manifests {
            let text = cid.to_string();
            let archive = self.inner.archive.read().await;
            if let Some(segment) = archive.segments.iter().find(|s| s.info.manifest == text) {
                return Tier::key(kind, cid, Some(segment.info.index));
            }
        }
        Tier::key(kind, cid, None)
    }
}
