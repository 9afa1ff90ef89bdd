//! `[ius]` settings.

use cim_runtime::{Invalid, Settings};
use serde::{Deserialize, Serialize};

/// `[ius]`: limits and waits of the Information Unit System.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IusSettings {
    /// Largest content plus metadata of a unit, bytes of JSON; larger
    /// creates and updates get `payload_too_large`.
    pub max_unit_bytes: usize,
    /// Deepest relationship traversal.
    pub max_traversal_depth: u32,
    /// Largest page of a list.
    pub max_page_size: usize,
    /// Milliseconds a read with `min_version` waits for this instance to catch up.
    pub read_wait_ms: u64,
    /// Seconds to keep trying to register the built-in schemas at start
    /// (the registry may be starting too).
    pub registry_wait_secs: u64,
}

impl Default for IusSettings {
    fn default() -> Self {
        Self {
            max_unit_bytes: 256 * 1024,
            max_traversal_depth: 8,
            max_page_size: 1000,
            read_wait_ms: 2000,
            registry_wait_secs: 60,
        }
    }
}

impl Settings for IusSettings {
    const SECTION: &'static str = "ius";

    fn validate(&self) -> Result<(), Invalid> {
        if !(1024..=900 * 1024).contains(&self.max_unit_bytes) {
            return Err(Invalid::new(
                "max_unit_bytes",
                "must be between 1024 and 921600 (an event must fit a NATS message)",
            ));
        }
        if !(1..=64).contains(&self.max_traversal_depth) {
            return Err(Invalid::new("max_traversal_depth", "must be between 1 and 64"));
        }
        if !(1..=10_000).contains(&self.max_page_size) {
            return Err(Invalid::new("max_page_size", "must be between 1 and 10000"));
        }
        if self.read_wait_ms > 60_000 {
            return Err(Invalid::new("read_wait_ms", "must be at most 60000"));
        }
        if self.registry_wait_secs > 3600 {
            return Err(Invalid::new("registry_wait_secs", "must be at most 3600"));
        }
        Ok(())
    }
}
