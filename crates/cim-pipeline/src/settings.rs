//! `[pipeline]` settings.

use cim_runtime::{Invalid, Settings};
use serde::{Deserialize, Serialize};

/// `[pipeline]`: how the engine runs pipelines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// Aggregate types append sinks may write; the engine's NATS user must
    /// be allowed to publish them (components.toml `aggregates`).
    pub output_aggregate_types: Vec<String>,
    /// Inputs of one pipeline processed at once by one instance.
    pub window: usize,
    /// Inputs of one pipeline delivered and not yet acknowledged, across
    /// every instance (the consumer's `max_ack_pending`).
    pub max_ack_pending: i64,
    /// Seconds an instance has to finish an input before the server
    /// delivers it again (the engine extends it while a run makes progress).
    pub ack_wait_secs: u64,
    /// Attempts per input before it goes to the dead-letter stream.
    pub max_attempts: u64,
    /// Delay before the first retry, milliseconds (doubling, with jitter).
    pub retry_first_delay_ms: u64,
    /// Longest delay between retries, milliseconds.
    pub retry_max_delay_ms: u64,
    /// Largest input event, bytes; larger ones fail (and are dead-lettered).
    pub max_input_bytes: usize,
    /// Largest object a stage reads, bytes.
    pub max_object_bytes: u64,
    /// Most values one input may have at any stage (fan-out bound).
    pub max_values: usize,
    /// Seconds a PDF's text extraction may take.
    pub pdf_timeout_secs: u64,
    /// Largest value one jq evaluation may produce (its outputs together,
    /// measured as JSON, approximately), bytes; more fails the attempt.
    pub max_value_bytes: usize,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            output_aggregate_types: vec!["derived".to_owned()],
            window: 64,
            max_ack_pending: 1024,
            ack_wait_secs: 30,
            max_attempts: 5,
            retry_first_delay_ms: 500,
            retry_max_delay_ms: 30_000,
            max_input_bytes: 256 * 1024,
            max_object_bytes: 64 * 1024 * 1024,
            max_values: 1000,
            pdf_timeout_secs: 60,
            max_value_bytes: crate::jq::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

impl Settings for PipelineSettings {
    const SECTION: &'static str = "pipeline";

    fn validate(&self) -> Result<(), Invalid> {
        for aggregate_type in &self.output_aggregate_types {
            if cim_cid::validate_aggregate_type(aggregate_type).is_err()
                || aggregate_type == cim_pipeline_api::PIPELINE_AGGREGATE
                || aggregate_type == cim_pipeline_api::RUN_AGGREGATE
            {
                return Err(Invalid::new(
                    "output_aggregate_types",
                    format!("{aggregate_type:?} is not an aggregate type outputs may have (nor the engine's own)"),
                ));
            }
        }
        if !(1..=4096).contains(&self.window) {
            return Err(Invalid::new("window", "must be between 1 and 4096"));
        }
        if !(1..=1_000_000).contains(&self.max_ack_pending) {
            return Err(Invalid::new("max_ack_pending", "must be between 1 and 1000000"));
        }
        if !(1..=3600).contains(&self.ack_wait_secs) {
            return Err(Invalid::new("ack_wait_secs", "must be between 1 and 3600"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(Invalid::new("max_attempts", "must be between 1 and 100"));
        }
        if self.retry_first_delay_ms == 0 || self.retry_first_delay_ms > self.retry_max_delay_ms {
            return Err(Invalid::new("retry_first_delay_ms", "must be at least 1 and at most retry_max_delay_ms"));
        }
        if self.retry_max_delay_ms > 3_600_000 {
            return Err(Invalid::new("retry_max_delay_ms", "must be at most 3600000"));
        }
        if !(1024..=8 * 1024 * 1024).contains(&self.max_input_bytes) {
            return Err(Invalid::new("max_input_bytes", "must be between 1024 and 8388608"));
        }
        if self.max_object_bytes == 0 {
            return Err(Invalid::new("max_object_bytes", "must be at least 1"));
        }
        if !(1..=100_000).contains(&self.max_values) {
            return Err(Invalid::new("max_values", "must be between 1 and 100000"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_value_bytes) {
            return Err(Invalid::new("max_value_bytes", "must be between 1024 and 67108864"));
        }
        if !(1..=3600).contains(&self.pdf_timeout_secs) {
            return Err(Invalid::new("pdf_timeout_secs", "must be between 1 and 3600"));
        }
        Ok(())
    }
}

impl PipelineSettings {
    /// The checks' view of the engine.
    pub fn rules(&self) -> crate::compile::Rules {
        crate::compile::Rules { output_aggregate_types: self.output_aggregate_types.clone() }
    }
}
