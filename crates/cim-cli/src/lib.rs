//! `cim`, the CIM operator's command-line tool.
//!
//! A library with a thin `main.rs`, so tests and other tools can call
//! [`run`] directly. Every subcommand group lives in its own module; they
//! share the connection logic ([`session`]), the settings ([`settings`]),
//! output and progress handling ([`output`]) and the exit codes ([`exit`]).
//! `docs/cli.md` documents every command, flag, variable and exit code.

mod args;
mod car;
mod cli;
mod config_cmd;
mod dag_cmd;
mod demo;
mod demo_services;
mod embedded;
mod events_cmd;
pub mod exit;
mod export;
mod hub_cmd;
mod import;
mod nats_config_cmd;
mod objects_cmd;
mod output;
mod pipelines_cmd;
mod provision_cmd;
mod registry_cmd;
mod server_cmd;
mod services;
mod session;
mod settings;
mod status;
mod storage_cmd;
mod tiers;
mod units_cmd;
mod units_text;
mod up;
mod verify_cmd;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
use cli::{Command, StoreCommand};
use exit::Exit;
use output::Output;

/// Parses the command line, runs the command and maps the outcome to an
/// exit code (see [`Exit`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    let out = Output::new(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return out.fail(&anyhow::Error::new(error).context("cannot start the async runtime")).into(),
    };
    match runtime.block_on(run(cli, &out)) {
        Ok(exit) => exit.into(),
        Err(error) => out.fail(&error).into(),
    }
}

/// Runs one parsed command; errors carry the context the user needs.
pub async fn run(cli: Cli, out: &Output) -> anyhow::Result<Exit> {
    let global = cli.global;
    match cli.command {
        Command::Config(command) => config_cmd::run(&global, command, out),
        Command::Server(args) => server_cmd::run(&global, args, out).await,
        Command::Up(args) => up::run(&global, args, out).await,
        Command::NatsConfig(args) => nats_config_cmd::run(args, out),
        Command::Store(command) => {
            let settings = settings::Settings::resolve(&global)?;
            let session = session::Session::open(&settings, out).await?;
            let result = match command {
                StoreCommand::Events(command) => events_cmd::run(&session, command, out).await,
                StoreCommand::Verify(args) => verify_cmd::run(&session, args, out).await,
                StoreCommand::Dag(command) => dag_cmd::run(&session, command, out).await,
                StoreCommand::Objects(command) => objects_cmd::run(&session, command, out).await,
                StoreCommand::Export(args) => export::run(&session, args, out).await.map(|_| Exit::Ok),
                StoreCommand::Import(args) => import::run(&session, args, out).await,
                StoreCommand::Status => status::run(&session, out).await,
                StoreCommand::Provision => provision_cmd::run(&session, out).await,
                StoreCommand::Demo(args) => demo::run(&session, &settings, args, out).await,
                StoreCommand::Units(args) => units_cmd::run(&session, args, out).await,
                StoreCommand::Registry(args) => registry_cmd::run(&session, args, out).await,
                StoreCommand::Hub(args) => hub_cmd::run(&session, args, out).await,
                StoreCommand::Pipelines(args) => pipelines_cmd::run(&session, args, out).await,
                StoreCommand::Storage(args) => storage_cmd::run(&session, args, out).await,
                StoreCommand::Restore(args) => storage_cmd::restore(&session, args, out).await,
            };
            // Stop a transient embedded server even when the command failed.
            let closed = session.close().await;
            let exit = result?;
            closed?;
            Ok(exit)
        }
    }
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` debug, `-vvv`
/// trace; `RUST_LOG` overrides.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
