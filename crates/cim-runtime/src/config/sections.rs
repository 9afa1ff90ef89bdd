//! The configuration sections every component shares: `[http]`, `[log]`
//! and `[runtime]` (`[nats]` is `cim_wire::NatsConfig`, `[store]` is
//! `cim_store::StoreConfig`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// `[http]`: the metrics and health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve `/metrics`, `/healthz` and `/readyz`.
    pub enabled: bool,
    /// Address to listen on, `host:port`.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { enabled: true, listen: "127.0.0.1:9100".to_owned() }
    }
}

impl HttpConfig {
    /// The listen address, once validated.
    pub fn address(&self) -> Result<SocketAddr, Invalid> {
        self.listen.parse().map_err(|e| {
            Invalid::new("listen", format!("{:?} is not an address like 127.0.0.1:9100: {e}", self.listen))
        })
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal or the journal.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: what to log and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter: a level (`info`) or directives (`info,cim_store=debug`).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: "info".to_owned() }
    }
}

impl LogConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        // A bare word is a target to `tracing`, so a misspelt level ("inf")
        // would silently log everything of a target named "inf".
        const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
        for directive in self.level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if !directive.contains(['=', '[']) && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
                return Err(Invalid::new(
                    "level",
                    format!("{directive:?} is not a level ({}); use TARGET=LEVEL for a target", LEVELS.join(", ")),
                ));
            }
        }
        tracing_subscriber::EnvFilter::builder().parse(&self.level).map(drop).map_err(|e| {
            Invalid::new(
                "level",
                format!("{:?} is not a log filter such as \"info\" or \"info,cim_store=debug\": {e}", self.level),
            )
        })
    }
}

/// `[runtime]`: how the component runs as a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// This instance's id (`[A-Za-z0-9_-]`, at most 64 bytes); default: a new random id at every start.
    pub instance_id: Option<String>,
    /// Register with the Component Registry and send heartbeats.
    pub register: bool,
    /// Seconds between heartbeats (the registry may ask for shorter ones).
    pub heartbeat_secs: u64,
    /// Seconds that in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Requests handled at once; more wait in the NATS subscription.
    pub max_in_flight: usize,
    /// Largest request payload accepted, bytes; larger ones get `payload_too_large`.
    pub max_request_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            instance_id: None,
            register: true,
            heartbeat_secs: 5,
            shutdown_grace_secs: 30,
            max_in_flight: 64,
            max_request_bytes: 1024 * 1024,
        }
    }
}

impl RuntimeConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if let Some(id) = &self.instance_id {
            check_token("instance_id", id, 64)?;
        }
        if !(1..=3600).contains(&self.heartbeat_secs) {
            return Err(Invalid::new("heartbeat_secs", "must be between 1 and 3600"));
        }
        if self.shutdown_grace_secs > 3600 {
            return Err(Invalid::new("shutdown_grace_secs", "must be at most 3600"));
        }
        if self.max_in_flight == 0 {
            return Err(Invalid::new("max_in_flight", "must be at least 1"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_request_bytes) {
            return Err(Invalid::new("max_request_bytes", "must be between 1024 and 67108864"));
        }
        Ok(())
    }
}

/// Checks a name used as a NATS subject token or service name:
/// `[A-Za-z0-9_-]`, 1 to `max` bytes.
pub fn check_token(key: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    let valid = !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid { Ok(()) } else { Err(Invalid::new(key, format!("{value:?} must be 1-{max} bytes of [A-Za-z0-9_-]"))) }
}
