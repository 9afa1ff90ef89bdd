//! The client side of the engine's request API.

use std::time::Duration;

use cim_wire::{Caller, RequestError};

use crate::{
    DEAD_LETTERS, DeadLetters, GET, LIST, ListDeadLetters, ListPipelines, NameRef, PAUSE, PUT, PipelineCode,
    PipelineList, PipelineSummary, PipelineView, Put, PutPipeline, REPLAY, REPLAY_DEAD_LETTERS, RESUME, RUN,
    ReplayDeadLetters, ReplayPipeline, Replayed, ReplayedDeadLetters, RunManual, RunOutcome, STATUS, Status,
    StatusQuery, VALIDATE,
};

/// What an engine request ends with.
pub type Result<T> = std::result::Result<T, RequestError<PipelineCode>>;

/// Talks to any instance of the Pipeline Engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    caller: Caller,
}

impl Client {
    /// A client on `nats`, waiting `timeout` for each reply.
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Self { caller: Caller::new(nats, timeout) }
    }

    /// A client calling through `caller`.
    pub fn with_caller(caller: Caller) -> Self {
        Self { caller }
    }

    /// Creates a pipeline or a new version of it.
    pub async fn put(&self, request: &PutPipeline) -> Result<Put> {
        self.caller.call(&PUT, request).await
    }

    /// Checks a definition without storing it.
    pub async fn validate(&self, request: &PutPipeline) -> Result<PipelineView> {
        self.caller.call(&VALIDATE, request).await
    }

    /// One pipeline.
    pub async fn get(&self, name: &str, version: Option<u64>) -> Result<PipelineView> {
        self.caller.call(&GET, &NameRef { name: name.to_owned(), version }).await
    }

    /// Every pipeline.
    pub async fn list(&self) -> Result<PipelineList> {
        self.caller.call(&LIST, &ListPipelines::default()).await
    }

    /// Pauses a pipeline.
    pub async fn pause(&self, name: &str) -> Result<PipelineSummary> {
        self.caller.call(&PAUSE, &NameRef { name: name.to_owned(), version: None }).await
    }

    /// Resumes a pipeline.
    pub async fn resume(&self, name: &str) -> Result<PipelineSummary> {
        self.caller.call(&RESUME, &NameRef { name: name.to_owned(), version: None }).await
    }

    /// Replays a pipeline from a position.
    pub async fn replay(&self, request: &ReplayPipeline) -> Result<Replayed> {
        self.caller.call(&REPLAY, request).await
    }

    /// Runs a pipeline on an input given by hand.
    pub async fn run(&self, request: &RunManual) -> Result<RunOutcome> {
        self.caller.call(&RUN, request).await
    }

    /// Status of one pipeline or all.
    pub async fn status(&self, name: Option<&str>) -> Result<Status> {
        self.caller.call(&STATUS, &StatusQuery { name: name.map(str::to_owned) }).await
    }

    /// Dead letters.
    pub async fn dead_letters(&self, request: &ListDeadLetters) -> Result<DeadLetters> {
        self.caller.call(&DEAD_LETTERS, request).await
    }

    /// Replays dead letters.
    pub async fn replay_dead_letters(&self, request: &ReplayDeadLetters) -> Result<ReplayedDeadLetters> {
        self.caller.call(&REPLAY_DEAD_LETTERS, request).await
    }
}
