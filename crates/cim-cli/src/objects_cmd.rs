//! `cim objects`: content-addressed objects and named versions of them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cim_store::{NamedRecord, ObjectMeta};
use clap::Subcommand;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::args;
use crate::exit::{Exit, not_found};
use crate::output::Output;
use crate::session::Session;

/// `cim objects …`.
#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// Store a file (`-`: stdin); prints its CID. Identical content is stored once.
    Put {
        /// The file.
        file: PathBuf,
        /// Also make it the next version of this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Write an object to stdout or a file, verified against its CID.
    Get {
        /// The object's CID (or use --name).
        #[arg(required_unless_present = "name", conflicts_with = "name")]
        cid: Option<String>,
        /// The latest (or --version) content of a name.
        #[arg(long)]
        name: Option<String>,
        /// A version of --name.
        #[arg(long, requires = "name")]
        version: Option<u64>,
        /// Write here (only once the content is verified) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List every object: CID, size, when stored.
    List,
    /// Show an object's size and chunks without reading it.
    Stat {
        /// The object's CID.
        cid: String,
    },
    /// List every name with its latest version.
    Names,
    /// Every version of a name, newest first.
    History {
        /// The name.
        name: String,
    },
}

/// Runs an `objects` command.
pub async fn run(session: &Session, command: ObjectsCommand, out: &Output) -> anyhow::Result<Exit> {
    match command {
        ObjectsCommand::Put { file, name } => put(session, &file, name.as_deref(), out).await,
        ObjectsCommand::Get { cid, name, version, output } => {
            let cid = match (cid, name) {
                (Some(cid), _) => args::cid(&cid)?,
                (None, Some(name)) => match version {
                    Some(version) => session.named.version(&name, version).await?.record.content,
                    None => {
                        let head = session.named.head(&name).await?;
                        head.ok_or_else(|| not_found(format!("no named object {name:?}")))?.record.content
                    }
                },
                (None, None) => unreachable!("clap requires a CID or --name"),
            };
            get(session, &cid, output.as_deref(), out).await
        }
        ObjectsCommand::List => {
            let objects = session.objects.list().await?;
            let json: Vec<Value> = objects.iter().map(meta_json).collect();
            out.emit(&json, || {
                objects.iter().map(|o| format!("{}  {:>12} bytes  {}\n", o.cid, o.size, stored_at(o))).collect()
            });
            Ok(Exit::Ok)
        }
        ObjectsCommand::Stat { cid } => {
            let cid = args::cid(&cid)?;
            let meta = session
                .objects
                .stat(&cid)
                .await?
                .ok_or_else(|| not_found(format!("object {cid} is not in the store")))?;
            out.emit(&meta_json(&meta), || {
                format!(
                    "object  {}\nsize    {} bytes in {} chunks\nstored  {}",
                    meta.cid,
                    meta.size,
                    meta.chunks,
                    stored_at(&meta)
                )
            });
            Ok(Exit::Ok)
        }
        ObjectsCommand::Names => {
            let mut names = Vec::new();
            for name in session.named.names().await? {
                if let Some(head) = session.named.head(&name).await? {
                    names.push(head);
                }
            }
            let json: Vec<Value> = names.iter().map(record_json).collect();
            out.emit(&json, || {
                names
                    .iter()
                    .map(|r| format!("{}  v{}  {}\n", r.record.name, r.record.version, r.record.content))
                    .collect()
            });
            Ok(Exit::Ok)
        }
        ObjectsCommand::History { name } => {
            let history = session.named.history(&name).await?;
            let json: Vec<Value> = history.iter().map(record_json).collect();
            out.emit(&json, || {
                history
                    .iter()
                    .map(|r| {
                        format!(
                            "v{:<4} {}  {}  (record {})\n",
                            r.record.version, r.record.content, r.record.timestamp_us, r.cid
                        )
                    })
                    .collect()
            });
            Ok(Exit::Ok)
        }
    }
}

async fn put(session: &Session, file: &Path, name: Option<&str>, out: &Output) -> anyhow::Result<Exit> {
    if let Some(name) = name {
        cim_store::validate_name(name)?;
    }
    let meta = if file.as_os_str() == "-" {
        session.objects.put(tokio::io::stdin()).await?
    } else {
        let input = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
        session.objects.put(input).await.with_context(|| format!("storing {}", file.display()))?
    };
    let record = match name {
        Some(name) => Some(session.named.set(name, meta.cid).await?),
        None => None,
    };
    let json = json!({ "cid": meta.cid.to_string(), "size": meta.size, "named": record.as_ref().map(record_json) });
    out.emit(&json, || {
        let mut text = format!("{}\nstored {} bytes", meta.cid, meta.size);
        if let Some(record) = &record {
            text.push_str(&format!(
                "; {:?} is now at version {} (record {})",
                record.record.name, record.record.version, record.cid
            ));
        }
        text
    });
    Ok(Exit::Ok)
}

async fn get(session: &Session, cid: &cim_cid::Cid, output: Option<&Path>, out: &Output) -> anyhow::Result<Exit> {
    // Hot, or the Storage Manager's tiers when hot dropped it.
    let in_hot = match session.objects.stat(cid).await {
        Ok(found) => found.is_some(),
        Err(error) => return Err(error.into()),
    };
    let Some(path) = output else {
        let mut stdout = tokio::io::stdout();
        if in_hot {
            session.objects.copy_to(cid, &mut stdout).await?;
        } else {
            fall_through(session, cid, &mut stdout).await?;
        }
        stdout.flush().await?;
        return Ok(Exit::Ok);
    };
    // Written beside the target and renamed only once verified, so a corrupt
    // object never appears under the requested name.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut file = tokio::fs::File::from_std(temp.reopen()?);
    let written = if in_hot {
        session.objects.copy_to(cid, &mut file).await?
    } else {
        let written = fall_through(session, cid, &mut file).await?;
        out.note(format!("(read from the archive: hot no longer holds {cid})"));
        written
    };
    file.sync_all().await?;
    temp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    out.emit(&json!({ "cid": cid.to_string(), "size": written, "output": path }), || {
        format!("wrote {written} bytes of {cid} to {} (verified)", path.display())
    });
    Ok(Exit::Ok)
}

/// An object hot does not hold, from the Storage Manager's tiers; not found
/// when neither has it.
async fn fall_through(
    session: &Session,
    cid: &cim_cid::Cid,
    output: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> anyhow::Result<u64> {
    match crate::tiers::copy_object(session, cid, output).await {
        Ok(written) => Ok(written),
        Err(error) => {
            let unknown = error.chain().any(|cause| {
                cause.downcast_ref::<cim_wire::RequestError<cim_storage_api::StorageCode>>().is_some_and(|e| {
                    crate::tiers::is_not_found(e) || matches!(e, cim_wire::RequestError::NoResponders { .. })
                })
            });
            if unknown {
                return Err(cim_store::Error::ObjectNotFound(*cid).into());
            }
            Err(error)
        }
    }
}

fn stored_at(meta: &ObjectMeta) -> String {
    meta.stored_at.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

fn meta_json(meta: &ObjectMeta) -> Value {
    json!({
        "cid": meta.cid.to_string(),
        "size": meta.size,
        "chunks": meta.chunks,
        "stored_at": meta.stored_at.map(|t| t.to_string()),
    })
}

fn record_json(record: &NamedRecord) -> Value {
    json!({
        "name": record.record.name,
        "version": record.record.version,
        "content": record.record.content.to_string(),
        "record": record.cid.to_string(),
        "prev": record.record.prev.map(|p| p.to_string()),
        "timestamp": record.record.timestamp_us.to_string(),
    })
}
