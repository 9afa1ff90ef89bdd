//! The manager's Prometheus metrics, registered in the runtime's registry
//! (all prefixed `cim_storage_`).

use std::sync::atomic::AtomicU64;

use cim_storage_api::{ScrubReport, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// A tier label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    /// `warm` or `cold`.
    pub tier: String,
}

/// The manager's metrics.
#[derive(Debug, Clone, Default)]
pub struct StorageMetrics {
    /// Segments sealed.
    pub segments_sealed: Counter,
    /// Objects copied down (to at least one tier).
    pub objects_copied: Counter,
    /// Events dropped from hot.
    pub events_dropped: Counter,
    /// Objects dropped from hot.
    pub objects_dropped: Counter,
    /// Objects collected from every tier.
    pub objects_collected: Counter,
    /// Scrub findings (last scrub), repaired or not.
    pub scrub_findings: Gauge,
    /// Scrub findings left unrepaired (last scrub).
    pub scrub_unrepaired: Gauge,
    /// When the last scrub finished (seconds since the epoch).
    pub last_scrub_seconds: Gauge<f64, AtomicU64>,
    /// Last stream sequence sealed.
    pub sealed_through_seq: Gauge,
    /// Last stream sequence in hot.
    pub hot_last_seq: Gauge,
    /// First stream sequence in hot.
    pub hot_first_seq: Gauge,
    /// Bytes of objects in hot.
    pub hot_object_bytes: Gauge,
    /// Stream sequences hot holds beyond what each tier has verified.
    pub lag_events: Family<TierLabel, Gauge>,
    /// Hot objects not yet verified on each tier.
    pub lag_objects: Family<TierLabel, Gauge>,
    /// Bytes of segments on each tier.
    pub segment_bytes: Family<TierLabel, Gauge>,
    /// Bytes of objects on each tier.
    pub object_bytes: Family<TierLabel, Gauge>,
    /// Whether the last request to each tier succeeded (1) or not (0).
    pub tier_up: Family<TierLabel, Gauge>,
    /// Bytes written to each tier since start.
    pub written_bytes: Family<TierLabel, Gauge>,
}

impl StorageMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, metrics: &cim_runtime::Metrics) {
        metrics.register(
            "storage_segments_sealed",
            "Segments sealed and verified on both tiers",
            self.segments_sealed.clone(),
        );
        metrics.register(
            "storage_objects_copied",
            "Objects copied down to a tier and verified",
            self.objects_copied.clone(),
        );
        metrics.register("storage_events_dropped", "Events dropped from hot by retention", self.events_dropped.clone());
        metrics.register(
            "storage_objects_dropped",
            "Objects dropped from hot by retention",
            self.objects_dropped.clone(),
        );
        metrics.register(
            "storage_objects_collected",
            "Unreferenced objects deleted from every tier",
            self.objects_collected.clone(),
        );
        metrics.register("storage_scrub_findings", "Findings of the last scrub", self.scrub_findings.clone());
        metrics.register(
            "storage_scrub_unrepaired",
            "Findings of the last scrub left unrepaired",
            self.scrub_unrepaired.clone(),
        );
        metrics.register(
            "storage_last_scrub_timestamp_seconds",
            "When the last scrub finished",
            self.last_scrub_seconds.clone(),
        );
        metrics.register("storage_sealed_through_seq", "Last stream sequence sealed", self.sealed_through_seq.clone());
        metrics.register("storage_hot_last_seq", "Last stream sequence in hot", self.hot_last_seq.clone());
        metrics.register("storage_hot_first_seq", "First stream sequence in hot", self.hot_first_seq.clone());
        metrics.register("storage_hot_object_bytes", "Bytes of the hot object bucket", self.hot_object_bytes.clone());
        metrics.register(
            "storage_lag_events",
            "Stream sequences hot holds beyond what the tier has verified",
            self.lag_events.clone(),
        );
        metrics.register("storage_lag_objects", "Hot objects not yet verified on the tier", self.lag_objects.clone());
        metrics.register("storage_segment_bytes", "Bytes of segments verified on the tier", self.segment_bytes.clone());
        metrics.register("storage_object_bytes", "Bytes of objects verified on the tier", self.object_bytes.clone());
        metrics.register("storage_tier_up", "Whether the last request to the tier succeeded", self.tier_up.clone());
        metrics.register("storage_written_bytes", "Bytes written to the tier since start", self.written_bytes.clone());
    }

    /// Sets the gauges from a status.
    pub fn set_status(&self, status: &Status) {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.sealed_through_seq.set(gauge(status.sealed_through_seq));
        self.hot_last_seq.set(gauge(status.hot.last_seq));
        self.hot_first_seq.set(gauge(status.hot.first_seq));
        self.hot_object_bytes.set(gauge(status.hot.object_bytes));
        for tier in &status.tiers {
            let label = TierLabel { tier: tier.name.clone() };
            self.lag_events.get_or_create(&label).set(gauge(tier.lag_events));
            self.lag_objects.get_or_create(&label).set(gauge(tier.lag_objects));
            self.segment_bytes.get_or_create(&label).set(gauge(tier.segment_bytes));
            self.object_bytes.get_or_create(&label).set(gauge(tier.object_bytes));
            self.tier_up.get_or_create(&label).set(i64::from(tier.reachable));
            self.written_bytes.get_or_create(&label).set(gauge(tier.written_bytes));
        }
        if let Some(scrub) = &status.last_scrub {
            self.record_scrub(scrub);
        }
    }

    /// Records a scrub's outcome.
    pub fn record_scrub(&self, report: &ScrubReport) {
        self.scrub_findings.set(report.findings.len() as i64);
        self.scrub_unrepaired.set(i64::try_from(report.unrepaired).unwrap_or(i64::MAX));
        self.last_scrub_seconds.set(report.finished_us as f64 / 1e6);
    }
}
