//! CIM's Pipeline Engine: declarative, event-triggered pipelines that turn
//! events into information, with exactly-once effects and provenance.
//!
//! - [`definition`]: definitions as written (TOML or JSON);
//!   [`compile`]: their checks (jq programs compiled with jaq, triggers,
//!   cycles between pipelines) and compiled form; [`jq`]: jaq.
//! - [`projection`]: the current set of pipelines, a `cim_store::Follower`
//!   of the `pipeline` aggregates (every change of a definition is an event).
//! - [`engine`]: one durable pull consumer per pipeline on the event stream,
//!   shared by every instance (a consumer group); [`run`]: one input through
//!   the stages and sinks, journaled as `pipeline-run` events, with
//!   exactly-once effects; [`deadletter`]: inputs given up on.
//! - [`service`]: the request API (`cim-pipeline-api`).
//!
//! `docs/spec/pipelines.md` specifies definitions, the events the engine
//! writes and its exactly-once rules.

pub mod compile;
pub mod definition;
pub mod jq;

/// Line and column (from 1; column in characters) of byte `offset` of `text`.
pub(crate) fn jq_position(text: &str, offset: usize) -> (Option<u32>, Option<u32>) {
    let offset = offset.min(text.len());
    let offset = (0..=offset).rev().find(|o| text.is_char_boundary(*o)).unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (u32::try_from(line).ok(), u32::try_from(column).ok())
}
pub mod deadletter;
pub mod engine;
pub mod media;
pub mod projection;
pub mod remote;
pub mod run;
mod service;
mod settings;

pub use service::App;
pub use settings::PipelineSettings;
