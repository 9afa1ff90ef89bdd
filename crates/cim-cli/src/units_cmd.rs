//! `cim units`: the Information Unit System's units through its client
//! (`cim_ius_api::Client`): create and change them, read any state, history,
//! chain verification, traversal, lists and kinds. Every check (schemas,
//! patches, versions, sizes, media types) is the service's; this module
//! builds requests, prints replies and says what to do about refusals.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cim_ius_api::{
    Attach, Create, Detach, Direction, Get, IusCode, List, Reached, Relate, Retire, Tags, Target, Traverse, Update,
};
use cim_wire::{ApiError, CommonCode, ErrorCode};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::args;
use crate::exit::{Exit, usage};
use crate::output::Output;
use crate::services::{Remote, ServiceArgs, current_version};
use crate::session::Session;
use crate::units_text::{committed_text, describe, history_line, list_text, object_facts, print_committed};

/// `cim units …`.
#[derive(Debug, Args)]
pub struct UnitsArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(subcommand)]
    command: UnitsCommand,
}

/// The unit commands.
#[derive(Debug, Subcommand)]
enum UnitsCommand {
    /// Create a unit of a kind; its content must match the kind's schema.
    Create(CreateArgs),
    /// Show a unit: its current state, or a past one (--version, --at, --state).
    Show(ShowArgs),
    /// Change content and metadata with an RFC 6902 JSON Patch on {"content", "metadata"}.
    Update {
        #[command(flatten)]
        change: Change,
        /// The patch, a JSON array of operations.
        #[arg(long, required_unless_present = "patch_file", conflicts_with = "patch_file", value_name = "JSON")]
        patch: Option<String>,
        /// Read the patch from a file (`-`: stdin).
        #[arg(long, value_name = "FILE")]
        patch_file: Option<PathBuf>,
    },
    /// Add tags.
    Tag {
        #[command(flatten)]
        change: Change,
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Remove tags.
    Untag {
        #[command(flatten)]
        change: Change,
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Add a typed relation to another unit, e.g. `cim units relate doc-1 cites doc-2`.
    Relate(RelateArgs),
    /// Remove a relation.
    Unrelate(RelateArgs),
    /// Store a file in the object store and attach it under a role; the service reads its media type.
    Attach {
        #[command(flatten)]
        change: Change,
        /// The file (`-`: stdin).
        file: PathBuf,
        /// The role it plays, e.g. `body` or `figure`.
        #[arg(long, default_value = "body")]
        role: String,
        /// Its media type [default: read from the content by the service].
        #[arg(long, value_name = "TYPE")]
        media_type: Option<String>,
    },
    /// Detach the object under a role (it stays in the object store).
    Detach {
        #[command(flatten)]
        change: Change,
        /// The role.
        #[arg(long, default_value = "body")]
        role: String,
    },
    /// Retire a unit: it keeps its history and takes no more changes.
    Retire {
        #[command(flatten)]
        change: Change,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every event of a unit with its CID, the state CID it made and its causes.
    History {
        /// The unit's id.
        id: String,
    },
    /// Verify a unit's chain in the store; exit 3 naming each problem.
    Verify {
        /// The unit's id.
        id: String,
    },
    /// Units reached by following relations from a unit.
    Related {
        /// The unit's id.
        id: String,
        /// How many relations away [default: 1].
        #[arg(long)]
        depth: Option<u32>,
        /// Only relations of this type.
        #[arg(long, value_name = "TYPE")]
        relation: Option<String>,
        /// Follow relations the unit has (out), others have to it (in), or both.
        #[arg(long, value_enum, default_value_t = Way::Out)]
        direction: Way,
    },
    /// List units in id order, a page at a time.
    List(ListArgs),
    /// List the kinds of units and their schema versions.
    Kinds,
    /// Register a kind (or a new version of its content schema) from a JSON Schema file.
    RegisterKind {
        /// The kind, `[a-z0-9-]`, e.g. `recipe`.
        kind: String,
        /// The JSON Schema of its content (`-`: stdin).
        schema_file: PathBuf,
    },
}

/// What every change command takes.
#[derive(Debug, Args)]
struct Change {
    /// The unit's id.
    id: String,
    /// Change only if the unit is at this version; exit 4 if not.
    #[arg(long, value_name = "VERSION")]
    expect: Option<u64>,
    /// CID of an event this change follows from (repeatable); recorded as a parent.
    #[arg(long = "caused-by", value_name = "CID")]
    caused_by: Vec<String>,
}

impl Change {
    fn target(&self) -> anyhow::Result<Target> {
        Ok(Target { id: self.id.clone(), expected_version: self.expect, caused_by: caused_by(&self.caused_by)? })
    }
}

/// Arguments of `cim units create`.
#[derive(Debug, Args)]
struct CreateArgs {
    /// The kind, e.g. `text-document` (`cim units kinds` lists them).
    kind: String,
    /// The content as JSON; `{"/": "<cid>"}` is a link [default: {}].
    #[arg(conflicts_with = "content_file")]
    content: Option<String>,
    /// Read the content from a file (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    content_file: Option<PathBuf>,
    /// The id (`[A-Za-z0-9_-]`) [default: a new one].
    #[arg(long)]
    id: Option<String>,
    /// Standard metadata as JSON, e.g. '{"title": "Minutes"}'.
    #[arg(long, value_name = "JSON", conflicts_with = "metadata_file")]
    metadata: Option<String>,
    /// Read the metadata from a file.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// A tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// CID of an event the creation follows from (repeatable).
    #[arg(long = "caused-by", value_name = "CID")]
    caused_by: Vec<String>,
}

/// Arguments of `cim units show`.
#[derive(Debug, Args)]
struct ShowArgs {
    /// The unit's id (not needed with --state).
    #[arg(required_unless_present = "state")]
    id: Option<String>,
    /// The state at this version.
    #[arg(long, conflicts_with_all = ["at", "state"])]
    version: Option<u64>,
    /// The state as of this RFC 3339 time.
    #[arg(long, value_name = "TIME", conflicts_with = "state")]
    at: Option<String>,
    /// The state with this CID.
    #[arg(long, value_name = "CID")]
    state: Option<String>,
}

/// Arguments of `relate` and `unrelate`.
#[derive(Debug, Args)]
struct RelateArgs {
    #[command(flatten)]
    change: Change,
    /// The relation type (`[a-z0-9_-]`), e.g. `cites`.
    relation: String,
    /// The other unit's id.
    target: String,
}

/// Arguments of `cim units list`.
#[derive(Debug, Args)]
struct ListArgs {
    /// Only this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only units with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only units whose metadata has this top-level value (repeatable); VALUE is JSON, else a string.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    /// Include retired units.
    #[arg(long)]
    include_retired: bool,
    /// Units per page [default: the service's, 100].
    #[arg(long)]
    limit: Option<usize>,
    /// Start after this id (the `next` of the previous page).
    #[arg(long, value_name = "ID")]
    after: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "after")]
    all: bool,
}

/// Direction of a traversal.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Way {
    Out,
    In,
    Both,
}

/// Runs a `units` command.
pub async fn run(session: &Session, args: UnitsArgs, out: &Output) -> anyhow::Result<Exit> {
    let ius = Remote::ius(session, &args.service);
    match args.command {
        UnitsCommand::Create(create) => {
            let command = create_command(create)?;
            let id = command.id.clone().unwrap_or_default();
            let committed = ius.check(ius.client.create(&command).await, |e| refusal(&id, e))?;
            print_committed(out, "created", &committed);
        }
        UnitsCommand::Show(show) => show_state(&ius, show, out).await?,
        UnitsCommand::Update { change, patch, patch_file } => {
            let example = r#"[{"op": "replace", "path": "/content/text", "value": "…"}]"#;
            let patch = args::json_input(patch.as_deref(), patch_file.as_deref(), "the patch", example)?
                .context("clap requires --patch or --patch-file")?;
            let command = Update { target: change.target()?, patch };
            let committed = ius.check(ius.client.update(&command).await, |e| refusal(&change.id, e))?;
            print_committed(out, "updated", &committed);
        }
        UnitsCommand::Tag { change, tags } => {
            let command = Tags { target: change.target()?, tags };
            let committed = ius.check(ius.client.tag(&command).await, |e| refusal(&change.id, e))?;
            print_committed(out, "tagged", &committed);
        }
        UnitsCommand::Untag { change, tags } => {
            let command = Tags { target: change.target()?, tags };
            let committed = ius.check(ius.client.untag(&command).await, |e| refusal(&change.id, e))?;
            print_committed(out, "untagged", &committed);
        }
        UnitsCommand::Relate(relate) => {
            let command = Relate { target: relate.change.target()?, relation: relate.relation, to: relate.target };
            let committed = ius.check(ius.client.relate(&command).await, |e| refusal(&relate.change.id, e))?;
            print_committed(out, "related", &committed);
        }
        UnitsCommand::Unrelate(relate) => {
            let command = Relate { target: relate.change.target()?, relation: relate.relation, to: relate.target };
            let committed = ius.check(ius.client.unrelate(&command).await, |e| refusal(&relate.change.id, e))?;
            print_committed(out, "unrelated", &committed);
        }
        UnitsCommand::Attach { change, file, role, media_type } => {
            attach(session, &ius, change, &file, role, media_type, out).await?;
        }
        UnitsCommand::Detach { change, role } => {
            let command = Detach { target: change.target()?, role };
            let committed = ius.check(ius.client.detach(&command).await, |e| refusal(&change.id, e))?;
            print_committed(out, "detached", &committed);
        }
        UnitsCommand::Retire { change, reason } => {
            let command = Retire { target: change.target()?, reason };
            let committed = ius.check(ius.client.retire(&command).await, |e| refusal(&change.id, e))?;
            print_committed(out, "retired", &committed);
        }
        UnitsCommand::History { id } => {
            let history = ius.check(ius.client.history(&id).await, |e| refusal(&id, e))?;
            out.emit(&history, || history.events.iter().map(history_line).collect());
        }
        UnitsCommand::Verify { id } => {
            let verified = ius.check(ius.client.verify(&id).await, |e| refusal(&id, e))?;
            let ok = verified.problems.is_empty();
            out.emit(
                &json!({ "id": id, "ok": ok, "verified": verified.verified, "problems": verified.problems }),
                || {
                    if ok {
                        format!(
                            "unit {id}: {} events verified; every CID matches and the chain is intact",
                            verified.verified
                        )
                    } else {
                        format!(
                            "unit {id}: {} problems:\n  {}",
                            verified.problems.len(),
                            verified.problems.join("\n  ")
                        )
                    }
                },
            );
            return Ok(if ok { Exit::Ok } else { Exit::Problems });
        }
        UnitsCommand::Related { id, depth, relation, direction } => {
            let direction = match direction {
                Way::Out => Direction::Out,
                Way::In => Direction::In,
                Way::Both => Direction::Both,
            };
            let query = Traverse { id: id.clone(), depth, relation, direction };
            let reached = ius.check(ius.client.traverse(&query).await, |e| refusal(&id, e))?;
            out.emit(&reached, || {
                if reached.units.is_empty() {
                    return format!("no unit is related to {id} that way");
                }
                let line = |u: &Reached| {
                    format!("{:<24} {:<16} depth {}  via {} from {}\n", u.id, u.kind, u.depth, u.relation, u.from)
                };
                reached.units.iter().map(line).collect()
            });
        }
        UnitsCommand::List(list) => list_units(&ius, list, out).await?,
        UnitsCommand::Kinds => {
            let kinds = ius.check(ius.client.kinds().await, |_| None)?;
            out.emit(&kinds, || {
                kinds.kinds.iter().map(|k| format!("{:<24} schema v{}\n", k.kind, k.version)).collect()
            });
        }
        UnitsCommand::RegisterKind { kind, schema_file } => {
            let schema = args::json(&args::read_text(&schema_file)?, &schema_file.display().to_string(), "{}")?;
            let registered = ius.check(ius.client.register_kind(&kind, schema).await, |e| refusal(&kind, e))?;
            out.emit(&registered, || {
                format!("kind {} has content schema version {} (unit:{})", registered.kind, registered.version, kind)
            });
        }
    }
    Ok(Exit::Ok)
}

fn create_command(create: CreateArgs) -> anyhow::Result<Create> {
    let content = args::json_input(
        create.content.as_deref(),
        create.content_file.as_deref(),
        "the content",
        r#"{"text": "Minutes of the meeting"}"#,
    )?;
    let metadata = args::json_input(
        create.metadata.as_deref(),
        create.metadata_file.as_deref(),
        "the metadata",
        r#"{"title": "Minutes", "language": "en"}"#,
    )?;
    Ok(Create {
        kind: create.kind,
        id: create.id,
        content: content.unwrap_or_else(|| json!({})),
        metadata: metadata.unwrap_or_else(|| json!({})),
        tags: create.tags,
        caused_by: caused_by(&create.caused_by)?,
    })
}

async fn show_state(ius: &Remote<cim_ius_api::Client>, show: ShowArgs, out: &Output) -> anyhow::Result<()> {
    if let Some(at) = &show.at {
        args::time(at)?; // the form is checked here, with the example
    }
    if let Some(state) = &show.state {
        args::cid(state)?;
    }
    let query =
        Get { id: show.id.clone(), version: show.version, at: show.at, state_cid: show.state, min_version: None };
    let label = show.id.unwrap_or_default();
    let view = ius.check(ius.client.get(&query).await, |e| refusal(&label, e))?;
    out.emit(&view, || describe(&view));
    Ok(())
}

async fn attach(
    session: &Session,
    ius: &Remote<cim_ius_api::Client>,
    change: Change,
    file: &Path,
    role: String,
    media_type: Option<String>,
    out: &Output,
) -> anyhow::Result<()> {
    let target = change.target()?;
    // An unknown unit is reported before anything is stored.
    let current = Get { id: Some(change.id.clone()), ..Get::default() };
    ius.check(ius.client.get(&current).await, |e| refusal(&change.id, e))?;
    let object = if file.as_os_str() == "-" {
        session.objects.put(tokio::io::stdin()).await?
    } else {
        let input = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
        session.objects.put(input).await.with_context(|| format!("storing {}", file.display()))?
    };
    let command = Attach { target, role: role.clone(), cid: object.cid.to_string(), media_type };
    let committed = ius.check(ius.client.attach(&command).await, |e| refusal(&change.id, e))?;
    // What the service read from the content: media type, size, pixels.
    let query = Get { id: Some(change.id.clone()), min_version: Some(committed.version), ..Get::default() };
    let view = ius.check(ius.client.get(&query).await, |e| refusal(&change.id, e))?;
    let attached = view.state.objects.get(&role);
    let json = json!({ "committed": committed, "role": role, "object": attached });
    out.emit(&json, || {
        let facts = attached.map(object_facts).unwrap_or_default();
        format!(
            "{}\nattached {} as {role:?} ({facts})\n{}",
            committed.event_cid,
            object.cid,
            committed_text(&committed)
        )
    });
    Ok(())
}

async fn list_units(ius: &Remote<cim_ius_api::Client>, list: ListArgs, out: &Output) -> anyhow::Result<()> {
    let metadata = list.metadata.iter().map(|pair| metadata_filter(pair)).collect::<anyhow::Result<_>>()?;
    let mut query = List {
        kind: list.kind,
        tag: list.tag,
        metadata,
        include_retired: list.include_retired,
        after: list.after,
        limit: list.limit,
    };
    let mut page = ius.check(ius.client.list(&query).await, |_| None)?;
    while list.all
        && let Some(next) = page.next.take()
    {
        query.after = Some(next);
        let more = ius.check(ius.client.list(&query).await, |_| None)?;
        page.units.extend(more.units);
        page.next = more.next;
    }
    out.emit(&page, || list_text(&page));
    if let Some(next) = &page.next {
        out.note(format!("more units follow: --after {next} (or --all)"));
    }
    Ok(())
}

/// `KEY=VALUE`, VALUE read as JSON when it is JSON, else as a string.
fn metadata_filter(pair: &str) -> anyhow::Result<(String, Value)> {
    let (key, value) = pair
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| usage(format!("--meta {pair:?} is not KEY=VALUE, e.g. --meta language=en")))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

fn caused_by(cids: &[String]) -> anyhow::Result<Vec<String>> {
    cids.iter().map(|cid| args::cid(cid).map(|cid| cid.to_string())).collect()
}

/// What to do about a refusal concerning `id` (a unit, or a kind); `None`
/// when the service's message says it all.
fn refusal(id: &str, error: &ApiError<IusCode>) -> Option<String> {
    let code = match &error.code {
        ErrorCode::Api(code) => *code,
        ErrorCode::Common(CommonCode::PayloadTooLarge) => {
            return Some(
                "nothing stored: keep content and metadata small and attach large content as an object (`cim \
                 units attach`)"
                    .to_owned(),
            );
        }
        _ => return None,
    };
    let hint = match code {
        IusCode::VersionConflict => format!(
            "nothing changed: check the unit (`cim units show {id}`) and retry with --expect {}",
            current_version(error)?
        ),
        IusCode::UnknownUnit => "`cim units list --include-retired` lists the units".to_owned(),
        IusCode::SchemaViolation => format!(
            "nothing stored: fix what the schema refuses at each JSON pointer (`cim registry schemas show {}`)",
            error.details.get("schema")?.as_str()?
        ),
        IusCode::PatchFailed => {
            format!(
                "nothing changed: the patch applies to {{\"content\", \"metadata\"}} as `cim units show {id} --json` prints them"
            )
        }
        IusCode::UnknownKind => "`cim units kinds` lists the kinds; `cim units register-kind` adds one".to_owned(),
        IusCode::UnitExists => "nothing stored: choose another --id, or leave it out for a new one".to_owned(),
        IusCode::UnitRetired => {
            "nothing changed: a retired unit keeps its history and takes no more changes".to_owned()
        }
        IusCode::NoChange => "nothing changed".to_owned(),
        IusCode::UnknownObject => {
            "cim stored the object in its --namespace; the IUS must use the same [store] namespace".to_owned()
        }
        IusCode::UnknownParent => "--caused-by must name a stored event (`cim events show <CID>`)".to_owned(),
        IusCode::UnknownState => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filters_read_json_or_strings() {
        assert_eq!(metadata_filter("year=2024").expect("number"), ("year".into(), json!(2024)));
        assert_eq!(metadata_filter("title=Minutes 3").expect("string"), ("title".into(), json!("Minutes 3")));
        assert_eq!(metadata_filter("draft=true").expect("bool"), ("draft".into(), json!(true)));
        let error = metadata_filter("=x").expect_err("no key");
        assert_eq!(Exit::of(&error), Exit::Usage);
        assert!(metadata_filter("title").is_err());
    }

    #[test]
    fn refusals_say_what_to_do() {
        let conflict = ApiError::api(IusCode::VersionConflict, "unit d is at version 3, not 1")
            .with_details(json!({ "current_version": 3 }));
        assert!(refusal("d", &conflict).expect("hint").contains("--expect 3"));
        let violation = ApiError::api(IusCode::SchemaViolation, "…").with_details(json!({ "schema": "unit:pdf" }));
        assert!(refusal("d", &violation).expect("hint").contains("schemas show unit:pdf"));
        assert!(refusal("d", &ApiError::new(CommonCode::PayloadTooLarge, "x")).expect("hint").contains("attach"));
        assert_eq!(refusal("d", &ApiError::bad_request("x")), None);
    }
}
