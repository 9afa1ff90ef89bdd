//! `[hub]` settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use cim_runtime::{Invalid, Settings};
use serde::{Deserialize, Serialize};

/// `[hub]`: the public HTTP listener and the limits of the Integration Hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSettings {
    /// Address of the public HTTP API (apart from `[http] listen`, which
    /// serves metrics and health and should stay internal).
    pub listen: String,
    /// PEM certificate chain: with `tls_key_file`, the API is served over
    /// TLS (rustls) only.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Largest JSON body (appends, unit commands, inbound webhooks); larger
    /// ones get 413.
    pub max_body_bytes: usize,
    /// Largest object a PUT may store; larger ones get 413.
    pub max_object_bytes: u64,
    /// Requests per second a token may make on average, unless the token says otherwise.
    pub rate_per_sec: u32,
    /// Requests a token may make at once above the average, unless the token says otherwise.
    pub burst: u32,
    /// Aggregate types that HTTP, MCP and inbound webhooks may not append
    /// to: other components' own (the NATS permissions refuse them too).
    pub reserved_aggregate_types: Vec<String>,
    /// Largest page of events a read returns.
    pub max_page_events: usize,
    /// Seconds between keep-alive comments on a live feed.
    pub feed_keepalive_secs: u64,
    /// Seconds an outbound webhook POST may take.
    pub webhook_timeout_secs: u64,
    /// Attempts per event before it becomes a dead letter.
    pub webhook_max_attempts: u32,
    /// Milliseconds before the first retry; doubled each time.
    pub webhook_backoff_ms: u64,
    /// Longest wait between retries, milliseconds.
    pub webhook_backoff_max_ms: u64,
    /// Dead letters in a row after which a subscription is paused.
    pub webhook_pause_after: u32,
    /// Seconds an inbound webhook's timestamp may differ from the hub's clock.
    pub inbound_tolerance_secs: u64,
    /// Serve the MCP server at `/mcp`.
    pub mcp: bool,
    /// Serve the DAG explorer at `/explorer`.
    pub explorer: bool,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            tls_cert_file: None,
            tls_key_file: None,
            max_body_bytes: 1024 * 1024,
            max_object_bytes: 64 * 1024 * 1024 * 1024,
            rate_per_sec: 100,
            burst: 200,
            reserved_aggregate_types: vec!["unit".to_owned(), "schema".to_owned()],
            max_page_events: 1000,
            feed_keepalive_secs: 15,
            webhook_timeout_secs: 10,
            webhook_max_attempts: 8,
            webhook_backoff_ms: 1000,
            webhook_backoff_max_ms: 300_000,
            webhook_pause_after: 3,
            inbound_tolerance_secs: 300,
            mcp: true,
            explorer: true,
        }
    }
}

impl HubSettings {
    /// The listen address.
    pub fn address(&self) -> Result<SocketAddr, Invalid> {
        self.listen
            .parse()
            .map_err(|e| Invalid::new("listen", format!("{:?} is not an address (ip:port): {e}", self.listen)))
    }

    /// Whether the API is served over TLS.
    pub fn tls(&self) -> Option<(&PathBuf, &PathBuf)> {
        self.tls_cert_file.as_ref().zip(self.tls_key_file.as_ref())
    }
}

impl Settings for HubSettings {
    const SECTION: &'static str = "hub";

    fn validate(&self) -> Result<(), Invalid> {
        self.address()?;
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(Invalid::new("tls_cert_file", "tls_cert_file and tls_key_file go together"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(Invalid::new("max_body_bytes", "must be between 1024 and 67108864"));
        }
        if self.max_object_bytes == 0 {
            return Err(Invalid::new("max_object_bytes", "must be at least 1"));
        }
        if self.rate_per_sec == 0 || self.burst == 0 {
            return Err(Invalid::new("rate_per_sec", "rate_per_sec and burst must be at least 1"));
        }
        for reserved in &self.reserved_aggregate_types {
            if cim_cid::validate_aggregate_type(reserved).is_err() {
                return Err(Invalid::new("reserved_aggregate_types", format!("{reserved:?} is not an aggregate type")));
            }
        }
        if !(1..=100_000).contains(&self.max_page_events) {
            return Err(Invalid::new("max_page_events", "must be between 1 and 100000"));
        }
        if !(1..=3600).contains(&self.feed_keepalive_secs) {
            return Err(Invalid::new("feed_keepalive_secs", "must be between 1 and 3600"));
        }
        if !(1..=300).contains(&self.webhook_timeout_secs) {
            return Err(Invalid::new("webhook_timeout_secs", "must be between 1 and 300"));
        }
        if !(1..=100).contains(&self.webhook_max_attempts) {
            return Err(Invalid::new("webhook_max_attempts", "must be between 1 and 100"));
        }
        if self.webhook_backoff_ms == 0 || self.webhook_backoff_max_ms < self.webhook_backoff_ms {
            return Err(Invalid::new("webhook_backoff_ms", "must be at least 1 and at most webhook_backoff_max_ms"));
        }
        if self.webhook_pause_after == 0 {
            return Err(Invalid::new("webhook_pause_after", "must be at least 1"));
        }
        if !(1..=86_400).contains(&self.inbound_tolerance_secs) {
            return Err(Invalid::new("inbound_tolerance_secs", "must be between 1 and 86400"));
        }
        Ok(())
    }
}
