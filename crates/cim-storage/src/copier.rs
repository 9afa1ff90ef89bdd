//! Copying hot objects down to both tiers, by CID, verified.

use std::sync::atomic::Ordering;

use cim_cid::Cid;
use cim_storage_api::TierName;
use futures::StreamExt;
use tracing::{info, warn};

use crate::error::Result;
use crate::manager::Manager;

/// What a copy pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Objects written to at least one tier.
    pub copied: u64,
    /// Bytes written (each tier counted).
    pub bytes: u64,
    /// Objects a tier already held, verified, so nothing was written.
    pub present: u64,
}

impl Manager {
    /// Copies every hot object not yet verified on both tiers, a few at a
    /// time. An object that fails is reported and tried again next pass;
    /// the first failure is returned after the others were tried.
    pub async fn copy_objects(&self) -> Result<Copied> {
        let _op = self.inner.ops.copy.lock().await;
        let _busy = self.busy("copy");
        self.require_tiers().await?;
        let hot = self.inner.objects.list().await?;
        let todo: Vec<(Cid, u64)> = {
            let records = self.inner.object_records.lock().await;
            self.inner.hot_objects.store(hot.len() as u64, Ordering::Relaxed);
            for (slot, tier) in TierName::ALL.into_iter().enumerate() {
                let lag =
                    hot.iter().filter(|m| records.get(&m.cid.to_string()).is_none_or(|r| !r.verified_on(tier))).count();
                self.inner.lag_objects[slot].store(lag as u64, Ordering::Relaxed);
            }
            hot.iter()
                .filter(|m| !records.get(&m.cid.to_string()).is_some_and(|r| r.verified_on_both()))
                .map(|m| (m.cid, m.size))
                .collect()
        };
        if todo.is_empty() {
            return Ok(Copied::default());
        }
        info!(objects = todo.len(), bytes = todo.iter().map(|(_, s)| s).sum::<u64>(), "copying objects down");
        let concurrency = self.inner.settings.copy.concurrency;
        let results: Vec<_> = futures::stream::iter(todo)
            .map(|(cid, _)| async move { (cid, self.copy_object_to_both(&cid).await) })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut copied = Copied::default();
        let mut first_error = None;
        for (cid, result) in results {
            match result {
                Ok((bytes, wrote)) => {
                    copied.bytes += bytes;
                    if wrote {
                        copied.copied += 1;
                    } else {
                        copied.present += 1;
                    }
                }
                Err(error) => {
                    warn!(%cid, %error, "copying an object down failed; it is tried again next pass");
                    first_error.get_or_insert(error);
                }
            }
        }
        self.inner.metrics.objects_copied.inc_by(copied.copied);
        self.refresh_object_lag().await;
        match first_error {
            Some(error) => Err(error),
            None => Ok(copied),
        }
    }

    /// Recomputes the lag of objects from the records (after a pass).
    async fn refresh_object_lag(&self) {
        let Ok(hot) = self.inner.objects.list().await else { return };
        let records = self.inner.object_records.lock().await;
        self.inner.hot_objects.store(hot.len() as u64, Ordering::Relaxed);
        for (slot, tier) in TierName::ALL.into_iter().enumerate() {
            let lag =
                hot.iter().filter(|m| records.get(&m.cid.to_string()).is_none_or(|r| !r.verified_on(tier))).count();
            self.inner.lag_objects[slot].store(lag as u64, Ordering::Relaxed);
        }
    }
}
