//! `cim pipelines`: the Pipeline Engine through its client
//! (`cim_pipeline_api::Client`): define pipelines from TOML (or JSON)
//! files, list and show them, pause, resume and replay them, run one by
//! hand, see their status, and see and replay their dead letters. The
//! engine does the work and the checking; a refused definition is printed
//! error by error, with the jq program's line and column.

use std::path::PathBuf;

use cim_pipeline_api::{
    DeadLetter, DefinitionError, ListDeadLetters, PipelineCode, PipelineStatus, PutPipeline, ReplayDeadLetters,
    ReplayPipeline, RunManual, SourceFormat,
};
use cim_wire::{ApiError, ErrorCode};
use clap::{Args, Subcommand, ValueEnum};

use crate::args;
use crate::exit::Exit;
use crate::output::Output;
use crate::services::{Remote, ServiceArgs, current_version};
use crate::session::Session;

/// `cim pipelines …`.
#[derive(Debug, Args)]
pub struct PipelinesArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(subcommand)]
    command: PipelinesCommand,
}

/// A definition's language.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Toml,
    Json,
}

/// The pipelines commands.
#[derive(Debug, Subcommand)]
enum PipelinesCommand {
    /// Create a pipeline, or a new version of it, from a definition file (TOML; `-`: stdin).
    Put {
        /// The definition (docs/spec/pipelines.md).
        file: PathBuf,
        /// Its language [default: JSON if it starts with `{`, else TOML].
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Store only if the pipeline is at this version (0: new); exit 4 if not.
        #[arg(long, value_name = "VERSION")]
        expect: Option<u64>,
    },
    /// Check a definition file without storing it; exit 2 with every error if it is refused.
    Validate {
        /// The definition.
        file: PathBuf,
        /// Its language.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Every pipeline: version, paused or running, trigger.
    List,
    /// One pipeline's definition (the current version, or --version).
    Show {
        /// The pipeline.
        name: String,
        /// This version.
        #[arg(long)]
        version: Option<u64>,
    },
    /// Stop taking inputs; they wait in the pipeline's consumer until `resume`.
    Pause {
        /// The pipeline.
        name: String,
    },
    /// Take inputs again, from where the pipeline paused.
    Resume {
        /// The pipeline.
        name: String,
    },
    /// Process the event stream again from a position (inputs this version completed produce nothing new).
    Replay {
        /// The pipeline.
        name: String,
        /// From this stream sequence [default: the first event].
        #[arg(long, value_name = "SEQ", conflicts_with = "from_time")]
        from_sequence: Option<u64>,
        /// From this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        from_time: Option<String>,
    },
    /// Run a pipeline once on an input given as JSON (the payload its stages see); prints its outputs.
    Run {
        /// The pipeline.
        name: String,
        /// The input as JSON.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        input: Option<String>,
        /// Read the input from a file (`-`: stdin).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Lag, in-flight inputs, throughput, failures and dead letters per pipeline.
    Status {
        /// Only this pipeline.
        name: Option<String>,
    },
    /// Inputs given up on, with the stage and the reason.
    DeadLetters {
        /// Only this pipeline's.
        #[arg(long)]
        pipeline: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Run dead-lettered inputs again with each pipeline's current version (after a fix).
    ReplayDeadLetters {
        /// Only this pipeline's.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only this input (its CID).
        #[arg(long, value_name = "CID")]
        input: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn source_format(format: Option<Format>) -> Option<SourceFormat> {
    format.map(|f| match f {
        Format::Toml => SourceFormat::Toml,
        Format::Json => SourceFormat::Json,
    })
}

/// Runs a `pipelines` command.
pub async fn run(session: &Session, args: PipelinesArgs, out: &Output) -> anyhow::Result<Exit> {
    let engine = Remote::pipeline(session, &args.service);
    match args.command {
        PipelinesCommand::Put { file, format, expect } => {
            let request = PutPipeline {
                source: args::read_text(&file)?,
                format: source_format(format),
                expected_version: expect,
            };
            let put = engine.check(engine.client.put(&request).await, refusal)?;
            out.emit(&put, || {
                if put.unchanged {
                    format!("unchanged: {} version {} already has this definition", put.name, put.version)
                } else {
                    format!("stored {} version {} (event {})", put.name, put.version, put.event_cid)
                }
            });
        }
        PipelinesCommand::Validate { file, format } => {
            let request =
                PutPipeline { source: args::read_text(&file)?, format: source_format(format), expected_version: None };
            let view = engine.check(engine.client.validate(&request).await, refusal)?;
            out.emit(&view, || format!("{} is a valid definition of pipeline {}", file.display(), view.name));
        }
        PipelinesCommand::List => {
            let list = engine.check(engine.client.list().await, |_| None)?;
            out.emit(&list, || {
                if list.pipelines.is_empty() {
                    return "no pipelines; define one with `cim pipelines put FILE`".to_owned();
                }
                list.pipelines
                    .iter()
                    .map(|p| {
                        let state = if p.paused { "paused" } else { "running" };
                        format!("{:<24} v{:<4} {:<8} {}\n", p.name, p.version, state, p.trigger)
                    })
                    .collect()
            });
        }
        PipelinesCommand::Show { name, version } => {
            let view = engine.check(engine.client.get(&name, version).await, refusal)?;
            out.emit(&view, || {
                let state = if view.paused { "paused" } else { "running" };
                let mut text = format!(
                    "{} version {} of {} ({state}, generation {}), event {}\n",
                    view.name, view.version, view.current_version, view.generation, view.event_cid
                );
                if !view.triggers.is_empty() {
                    text.push_str(&format!("its outputs trigger: {}\n", view.triggers.join(", ")));
                }
                if !view.triggered_by.is_empty() {
                    text.push_str(&format!("triggered by the outputs of: {}\n", view.triggered_by.join(", ")));
                }
                text.push_str(&view.source);
                text
            });
        }
        PipelinesCommand::Pause { name } => {
            let summary = engine.check(engine.client.pause(&name).await, refusal)?;
            out.emit(&summary, || {
                format!("paused {}: its inputs wait until `cim pipelines resume {}`", summary.name, summary.name)
            });
        }
        PipelinesCommand::Resume { name } => {
            let summary = engine.check(engine.client.resume(&name).await, refusal)?;
            out.emit(&summary, || format!("resumed {}", summary.name));
        }
        PipelinesCommand::Replay { name, from_sequence, from_time } => {
            let request = ReplayPipeline { name, sequence: from_sequence, time: from_time };
            let replayed = engine.check(engine.client.replay(&request).await, refusal)?;
            out.emit(&replayed, || {
                format!(
                    "replaying {} from {} (generation {}, consumer {})",
                    replayed.name, replayed.from, replayed.generation, replayed.consumer
                )
            });
        }
        PipelinesCommand::Run { name, input, file } => {
            let input = args::json_input(input.as_deref(), file.as_deref(), "the input", r#"{"text": "hello"}"#)?
                .unwrap_or_default();
            let outcome = engine.check(engine.client.run(&RunManual { name, input }).await, refusal)?;
            out.emit(&outcome, || {
                let mut text = format!(
                    "run {} of {} v{}: input {}, {} values, {} outputs\n",
                    outcome.run,
                    outcome.pipeline,
                    outcome.version,
                    outcome.input_cid,
                    outcome.values.len(),
                    outcome.outputs.len()
                );
                for cid in &outcome.outputs {
                    text.push_str(&format!("  output {cid}\n"));
                }
                text
            });
        }
        PipelinesCommand::Status { name } => {
            let status = engine.check(engine.client.status(name.as_deref()).await, refusal)?;
            out.emit(&status, || {
                let mut text = format!("as seen by instance {}\n", status.instance);
                for p in &status.pipelines {
                    text.push_str(&status_line(p));
                }
                text
            });
        }
        PipelinesCommand::DeadLetters { pipeline, limit } => {
            let letters = engine
                .check(engine.client.dead_letters(&ListDeadLetters { pipeline, limit: Some(limit) }).await, refusal)?;
            out.emit(&letters, || {
                if letters.dead_letters.is_empty() {
                    return "no dead letters".to_owned();
                }
                letters.dead_letters.iter().map(letter_line).collect()
            });
        }
        PipelinesCommand::ReplayDeadLetters { pipeline, input, limit } => {
            let request = ReplayDeadLetters { pipeline, input_cid: input, limit: Some(limit) };
            let replayed = engine.check(engine.client.replay_dead_letters(&request).await, refusal)?;
            out.emit(&replayed, || {
                let mut text =
                    format!("{} replayed, {} failed again\n", replayed.replayed.len(), replayed.failed.len());
                for letter in &replayed.failed {
                    text.push_str(&letter_line(letter));
                }
                text
            });
            if !replayed.failed.is_empty() {
                return Ok(Exit::Problems);
            }
        }
    }
    Ok(Exit::Ok)
}

fn status_line(p: &PipelineStatus) -> String {
    let state = if p.paused { "paused" } else { "running" };
    let consumer = p.consumer.as_ref().map_or_else(
        || "consumer not created yet".to_owned(),
        |c| {
            format!(
                "lag {}, in flight {}, redelivered {}, acked up to seq {}",
                c.lag, c.in_flight, c.redelivered, c.ack_floor
            )
        },
    );
    format!(
        "{} v{} {state}: {consumer}; dead letters {}; this instance: {} completed ({:.1}/s), {} skipped, {} duplicates, {} failures, {} dead-lettered, {} outputs\n",
        p.name,
        p.version,
        p.dead_letters,
        p.completed,
        p.rate_per_sec,
        p.skipped,
        p.duplicates,
        p.failures,
        p.dead_lettered,
        p.outputs
    )
}

fn letter_line(letter: &DeadLetter) -> String {
    format!(
        "{} v{} input {} (seq {}), {} attempts, {}: {}{}\n",
        letter.pipeline,
        letter.version,
        letter.input_cid,
        letter.input_seq,
        letter.attempts,
        letter.failed_at,
        letter.stage.as_deref().map(|s| format!("{s}: ")).unwrap_or_default(),
        letter.reason
    )
}

/// What to do about a refusal of the engine.
fn refusal(error: &ApiError<PipelineCode>) -> Option<String> {
    let ErrorCode::Api(code) = &error.code else { return None };
    Some(match code {
        PipelineCode::InvalidDefinition => {
            let errors: Vec<DefinitionError> =
                serde_json::from_value(error.details.get("errors").cloned().unwrap_or_default()).unwrap_or_default();
            let mut text = format!("the definition is refused ({} errors); nothing was stored:", errors.len());
            for e in &errors {
                text.push_str(&format!("\n  {e}"));
            }
            text
        }
        PipelineCode::UnknownPipeline => "`cim pipelines list` lists the pipelines".to_owned(),
        PipelineCode::VersionConflict => {
            format!(
                "not stored: the pipeline changed meanwhile; check it and retry with --expect {}",
                current_version(error)?
            )
        }
        PipelineCode::NoChange | PipelineCode::RunFailed => return None,
    })
}
