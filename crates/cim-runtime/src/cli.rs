//! The command line every component binary shares, and its `main`.
//!
//! ```text
//! cim-<component> [--config FILE] [--nats-url URL] [--http-listen ADDR]
//!                 [--log-format human|json] [--log-level FILTER]
//!                 [--instance-id ID] [--set SECTION.KEY=VALUE]...
//! cim-<component> --check-config FILE [--skip-file-checks] [overrides...]
//! ```
//!
//! Without `--config` (or `CIM_CONFIG`) every key has its default, changed
//! only by the environment and the flags.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::config::{self, Config, ConfigError, LogFormat, Override, Settings};
use crate::runtime::Runtime;

/// Exit status of `--check-config` for a configuration that does not load.
pub const EXIT_INVALID_CONFIG: u8 = 2;

/// Arguments of every component binary.
#[derive(Debug, Clone, Parser)]
pub struct RunArgs {
    /// The configuration file (TOML) [default: none; every key has a default].
    #[arg(long, short, env = "CIM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check FILE (with the environment and flag overrides) without
    /// connecting to anything; exit 0 when valid, 2 when not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<PathBuf>,
    /// With --check-config: do not require the files the configuration
    /// names (credentials, TLS) to be readable, e.g. at build time.
    #[arg(long, requires = "check_config")]
    pub skip_file_checks: bool,
    #[command(flatten)]
    pub overrides: FlagOverrides,
}

/// Flags that override single keys; `--set` overrides any.
#[derive(Debug, Clone, Default, Args)]
pub struct FlagOverrides {
    /// Overrides nats.url.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Overrides http.listen.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Overrides log.format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Overrides log.level.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Overrides runtime.instance_id.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Overrides any key: SECTION.KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Readable lines.
    Human,
    /// JSON lines.
    Json,
}

impl FlagOverrides {
    /// The flags as overrides, in the order they apply.
    pub fn to_overrides(&self) -> Result<Vec<Override>, ConfigError> {
        let flag = |key: &str, flag: &str, value: &str| Override {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: format!("{flag} {value}"),
        };
        let mut overrides = Vec::new();
        if let Some(url) = &self.nats_url {
            overrides.push(flag("nats.url", "--nats-url", url));
        }
        if let Some(listen) = &self.http_listen {
            overrides.push(flag("http.listen", "--http-listen", listen));
        }
        if let Some(format) = self.log_format {
            let format = match format {
                LogFormatArg::Human => "human",
                LogFormatArg::Json => "json",
            };
            overrides.push(flag("log.format", "--log-format", format));
        }
        if let Some(level) = &self.log_level {
            overrides.push(flag("log.level", "--log-level", level));
        }
        if let Some(id) = &self.instance_id {
            overrides.push(flag("runtime.instance_id", "--instance-id", id));
        }
        for set in &self.set {
            overrides.push(Override::parse_set(set)?);
        }
        Ok(overrides)
    }
}

/// Loads the configuration `args` point at, with `CIM_*` environment
/// variables and flags applied; returns it and the warnings to log.
pub fn load_config<S: Settings>(args: &RunArgs) -> Result<(Config<S>, Vec<String>), ConfigError> {
    let (mut overrides, warnings) = config::env_overrides::<S>(std::env::vars());
    overrides.extend(args.overrides.to_overrides()?);
    let (path, check_files) = match (&args.check_config, &args.config) {
        (Some(path), _) => (Some(path.as_path()), !args.skip_file_checks),
        (None, path) => (path.as_deref(), true),
    };
    Ok((config::load(path, &overrides, check_files)?, warnings))
}

/// The whole `main` of a component binary: parses the command line, checks
/// or loads the configuration, sets up logging and the runtime, and runs
/// `start`, which builds the component and calls [`Runtime::serve`].
pub fn main<S, F, Fut>(name: &'static str, about: &'static str, start: F) -> ExitCode
where
    S: Settings,
    F: FnOnce(Runtime<S>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let matches =
        RunArgs::command().name(name).bin_name(name).about(about).version(env!("CARGO_PKG_VERSION")).get_matches();
    let args = match RunArgs::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    let (config, warnings) = match load_config::<S>(&args) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{name}: invalid configuration: {error}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    if let Some(path) = &args.check_config {
        for warning in &warnings {
            eprintln!("{name}: warning: {warning}");
        }
        println!("{name}: configuration {} is valid", path.display());
        return ExitCode::SUCCESS;
    }
    crate::logging::init(&config.log);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let tokio = match tokio::runtime::Runtime::new() {
        Ok(tokio) => tokio,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio.block_on(async move {
        let runtime = Runtime::start(config, name).await?;
        start(runtime).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

impl From<LogFormatArg> for LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Human => Self::Human,
            LogFormatArg::Json => Self::Json,
        }
    }
}
