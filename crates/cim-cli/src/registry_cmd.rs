//! `cim registry`: the Component Registry through its client
//! (`cim_registry_api::Client`): live components (listed, or watched as they
//! come and go) and the schema registry (register, list, show, validate).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cim_registry_api::{
    ComponentQuery, ComponentRecord, RegisterSchema, RegistryCode, SchemaVersion, ValidationReport,
};
use cim_wire::{ApiError, CommonCode, ErrorCode};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::args;
use crate::exit::Exit;
use crate::output::Output;
use crate::services::{Remote, ServiceArgs, current_version};
use crate::session::Session;

/// `cim registry …`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(subcommand)]
    command: RegistryCommand,
}

/// The registry commands.
#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Live components: name, instance, version, capabilities; --watch follows them coming and going.
    Components {
        /// Only components whose name matches this glob (`*`, `?`), e.g. `cim-*`.
        #[arg(long, value_name = "PATTERN")]
        name: Option<String>,
        /// Only components with a capability matching this subject pattern, e.g. `units.*` (one token) or `units.>`.
        #[arg(long, value_name = "PATTERN")]
        capability: Option<String>,
        /// Keep watching: print each instance that registers or leaves (Ctrl-C stops).
        #[arg(long)]
        watch: bool,
        /// Seconds between looks with --watch.
        #[arg(long, default_value_t = 1, value_name = "SECS", requires = "watch")]
        interval: u64,
    },
    /// The schema registry: JSON Schemas per type and version.
    #[command(subcommand)]
    Schemas(SchemasCommand),
}

/// `cim registry schemas …`.
#[derive(Debug, Subcommand)]
enum SchemasCommand {
    /// Register a new version of a type from a JSON Schema file; refused if incompatible.
    Register {
        /// The type (`[A-Za-z0-9_:-]`), e.g. `unit:recipe`.
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// The JSON Schema (`-`: stdin).
        file: PathBuf,
        /// What the version changes.
        #[arg(long)]
        description: Option<String>,
        /// Register only if the type's latest version is this one (0: a new type); exit 4 if not.
        #[arg(long, value_name = "VERSION")]
        expect: Option<u64>,
    },
    /// Schema types and their latest versions.
    List {
        /// Only types starting with this, e.g. `unit:`.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// One version of a type (the latest by default), or --history for all.
    Show {
        /// The type.
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// The version.
        #[arg(long, conflicts_with = "history")]
        version: Option<u64>,
        /// Every version, oldest first.
        #[arg(long)]
        history: bool,
    },
    /// Validate a JSON instance against a type; prints every violation with its JSON pointer, exit 2 if any.
    Validate {
        /// The type.
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// The instance as JSON.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        instance: Option<String>,
        /// Read the instance from a file (`-`: stdin).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Validate against this version [default: the latest].
        #[arg(long)]
        version: Option<u64>,
    },
}

/// Runs a `registry` command.
pub async fn run(session: &Session, args: RegistryArgs, out: &Output) -> anyhow::Result<Exit> {
    let registry = Remote::registry(session, &args.service);
    match args.command {
        RegistryCommand::Components { name, capability, watch: false, .. } => {
            let query = ComponentQuery { name, capability };
            let list = registry.check(registry.client.components(&query).await, |_| None)?;
            out.emit(&list, || {
                if list.components.is_empty() {
                    return "no live component matches".to_owned();
                }
                list.components.iter().map(|c| format!("{}\n", component_line(c))).collect()
            });
            Ok(Exit::Ok)
        }
        RegistryCommand::Components { name, capability, watch: true, interval } => {
            watch(&registry, ComponentQuery { name, capability }, Duration::from_secs(interval.max(1)), out).await
        }
        RegistryCommand::Schemas(command) => schemas(&registry, command, out).await,
    }
}

/// Prints the live instances, then each one that registers or leaves
/// (deregistered, or expired one TTL after its last heartbeat).
async fn watch(
    registry: &Remote<cim_registry_api::Client>,
    query: ComponentQuery,
    interval: Duration,
    out: &Output,
) -> anyhow::Result<Exit> {
    let mut known: BTreeMap<(String, String), ComponentRecord> = BTreeMap::new();
    let mut first = true;
    loop {
        let list = registry.check(registry.client.components(&query).await, |_| None)?;
        let now: BTreeMap<_, _> = list
            .components
            .into_iter()
            .map(|c| ((c.registration.name.clone(), c.registration.instance_id.clone()), c))
            .collect();
        for (key, record) in &now {
            if !known.contains_key(key) {
                let change = if first { "present" } else { "joined" };
                print_change(out, change, record);
            }
        }
        for (key, record) in &known {
            if !now.contains_key(key) {
                print_change(out, "left", record);
            }
        }
        known = now;
        first = false;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(Exit::Ok),
        }
    }
}

fn print_change(out: &Output, change: &str, record: &ComponentRecord) {
    if out.is_json() {
        out.json_line(&json!({ "change": change, "component": record }));
    } else {
        let mark = match change {
            "joined" => "+",
            "left" => "-",
            _ => " ",
        };
        println!("{mark} {}", component_line(record));
    }
}

fn component_line(record: &ComponentRecord) -> String {
    let r = &record.registration;
    format!(
        "{:<16} {:<12} v{:<8} capabilities: {}  (last seen {})",
        r.name,
        r.instance_id,
        r.version,
        r.capabilities.join(", "),
        record.last_seen
    )
}

async fn schemas(
    registry: &Remote<cim_registry_api::Client>,
    command: SchemasCommand,
    out: &Output,
) -> anyhow::Result<Exit> {
    match command {
        SchemasCommand::Register { type_name, file, description, expect } => {
            let schema = args::json(&args::read_text(&file)?, &file.display().to_string(), r#"{"type": "object"}"#)?;
            let request =
                RegisterSchema { type_name: type_name.clone(), schema, description, expected_version: expect };
            let registered =
                registry.check(registry.client.register_schema(&request).await, |e| refusal(&type_name, e))?;
            out.emit(&registered, || {
                let schema = &registered.schema;
                if registered.unchanged {
                    format!("unchanged: {} version {} already has this schema", schema.type_name, schema.version)
                } else {
                    format!("registered {} version {} (event {})", schema.type_name, schema.version, schema.cid)
                }
            });
        }
        SchemasCommand::List { prefix } => {
            let types = registry.check(registry.client.schemas(prefix.as_deref()).await, |_| None)?;
            out.emit(&types, || {
                types.types.iter().map(|t| format!("{:<32} v{}\n", t.type_name, t.latest_version)).collect()
            });
        }
        SchemasCommand::Show { type_name, version: _, history: true } => {
            let history =
                registry.check(registry.client.schema_history(&type_name).await, |e| refusal(&type_name, e))?;
            out.emit(&history, || history.versions.iter().map(version_line).collect());
        }
        SchemasCommand::Show { type_name, version, history: false } => {
            let schema =
                registry.check(registry.client.schema(&type_name, version).await, |e| refusal(&type_name, e))?;
            out.emit(&schema, || {
                let text = serde_json::to_string_pretty(&schema.schema).unwrap_or_default();
                format!("{}{text}", version_line(&schema))
            });
        }
        SchemasCommand::Validate { type_name, instance, file, version } => {
            let example = r#"{"text": "hello"}"#;
            let source = file.as_ref().map_or_else(|| "the instance".to_owned(), |f| f.display().to_string());
            let instance =
                args::json_input(instance.as_deref(), file.as_deref(), "the instance", example)?.unwrap_or_default();
            let report = registry
                .check(registry.client.validate(&type_name, version, &instance).await, |e| refusal(&type_name, e))?;
            out.emit(&report, || validation_text(&report, &source));
            return Ok(if report.valid { Exit::Ok } else { Exit::Usage });
        }
    }
    Ok(Exit::Ok)
}

fn version_line(version: &SchemaVersion) -> String {
    format!(
        "{} v{}  registered {}  event {}{}\n",
        version.type_name,
        version.version,
        version.registered_at,
        version.cid,
        version.description.as_deref().map(|d| format!("\n  {d}")).unwrap_or_default()
    )
}

fn validation_text(report: &ValidationReport, source: &str) -> String {
    if report.valid {
        return format!("{source} is valid against {} version {}", report.type_name, report.version);
    }
    let mut text = format!(
        "{source} does not match {} version {}: {} violations\n",
        report.type_name,
        report.version,
        report.errors.len()
    );
    for error in &report.errors {
        let pointer = if error.pointer.is_empty() { "(the whole instance)" } else { &error.pointer };
        text.push_str(&format!("  {pointer}: {}  (schema {})\n", error.message, error.schema_pointer));
    }
    text
}

/// What to do about a refusal concerning a schema type.
fn refusal(type_name: &str, error: &ApiError<RegistryCode>) -> Option<String> {
    let code = match &error.code {
        ErrorCode::Api(code) => *code,
        ErrorCode::Common(CommonCode::PayloadTooLarge) => {
            return Some("not registered: the schema is larger than the registry accepts".to_owned());
        }
        _ => return None,
    };
    let hint = match code {
        RegistryCode::UnknownSchema | RegistryCode::UnknownSchemaVersion => {
            format!(
                "`cim registry schemas list` lists the types, `cim registry schemas show {type_name} --history` its versions"
            )
        }
        RegistryCode::IncompatibleSchema => {
            "not registered: a new version may add optional properties, not remove, retype or \
                                  require them; register a new type for that"
                .to_owned()
        }
        RegistryCode::InvalidSchema => "not registered: the file is not a usable JSON Schema".to_owned(),
        RegistryCode::VersionConflict => format!(
            "not registered: {type_name} changed meanwhile; check it (`cim registry schemas show {type_name}`) and \
             retry with --expect {}",
            current_version(error)?
        ),
        RegistryCode::InvalidName => return None,
    };
    Some(hint)
}
