//! The manager as a service: its endpoints, and the loops that seal, copy,
//! scrub, apply retention and collect garbage on their schedules.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cim_runtime::{Request, Runtime, ServiceDefinition};
use cim_storage_api::{
    self as api, EventRef, NamesSnapshotRef, ReadRange, SegmentList, StorageCode, encode_event_reply, encode_read_reply,
};
use cim_wire::{ApiError, WireError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::Error;
use crate::manager::Manager;
use crate::metrics::StorageMetrics;
use crate::settings::StorageSettings;

type Reply<T> = Result<T, ApiError<StorageCode>>;

impl Manager {
    /// Opens the manager with the runtime's connection and configuration,
    /// its metrics registered.
    ///
    /// # Errors
    /// As [`Manager::open`].
    pub async fn start(runtime: &Runtime<StorageSettings>) -> crate::Result<Self> {
        let config = runtime.config();
        let metrics = StorageMetrics::default();
        metrics.register(runtime.metrics());
        Self::open(
            runtime.client().clone(),
            config.store.clone(),
            config.component.clone(),
            runtime.instance_id().to_owned(),
            metrics,
        )
        .await
    }

    /// The manager's request API.
    pub fn definition(&self) -> ServiceDefinition {
        let manager = Arc::new(self.clone());
        let with = |m: &Arc<Manager>| m.clone();
        ServiceDefinition::of(api::SERVICE, env!("CARGO_PKG_VERSION"))
            .description("CIM Storage Manager: sealed segments and objects on warm and cold S3 tiers, verified")
            .capability("storage.status")
            .capability("storage.archive")
            .capability("storage.read")
            .capability("storage.scrub")
            .capability("storage.restore")
            .handle(&api::STATUS, {
                let m = with(&manager);
                move |_| {
                    let m = m.clone();
                    async move { reply(m.status().await) }
                }
            })
            .handle(&api::SEAL, {
                let m = with(&manager);
                move |request: api::SealRequest| {
                    let m = m.clone();
                    async move { reply(m.seal_and_copy(request.force).await) }
                }
            })
            .handle(&api::SCRUB, {
                let m = with(&manager);
                move |request: api::ScrubRequest| {
                    let m = m.clone();
                    async move { reply(m.scrub(!request.no_repair).await) }
                }
            })
            .handle(&api::GC, {
                let m = with(&manager);
                move |request: api::GcRequest| {
                    let m = m.clone();
                    async move { reply(m.gc(request.dry_run).await) }
                }
            })
            .handle(&api::RETENTION, {
                let m = with(&manager);
                move |request: api::RetentionRequest| {
                    let m = m.clone();
                    async move { reply(m.retention(request.dry_run).await) }
                }
            })
            .handle(&api::SEGMENTS, {
                let m = with(&manager);
                move |query| {
                    let m = m.clone();
                    async move { Ok(SegmentList { segments: m.segments(&query).await }) }
                }
            })
            .handle(&api::OBJECT_STAT, {
                let m = with(&manager);
                move |request: api::ObjectRef| {
                    let m = m.clone();
                    async move { reply(m.object_stat(&request.cid).await) }
                }
            })
            .handle(&api::OBJECT_LIST, {
                let m = with(&manager);
                move |query| {
                    let m = m.clone();
                    async move { Ok(m.object_page(&query).await) }
                }
            })
            .handle(&api::NAMES, {
                let m = with(&manager);
                move |_| {
                    let m = m.clone();
                    async move { Ok(NamesSnapshotRef { cid: m.names_snapshot_cid().await }) }
                }
            })
            .raw_endpoint(api::READ.name(), {
                let m = with(&manager);
                move |request: Request| {
                    let m = m.clone();
                    async move {
                        let range: ReadRange = request.json()?;
                        let (size, tier, bytes) = m.read_range(&range).await.map_err(wire)?;
                        Ok(Bytes::from(encode_read_reply(size, tier, &bytes)))
                    }
                }
            })
            .raw_endpoint(api::EVENT.name(), {
                let m = with(&manager);
                move |request: Request| {
                    let m = m.clone();
                    async move {
                        let event: EventRef = request.json()?;
                        let cid = event
                            .cid
                            .parse()
                            .map_err(|e| wire(Error::Invalid(format!("{:?} is not a CID: {e}", event.cid))))?;
                        let (seq, segment, bytes) = m.archived_event(&cid).await.map_err(wire)?;
                        Ok(Bytes::from(encode_event_reply(seq, &segment.to_string(), &bytes)))
                    }
                }
            })
    }

    /// Runs the periodic work until `stop`: sealing and copying, scrubs,
    /// retention and collection, each on its own interval (0: only on
    /// request). A failed run is logged and tried again next interval.
    pub fn spawn_loops(&self, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let settings = self.settings().clone();
        let mut tasks = Vec::new();
        let seal = settings.seal.interval_secs.min(settings.copy.interval_secs.max(1));
        let every = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        if let Some(period) = every(if settings.seal.interval_secs == 0 { settings.copy.interval_secs } else { seal }) {
            let m = self.clone();
            tasks.push(spawn_every(period, stop.clone(), "seal and copy", move || {
                let m = m.clone();
                async move { m.seal_and_copy(false).await.map(|_| ()) }
            }));
        }
        if let Some(period) = every(settings.scrub.interval_secs) {
            let m = self.clone();
            let repair = settings.scrub.repair;
            tasks.push(spawn_every(period, stop.clone(), "scrub", move || {
                let m = m.clone();
                async move { m.scrub(repair).await.map(|_| ()) }
            }));
        }
        if settings.retention.enabled
            && let Some(period) = every(settings.retention.interval_secs)
        {
            let m = self.clone();
            tasks.push(spawn_every(period, stop.clone(), "retention", move || {
                let m = m.clone();
                async move { m.retention(false).await.map(|_| ()) }
            }));
        }
        if settings.gc.enabled
            && let Some(period) = every(settings.gc.interval_secs)
        {
            let m = self.clone();
            tasks.push(spawn_every(period, stop.clone(), "gc", move || {
                let m = m.clone();
                async move { m.gc(false).await.map(|_| ()) }
            }));
        }
        let m = self.clone();
        tasks.push(spawn_every(Duration::from_secs(15), stop, "status", move || {
            let m = m.clone();
            async move {
                m.update_gauges().await;
                Ok(())
            }
        }));
        tasks
    }
}

/// Runs `work` every `period` (the first run after one period) until
/// `stop`; failures are logged and retried with the period as backoff.
fn spawn_every<F, Fut>(
    period: Duration,
    stop: CancellationToken,
    what: &'static str,
    work: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = crate::Result<()>> + Send,
{
    tokio::spawn(async move {
        info!(every = ?period, what, "scheduled");
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            let run = work();
            tokio::select! {
                () = stop.cancelled() => return,
                outcome = run => if let Err(error) = outcome {
                    match &error {
                        Error::RestoreNeeded { .. } => info!(what, %error, "paused"),
                        _ => warn!(what, %error, retryable = error.is_retryable(), "scheduled run failed; trying again next time"),
                    }
                }
            }
        }
    })
}

fn reply<T>(outcome: crate::Result<T>) -> Reply<T> {
    outcome.map_err(ApiError::from)
}

fn wire(error: Error) -> WireError {
    ApiError::<StorageCode>::from(error).into()
}
