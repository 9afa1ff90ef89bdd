//! The registration protocol between every component and the Component
//! Registry.
//!
//! A component sends its [`Registration`] as a request to
//! [`crate::REGISTER`] with its own name as the subject's last token
//! (`cim.service.registry.components.register.<name>`) at start and again as
//! every heartbeat (an idempotent upsert, so a registry that lost or expired
//! the entry learns it again at the next beat). The reply,
//! [`RegistrationAck`], tells the registry's TTL; the component beats at
//! least three times per TTL. On shutdown it sends [`Deregistration`] to
//! [`crate::DEREGISTER`], again with its name as the last token. An entry
//! whose heartbeats stop expires after the TTL. The registry refuses a body
//! naming another component than the subject does (`forbidden`), and the
//! server's permissions let each component publish only its own subjects.

use serde::{Deserialize, Serialize};

/// What a component tells the registry about one running instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
