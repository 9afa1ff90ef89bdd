//! The command line: global options and the command tree. Each command's
//! own arguments live beside its implementation.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::{
    config_cmd, dag_cmd, demo, events_cmd, export, hub_cmd, import, nats_config_cmd, objects_cmd, pipelines_cmd,
    registry_cmd, server_cmd, storage_cmd, units_cmd, up, verify_cmd,
};

/// The CIM operator's tool: events, objects, the MerkleDAG, verification and
/// CAR archives on NATS JetStream; units and the registry of the running services.
///
/// Without --nats, CIM_NATS_URL or a config file naming a server, cim uses an
/// embedded nats-server keeping its data in --data-dir: it connects to a
/// `cim server` running there, or starts one just for this command.
#[derive(Debug, Parser)]
#[command(name = "cim", version, max_term_width = 100)]
#[command(after_help = "Exit codes: 0 ok, 1 error, 2 bad usage or input, 3 verification found problems, \
                        4 conflict, 5 not found. Documentation: docs/cli.md")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// NATS server URL(s), comma-separated; overrides the config file.
    #[arg(long, env = "CIM_NATS_URL", global = true, value_name = "URL")]
    pub nats: Option<String>,
    /// TOML configuration file ([nats], [store], [embedded]).
    #[arg(long, env = "CIM_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded server [default: $XDG_DATA_HOME/cim or ~/.local/share/cim].
    #[arg(long, env = "CIM_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store namespace (prefix of every stream, subject and bucket); overrides [store] namespace.
    #[arg(long, env = "CIM_NAMESPACE", global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Machine-readable JSON on stdout; no progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// Run the whole stack until Ctrl-C: the embedded nats-server with a user per
    /// component, and every component of components.toml, supervised.
    Up(up::UpArgs),
    /// Run the embedded nats-server in the foreground until Ctrl-C.
    Server(server_cmd::ServerArgs),
    /// Check a configuration file without connecting.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Add bcrypt hashes of the users' passwords to a NATS server configuration
    /// (what the NixOS host module runs before NATS starts).
    NatsConfig(nats_config_cmd::NatsConfigArgs),
}

/// Commands that work on a store, connected as the global options say.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Append, read, show and follow events.
    #[command(subcommand)]
    Events(events_cmd::EventsCommand),
    /// Verify every event and object (or one aggregate) against its CID and chain.
    Verify(verify_cmd::VerifyArgs),
    /// Walk the MerkleDAG: ancestors, descendants, causal paths (text, JSON or Graphviz DOT).
    #[command(subcommand)]
    Dag(dag_cmd::DagCommand),
    /// Store and fetch content-addressed objects, and named versions of them.
    #[command(subcommand)]
    Objects(objects_cmd::ObjectsCommand),
    /// Export events (and the objects they link) to a CAR file.
    Export(export::ExportArgs),
    /// Import a CAR file, verifying every block and chain before writing anything.
    Import(import::ImportArgs),
    /// Show the server, the store's streams and buckets, counts and sizes.
    Status,
    /// Create (or check and adapt) the store's stream and buckets and every
    /// component's KV bucket, as the admin: components only attach to them.
    Provision,
    /// Show what CIM does: append linked events, store objects, verify, export a CAR.
    Demo(demo::DemoArgs),
    /// Units of information through the Information Unit System (cim-ius must be running).
    Units(units_cmd::UnitsArgs),
    /// Components and schemas through the Component Registry (cim-registry must be running).
    Registry(registry_cmd::RegistryArgs),
    /// The Integration Hub's API tokens, webhooks and delivery log (cim-hub must be running).
    Hub(hub_cmd::HubArgs),
    /// Pipelines through the Pipeline Engine (cim-pipeline must be running): define, run, watch, dead letters.
    Pipelines(pipelines_cmd::PipelinesArgs),
    /// The warm and cold tiers through the Storage Manager (cim-storage must be running): status, seal, scrub, gc, retention, restore.
    Storage(storage_cmd::StorageArgs),
    /// Bring a fresh host's store back from the tiers, verifying everything first (cim-storage must be running).
    Restore(storage_cmd::RestoreArgs),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_tree_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
