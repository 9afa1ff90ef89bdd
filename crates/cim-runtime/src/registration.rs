//! Registering with the Component Registry and beating: the protocol and
//! its subjects are `cim_registry_api`'s ([`REGISTER`], [`DEREGISTER`],
//! [`Registration`]); every request goes to the subject ending in the
//! component's own name, which is all its NATS user may publish there.

use std::sync::Arc;
use std::time::Duration;

use cim_registry_api::{DEREGISTER, Deregistration, REGISTER, Registration};
use cim_store::retry::{Backoff, Policy};
use cim_wire::{Caller, RequestError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::metrics::{Metrics, OutcomeLabels};

/// How often to beat for a TTL: at most every `configured` seconds and at
/// least three times per TTL, so one lost beat never expires an entry.
fn beat_interval(configured: u64, ttl_secs: Option<u64>) -> Duration {
    let secs = match ttl_secs {
        Some(ttl) => configured.min((ttl / 3).max(1)),
        None => configured,
    };
    Duration::from_secs(secs.max(1))
}

/// How long a component keeps retrying a registration the registry does not
/// answer: as long as it runs (the policy's window only has to outlast it).
const RETRY_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

/// Registers and beats until `stop`. A failed beat is retried with the
/// store's retry policy, from a quarter of a second up to the beat interval;
/// one the server's permissions refuse is not a registry that is away:
/// it is logged as an error and tried again only at the heartbeat interval
/// (the permissions may be reloaded).
pub(crate) async fn heartbeat(
    caller: Caller,
    registration: Registration,
    configured_secs: u64,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut ttl = None;
    let mut failing = false;
    let retry = Policy::new(Duration::from_millis(250), beat_interval(configured_secs, None), RETRY_WINDOW);
    let mut backoff: Option<Backoff> = None;
    loop {
        let outcome = caller.call_for(&REGISTER, &registration.name, &registration).await;
        let (label, wait) = match &outcome {
            Ok(ack) => {
                if failing || ttl.is_none() {
                    info!(ttl_secs = ack.ttl_secs, "registered with the Component Registry");
                }
                debug!("heartbeat sent");
                ttl = Some(ack.ttl_secs);
                failing = false;
                backoff = None;
                ("ok", beat_interval(configured_secs, ttl))
            }
            Err(error @ RequestError::PermissionDenied { .. }) => {
                if !failing {
                    error!(%error, "the NATS server refuses this component's registration; check its user's permissions");
                }
                failing = true;
                ("denied", beat_interval(configured_secs, None))
            }
            Err(error) => {
                if !failing {
                    warn!(%error, "cannot register with the Component Registry; retrying");
                }
                failing = true;
                let delay = backoff.get_or_insert_with(|| retry.backoff()).next();
                ("error", delay.unwrap_or(retry.max_delay))
            }
        };
        metrics.heartbeats.get_or_create(&OutcomeLabels { outcome: label.to_owned() }).inc();
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Tells the registry this instance is gone; best effort.
pub(crate) async fn deregister(caller: &Caller, registration: &Registration) {
    let message = Deregistration { name: registration.name.clone(), instance_id: registration.instance_id.clone() };
    match caller.call_for(&DEREGISTER, &registration.name, &message).await {
        Ok(ack) => info!(removed = ack.removed, "deregistered from the Component Registry"),
        Err(error) => warn!(%error, "could not deregister; the entry expires with its TTL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_three_times_per_ttl() {
        assert_eq!(beat_interval(5, None), Duration::from_secs(5));
        assert_eq!(beat_interval(5, Some(30)), Duration::from_secs(5));
        assert_eq!(beat_interval(5, Some(6)), Duration::from_secs(2));
        assert_eq!(beat_interval(5, Some(1)), Duration::from_secs(1));
    }
}
