//! The registration protocol between every component and the Component
//! Registry. It lives here, not in the registry crate, so components depend
//! only on the runtime; the registry serves these types.
//!
//! A component sends its [`Registration`] as a request to [`REGISTER`] at
//! start and again as every heartbeat (an idempotent upsert, so a registry
//! that lost or expired the entry learns it again at the next beat). The
//! reply, [`RegistrationAck`], tells the registry's TTL; the component beats
//! at least three times per TTL. On shutdown it sends [`Deregistration`] to
//! [`DEREGISTER`]. An entry whose heartbeats stop expires after the TTL.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::api::{RequestError, request};
use crate::metrics::{Metrics, OutcomeLabels};

/// Subject of registrations and heartbeats.
pub const REGISTER: &str = "cim.service.registry.components.register";
/// Subject of deregistrations.
pub const DEREGISTER: &str = "cim.service.registry.components.deregister";

/// What a component tells the registry about one running instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Component name, e.g. `cim-ius` (`[A-Za-z0-9_-]`).
    pub name: String,
    /// Its version (SemVer).
    pub version: String,
    /// This instance (`[A-Za-z0-9_-]`).
    pub instance_id: String,
    /// The NATS micro service id of this instance (`$SRV.PING` shows it).
    pub service_id: String,
    /// What the component does.
    pub description: String,
    /// Request subjects it serves.
    pub subjects: Vec<String>,
    /// Capabilities others discover it by, e.g. `units.write`.
    pub capabilities: Vec<String>,
    /// Schema types it produces and consumes.
    pub schemas: SchemaUse,
    /// Its metrics and health address, `host:port`, when it serves one.
    pub http: Option<String>,
    /// When the instance started, RFC 3339.
    pub started_at: String,
    /// Seconds between its heartbeats.
    pub heartbeat_secs: u64,
}

/// Schema types a component produces and consumes, e.g. `unit:text-document`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SchemaUse {
    /// Types of the data it writes.
    #[serde(default)]
    pub produces: Vec<String>,
    /// Types of the data it reads.
    #[serde(default)]
    pub consumes: Vec<String>,
}

/// The registry's answer to a registration or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationAck {
    /// Seconds after its last heartbeat that an entry expires.
    pub ttl_secs: u64,
}

/// Removes one instance from the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregistration {
    /// Component name.
    pub name: String,
    /// The instance.
    pub instance_id: String,
}

/// The registry's answer to a deregistration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregistrationAck {
    /// Whether an entry was there to remove.
    pub removed: bool,
}

/// How often to beat for a TTL: at most every `configured` seconds and at
/// least three times per TTL, so one lost beat never expires an entry.
fn beat_interval(configured: u64, ttl_secs: Option<u64>) -> Duration {
    let secs = match ttl_secs {
        Some(ttl) => configured.min((ttl / 3).max(1)),
        None => configured,
    };
    Duration::from_secs(secs.max(1))
}

/// Registers and beats until `stop`; a failed beat is retried every second.
pub(crate) async fn heartbeat(
    client: async_nats::Client,
    registration: Registration,
    configured_secs: u64,
    timeout: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut ttl = None;
    let mut failing = false;
    loop {
        let outcome: Result<RegistrationAck, RequestError> = request(&client, REGISTER, &registration, timeout).await;
        let label = match &outcome {
            Ok(ack) => {
                if failing || ttl.is_none() {
                    info!(ttl_secs = ack.ttl_secs, "registered with the Component Registry");
                }
                debug!("heartbeat sent");
                ttl = Some(ack.ttl_secs);
                failing = false;
                "ok"
            }
            Err(error) => {
                if !failing {
                    warn!(%error, "cannot register with the Component Registry; retrying every second");
                }
                failing = true;
                "error"
            }
        };
        metrics.heartbeats.get_or_create(&OutcomeLabels { outcome: label.to_owned() }).inc();
        let wait = if failing { Duration::from_secs(1) } else { beat_interval(configured_secs, ttl) };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Tells the registry this instance is gone; best effort.
pub(crate) async fn deregister(client: &async_nats::Client, registration: &Registration, timeout: Duration) {
    let message = Deregistration { name: registration.name.clone(), instance_id: registration.instance_id.clone() };
    match request::<_, DeregistrationAck>(client, DEREGISTER, &message, timeout).await {
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
