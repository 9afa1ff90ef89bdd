//! The hub's own metrics, in the runtime's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Labels of an HTTP response.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route, e.g. `/v1/events/{cid}`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Labels of an outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// What happened.
    pub outcome: String,
}

/// `cim_hub_*` metrics.
#[derive(Debug, Clone, Default)]
pub struct HubMetrics {
    /// HTTP responses by route and status.
    pub http: Family<HttpLabels, Counter>,
    /// Outbound webhook attempts by outcome (`delivered`, `failed`, `dead`).
    pub deliveries: Family<OutcomeLabels, Counter>,
    /// Inbound webhook requests by outcome.
    pub inbound: Family<OutcomeLabels, Counter>,
    /// Live feed connections open now.
    pub feeds: Gauge,
}

impl HubMetrics {
    /// Creates the metrics and adds them to `registry`.
    pub fn register(registry: &cim_runtime::Metrics) -> Self {
        let metrics = Self::default();
        registry.register(
            "hub_http_responses",
            "HTTP responses of the hub's API, by route and status",
            metrics.http.clone(),
        );
        registry.register(
            "hub_webhook_attempts",
            "Outbound webhook attempts, by outcome (delivered, failed, dead)",
            metrics.deliveries.clone(),
        );
        registry.register("hub_inbound_webhooks", "Inbound webhook requests, by outcome", metrics.inbound.clone());
        registry.register("hub_feed_connections", "Live feed connections open now", metrics.feeds.clone());
        metrics
    }

    /// Counts an outcome.
    pub fn count(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
    }
}
