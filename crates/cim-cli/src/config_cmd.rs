//! `cim config check`: validates a configuration file without connecting.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::exit::{Exit, usage};
use crate::output::Output;
use crate::settings::{FileConfig, Settings, Target};

/// `cim config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (TOML syntax, known keys, values in range) and
    /// print the settings in effect, without connecting. Exit 2 if invalid.
    Check {
        /// The file [default: --config / CIM_CONFIG].
        file: Option<PathBuf>,
    },
}

/// Runs a `config` command.
pub fn run(global: &GlobalArgs, command: ConfigCommand, out: &Output) -> anyhow::Result<Exit> {
    let ConfigCommand::Check { file } = command;
    let file = file
        .or_else(|| global.config.clone())
        .ok_or_else(|| usage("no config file given: pass a FILE, --config or CIM_CONFIG"))?;
    let config = FileConfig::load(&file)?;
    let global = GlobalArgs { config: Some(file.clone()), ..global.clone() };
    let settings = Settings::resolve(&global)?;
    let nats = match &settings.target {
        Target::Remote { url, .. } => url.clone(),
        Target::Embedded => format!("embedded server on {}", settings.data_dir()?.display()),
    };
    out.emit(
        &json!({ "file": file, "valid": true, "config": config, "nats": nats, "data_dir": settings.data_dir }),
        || {
            format!(
                "{}: valid\n  nats:      {nats}\n  namespace: {}\n  replicas:  {}\n  commit:    {:?}",
                file.display(),
                settings.store.namespace,
                settings.store.replicas,
                settings.store.commit
            )
        },
    );
    Ok(Exit::Ok)
}
