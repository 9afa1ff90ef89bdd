//! Scrubbing: every item on every tier re-hashed against its CID; what is
//! missing or corrupt reported by tier, key and CID, and repaired from a
//! good copy (the other tier, whose copy the same scrub has just verified,
//! else hot for objects it still holds) and re-verified after writing.

use std::collections::{BTreeMap, HashMap};

use cim_cid::Cid;
use cim_storage_api::{Finding, ItemKind, ScrubReport, TierName};
use futures::StreamExt;
use tracing::{info, warn};

use crate::copy::{Source, ensure_on};
use crate::error::Result;
use crate::manager::{Manager, now_us};
use crate::state::ObjectRecord;
use crate::tier::Tier;

/// One item the archive should hold.
#[derive(Debug, Clone)]
struct Item {
    kind: ItemKind,
    key: String,
    cid: Cid,
    size: u64,
}

/// What re-hashing one item on one tier found.
#[derive(Debug)]
enum Checked {
    Good,
    Missing,
    Corrupt(String),
    Unreadable(String),
}

impl Manager {
    /// Scrubs every tier now; repairs unless `repair` is false.
    ///
    /// # Errors
    /// A tier cannot be listed at all (the report would be meaningless).
    pub async fn scrub(&self, repair: bool) -> Result<ScrubReport> {
        let _op = self.inner.ops.scrub.lock().await;
        let _busy = self.busy("scrub");
        let started_us = now_us();
        let mut listings: [HashMap<String, u64>; 2] = Default::default();
        for (slot, tier) in self.tiers().iter().enumerate() {
            for kind in ItemKind::ALL {
                for listed in tier.list(kind).await? {
                    listings[slot].insert(listed.key, listed.size);
                }
            }
        }
        let items = self.expected_items(&listings).await;
        info!(items = items.len(), "scrubbing both tiers");
        let checks: Vec<(usize, Item, Checked)> = futures::stream::iter(
            items.iter().flat_map(|item| (0..2).map(move |slot| (slot, item.clone()))).collect::<Vec<_>>(),
        )
        .map(|(slot, item)| {
            let tier = self.inner.tiers[slot].clone();
            let present = listings[slot].contains_key(&item.key);
            async move {
                let checked = if present { check(&tier, &item).await } else { Checked::Missing };
                (slot, item, checked)
            }
        })
        .buffer_unordered(self.inner.settings.scrub.concurrency)
        .collect()
        .await;

        let mut report = ScrubReport { started_us, ..ScrubReport::default() };
        let mut good: HashMap<(usize, String), ()> = HashMap::new();
        let mut bad = Vec::new();
        for (slot, item, checked) in checks {
            match checked {
                Checked::Good => {
                    report.items_checked += 1;
                    report.bytes_checked += item.size;
                    good.insert((slot, item.key.clone()), ());
                }
                Checked::Missing => bad.push((slot, item, "missing".to_owned(), String::new())),
                Checked::Corrupt(detail) => {
                    report.items_checked += 1;
                    report.bytes_checked += item.size;
                    bad.push((slot, item, "corrupt".to_owned(), detail));
                }
                Checked::Unreadable(detail) => bad.push((slot, item, "unreadable".to_owned(), detail)),
            }
        }
        let hot = self.inner.objects.clone();
        let mut repaired = Vec::new();
        for (slot, item, problem, detail) in bad {
            let tier = &self.inner.tiers[slot];
            let other = 1 - slot;
            warn!(tier = %tier.name(), kind = %item.kind, key = %item.key, cid = %item.cid, %problem, %detail, "scrub finding");
            let mut finding = Finding {
                tier: tier.name(),
                kind: item.kind,
                key: item.key.clone(),
                cid: item.cid.to_string(),
                problem,
                detail,
                repaired: false,
                repaired_from: None,
            };
            if repair {
                let in_hot =
                    || async { item.kind == ItemKind::Objects && hot.stat(&item.cid).await.ok().flatten().is_some() };
                let (source, from) = if good.contains_key(&(other, item.key.clone())) {
                    (Some(Source::Tier(self.inner.tiers[other].clone())), self.inner.tiers[other].name().to_string())
                } else if in_hot().await {
                    (Some(Source::Hot(hot.clone())), "hot".to_owned())
                } else {
                    (None, String::new())
                };
                if let Some(source) = source {
                    let single = self.inner.settings.copy.single_put_max_bytes;
                    match ensure_on(tier, item.kind, &item.key, &item.cid, item.size, &source, single).await {
                        Ok(_) => {
                            finding.repaired = true;
                            finding.repaired_from = Some(from);
                            repaired.push((slot, item.key.clone()));
                            info!(tier = %tier.name(), key = %item.key, "repaired");
                        }
                        Err(error) => {
                            finding.detail = format!("{}; repair failed: {error}", finding.detail);
                        }
                    }
                }
            }
            if finding.repaired {
                report.repaired += 1;
            } else {
                report.unrepaired += 1;
            }
            report.findings.push(finding);
        }
        for key in repaired {
            good.insert(key, ());
        }
        self.record_verified(&items, &good).await?;
        report.finished_us = now_us();
        self.inner.state.put_scrub(&report).await?;
        *self.inner.last_scrub.lock().await = Some(report.clone());
        self.inner.metrics.record_scrub(&report);
        self.update_gauges().await;
        info!(
            checked = report.items_checked,
            findings = report.findings.len(),
            repaired = report.repaired,
            "scrub done"
        );
        Ok(report)
    }

    /// Every item the archive should hold on both tiers: the segments and
    /// manifests of its chain, and every object it knows of (recorded, or
    /// found on either tier under a valid key).
    async fn expected_items(&self, listings: &[HashMap<String, u64>; 2]) -> Vec<Item> {
        let mut items = BTreeMap::new();
        let archive = self.inner.archive.read().await;
        for segment in &archive.segments {
            if let (Ok(cid), Ok(manifest)) = (segment.info.segment.parse::<Cid>(), segment.info.manifest.parse::<Cid>())
            {
                let key = Tier::key(ItemKind::Segments, &cid, None);
                items.insert(key.clone(), Item { kind: ItemKind::Segments, key, cid, size: segment.info.bytes });
                let key = Tier::key(ItemKind::Manifests, &manifest, Some(segment.info.index));
                let size = listings.iter().find_map(|l| l.get(&key).copied()).unwrap_or(0);
                items.insert(key.clone(), Item { kind: ItemKind::Manifests, key, cid: manifest, size });
            }
        }
        drop(archive);
        let records = self.inner.object_records.lock().await;
        for (cid, record) in records.iter().filter(|(_, r)| !r.collected) {
            if let Ok(cid) = cid.parse::<Cid>() {
                let key = Tier::key(ItemKind::Objects, &cid, None);
                items.insert(key.clone(), Item { kind: ItemKind::Objects, key, cid, size: record.size });
            }
        }
        drop(records);
        for listing in listings {
            for (key, size) in listing {
                if items.contains_key(key) {
                    continue;
                }
                if let Some((ItemKind::Objects, cid, _)) = Tier::parse_key(key) {
                    items.insert(key.clone(), Item { kind: ItemKind::Objects, key: key.clone(), cid, size: *size });
                }
            }
        }
        items.into_values().collect()
    }

    /// Marks items verified on the tiers where `good` says they are.
    async fn record_verified(&self, items: &[Item], good: &HashMap<(usize, String), ()>) -> Result<()> {
        let now = now_us();
        let tier_of = |slot: usize| if slot == 0 { TierName::Warm } else { TierName::Cold };
        let mut archive = self.inner.archive.write().await;
        let mut changed_segments = Vec::new();
        for segment in archive.segments.iter_mut() {
            let Ok(cid) = segment.info.segment.parse::<Cid>() else { continue };
            let key = Tier::key(ItemKind::Segments, &cid, None);
            let manifest_key = segment
                .info
                .manifest
                .parse::<Cid>()
                .map(|m| Tier::key(ItemKind::Manifests, &m, Some(segment.info.index)))
                .unwrap_or_default();
            if !items.iter().any(|i| i.key == key) {
                continue;
            }
            let mut changed = false;
            for slot in 0..2 {
                let verified =
                    good.contains_key(&(slot, key.clone())) && good.contains_key(&(slot, manifest_key.clone()));
                let entry = segment.verified.entry(tier_of(slot)).or_insert(0);
                let value = if verified { now } else { 0 };
                if *entry != value {
                    *entry = value;
                    changed = true;
                }
            }
            if changed {
                changed_segments.push(segment.clone());
            }
        }
        drop(archive);
        for segment in &changed_segments {
            self.inner.state.put_segment(segment).await?;
        }
        let mut records = self.inner.object_records.lock().await;
        for item in items.iter().filter(|i| i.kind == ItemKind::Objects) {
            let cid = item.cid.to_string();
            let record = records
                .entry(cid.clone())
                .or_insert_with(|| ObjectRecord { size: item.size, ..ObjectRecord::default() });
            for slot in 0..2 {
                if good.contains_key(&(slot, item.key.clone())) {
                    record.verified.insert(tier_of(slot), now);
                    if record.size == 0 {
                        record.size = item.size;
                    }
                } else {
                    record.verified.remove(&tier_of(slot));
                }
            }
            self.inner.state.put_object(&cid, record).await?;
        }
        Ok(())
    }
}

/// Re-hashes one item on one tier.
async fn check(tier: &Tier, item: &Item) -> Checked {
    match tier.hash(&item.key, item.cid.codec()).await {
        Ok(None) => Checked::Missing,
        Ok(Some((actual, _))) if actual == item.cid => Checked::Good,
        Ok(Some((actual, size))) => Checked::Corrupt(format!("its {size} bytes hash to {actual}")),
        Err(error) => Checked::Unreadable(error.to_string()),
    }
}
