//! The Pipeline Engine's request API, shared by the engine (which serves
//! it), other components and the CLI:
//!
//! - the endpoints as typed [`cim_wire::Endpoint`] constants ([`PUT`],
//!   [`LIST`], [`RUN`], ...), so the service and its clients agree on
//!   subjects and types or do not compile;
//! - the messages ([`PutPipeline`], [`PipelineView`], [`Status`], ...);
//! - [`PipelineCode`], the engine's error codes;
//! - [`Client`], the client side;
//! - [`stage`], the protocol of remote stages: a component that registers
//!   capability `pipeline.stage.<name>` serves [`stage::StageRequest`] on a
//!   subject of its own and answers [`stage::StageReply`].
//!
//! API boundary: depends on `cim-wire`, serde and serde_json only; no server
//! code (no jq, no PDF, no store). `docs/spec/subjects.md` specifies the
//! subjects and bodies, `docs/spec/pipelines.md` the definitions and the
//! events the engine writes.

mod client;
mod code;
mod messages;
pub mod stage;

use cim_wire::{Endpoint, Service};

pub use client::Client;
pub use code::PipelineCode;
pub use messages::{
    ConsumerStatus, DeadLetter, DeadLetters, DefinitionError, ListDeadLetters, ListPipelines, NameRef, PipelineList,
    PipelineStatus, PipelineSummary, PipelineView, Put, PutPipeline, ReplayDeadLetters, ReplayPipeline, Replayed,
    ReplayedDeadLetters, RunManual, RunOutcome, SourceFormat, Status, StatusQuery,
};

/// The engine's micro service: name `cim-pipeline`, subjects
/// `cim.service.pipeline.…`.
pub const SERVICE: Service = Service::new("cim-pipeline", "cim.service.pipeline");

/// Aggregate type of pipeline definitions: `pipeline/<name>`.
pub const PIPELINE_AGGREGATE: &str = "pipeline";
/// Aggregate type of executions: `pipeline-run/<pipeline>:v<version>:<input CID>`.
pub const RUN_AGGREGATE: &str = "pipeline-run";

/// Create a pipeline or a new version of it, from a TOML or JSON definition.
pub const PUT: Endpoint<PutPipeline, Put, PipelineCode> = SERVICE.endpoint("pipelines.put");
/// Check a definition without storing anything.
pub const VALIDATE: Endpoint<PutPipeline, PipelineView, PipelineCode> = SERVICE.endpoint("pipelines.validate");
/// One pipeline, current or at a version.
pub const GET: Endpoint<NameRef, PipelineView, PipelineCode> = SERVICE.endpoint("pipelines.get");
/// Every pipeline.
pub const LIST: Endpoint<ListPipelines, PipelineList, PipelineCode> = SERVICE.endpoint("pipelines.list");
/// Stop taking inputs; they wait in the pipeline's consumer.
pub const PAUSE: Endpoint<NameRef, PipelineSummary, PipelineCode> = SERVICE.endpoint("pipelines.pause");
/// Take inputs again, from where the pipeline stopped.
pub const RESUME: Endpoint<NameRef, PipelineSummary, PipelineCode> = SERVICE.endpoint("pipelines.resume");
/// Process the event stream again from a position.
pub const REPLAY: Endpoint<ReplayPipeline, Replayed, PipelineCode> = SERVICE.endpoint("pipelines.replay");
/// Run a pipeline once on an input given by hand.
pub const RUN: Endpoint<RunManual, RunOutcome, PipelineCode> = SERVICE.endpoint("pipelines.run");
/// Lag, throughput, failures and dead letters per pipeline.
pub const STATUS: Endpoint<StatusQuery, Status, PipelineCode> = SERVICE.endpoint("pipelines.status");
/// Dead letters, of one pipeline or all.
pub const DEAD_LETTERS: Endpoint<ListDeadLetters, DeadLetters, PipelineCode> = SERVICE.endpoint("deadletters.list");
/// Run dead-lettered inputs again (after a fix); those that succeed leave the dead-letter stream.
pub const REPLAY_DEAD_LETTERS: Endpoint<ReplayDeadLetters, ReplayedDeadLetters, PipelineCode> =
    SERVICE.endpoint("deadletters.replay");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_documented_ones() {
        assert_eq!(PUT.subject(), "cim.service.pipeline.pipelines.put");
        assert_eq!(STATUS.subject(), "cim.service.pipeline.pipelines.status");
        assert_eq!(REPLAY_DEAD_LETTERS.subject(), "cim.service.pipeline.deadletters.replay");
    }
}
