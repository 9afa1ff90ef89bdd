//! `cim-pipeline`: the Pipeline Engine service.

use std::process::ExitCode;

use anyhow::Context;
use cim_pipeline::{App, PipelineSettings};

// Every input allocates many short-lived values (its JSON for jq, the
// output's encoding, messages) across threads; glibc's allocator spent
// about 40% of the engine's CPU in malloc/free/consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cim_runtime::cli::main::<PipelineSettings, _, _>(
        "cim-pipeline",
        "CIM Pipeline Engine: declarative, event-triggered pipelines with exactly-once effects and provenance",
        |runtime| async move {
            let app = App::open(&runtime).await.context("starting the Pipeline Engine")?;
            runtime.serve(app.definition()).await.context("serving")?;
            Ok(())
        },
    )
}
