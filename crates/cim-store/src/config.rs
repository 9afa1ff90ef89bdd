//! Store configuration and the names of everything the store keeps in
//! JetStream. `docs/spec/jetstream.md` documents the same names.

use std::time::Duration;

use cim_cid::AggregateKey;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Most events one atomic batch may hold (JetStream's limit).
pub const MAX_BATCH_EVENTS: usize = 1000;

/// How appends reach the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// Every append is published on its own (one message, or one atomic
    /// batch for several events); concurrency comes from concurrent callers.
    /// Fastest when the server does not flush each message to disk.
    Direct,
    /// Appends of concurrent callers are merged into large atomic batches
    /// (group commit), so one disk flush covers many events. Fastest when the
    /// server flushes before acknowledging (`sync_interval: always`).
    #[default]
    Grouped,
}

/// Configuration of a store. Every field has a default; `namespace` keeps
/// several stores apart on one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Prefix of every subject, stream and bucket: `[a-z0-9][a-z0-9_-]*`,
    /// at most 32 bytes. Default `cim`.
    pub namespace: String,
    /// Replicas of every stream and bucket: 1, or 3 in a cluster.
    pub replicas: usize,
    /// How long JetStream remembers message ids for deduplication, seconds.
    pub duplicate_window_secs: u64,
    /// Largest encoded event, bytes (at most the server's `max_payload`).
    pub max_event_bytes: usize,
    /// How appends are committed.
    pub commit: CommitMode,
    /// Most events merged into one group commit, up to 1000.
    pub max_batch_events: usize,
    /// Size of object chunks, bytes.
    pub object_chunk_bytes: usize,
    /// Object chunks published before waiting for the oldest acknowledgement.
    pub object_put_window: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            namespace: "cim".to_owned(),
            replicas: 1,
            duplicate_window_secs: 120,
            max_event_bytes: 1024 * 1024 - 4096,
            commit: CommitMode::default(),
            max_batch_events: MAX_BATCH_EVENTS,
            object_chunk_bytes: 128 * 1024,
            object_put_window: 16,
        }
    }
}

impl StoreConfig {
    /// A default configuration under another namespace.
    pub fn with_namespace(namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), ..Self::default() }
    }

    /// Checks every field, naming the first that is out of range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: String| Err(Error::Config { field, reason });
        let ns = &self.namespace;
        let valid_ns = !ns.is_empty()
            && ns.len() <= 32
            && ns.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && ns.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_ns {
            return invalid(
                "namespace",
                format!("{ns:?} must be 1-32 bytes of [a-z0-9_-], starting with a letter or digit"),
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return invalid("replicas", format!("must be between 1 and 5, not {}", self.replicas));
        }
        if self.duplicate_window_secs == 0 {
            return invalid("duplicate_window_secs", "must be at least 1".to_owned());
        }
        if !(1..=MAX_BATCH_EVENTS).contains(&self.max_batch_events) {
            return invalid(
                "max_batch_events",
                format!("must be between 1 and {MAX_BATCH_EVENTS}, not {}", self.max_batch_events),
            );
        }
        if self.max_event_bytes < 1024 {
            return invalid("max_event_bytes", format!("must be at least 1024, not {}", self.max_event_bytes));
        }
        if !(1024..=8 * 1024 * 1024).contains(&self.object_chunk_bytes) {
            return invalid(
                "object_chunk_bytes",
                format!("must be between 1 KiB and 8 MiB, not {}", self.object_chunk_bytes),
            );
        }
        if self.object_put_window == 0 {
            return invalid("object_put_window", "must be at least 1".to_owned());
        }
        Ok(())
    }

    /// The deduplication window.
    pub fn duplicate_window(&self) -> Duration {
        Duration::from_secs(self.duplicate_window_secs)
    }

    /// The names derived from the namespace.
    pub fn names(&self) -> Names {
        Names::new(&self.namespace)
    }
}

/// Names of the stream, subjects and buckets of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The event stream, e.g. `CIM_EVENTS`.
    pub events_stream: String,
    /// Prefix of event subjects, e.g. `cim.events`; an aggregate's events are
    /// on `<prefix>.<aggregate type>.<aggregate id>`.
    pub events_prefix: String,
    /// The object store bucket, e.g. `cim-objects` (stream `OBJ_cim-objects`).
    pub objects_bucket: String,
    /// The KV bucket mapping object names to their latest version, e.g. `cim-names`.
    pub names_bucket: String,
}

impl Names {
    fn new(namespace: &str) -> Self {
        Self {
            events_stream: format!("{}_EVENTS", namespace.to_ascii_uppercase().replace('-', "_")),
            events_prefix: format!("{namespace}.events"),
            objects_bucket: format!("{namespace}-objects"),
            names_bucket: format!("{namespace}-names"),
        }
    }

    /// The subject holding one aggregate's events.
    pub fn aggregate_subject(&self, aggregate: &AggregateKey) -> String {
        format!("{}.{}.{}", self.events_prefix, aggregate.aggregate_type(), aggregate.aggregate_id())
    }

    /// The wildcard matching every event subject.
    pub fn all_events(&self) -> String {
        format!("{}.>", self.events_prefix)
    }

    /// The aggregate a subject belongs to, if it is an event subject.
    pub fn aggregate_of_subject<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = subject.strip_prefix(self.events_prefix.as_str())?.strip_prefix('.')?;
        rest.split_once('.')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_namespace() {
        let names = StoreConfig::with_namespace("t-1").names();
        assert_eq!(names.events_stream, "T_1_EVENTS");
        let key = AggregateKey::new("order", "42").unwrap();
        assert_eq!(names.aggregate_subject(&key), "t-1.events.order.42");
        assert_eq!(names.aggregate_of_subject("t-1.events.order.42"), Some(("order", "42")));
        assert_eq!(names.aggregate_of_subject("other.events.order.42"), None);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = StoreConfig { namespace: "Bad.NS".into(), ..StoreConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("namespace"));
        let bad = StoreConfig { max_batch_events: 5000, ..StoreConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("max_batch_events"));
        StoreConfig::default().validate().unwrap();
    }
}
