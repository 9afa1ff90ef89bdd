//! `cim export`: events (everything, some aggregates, or a time range) and
//! the objects they link, to a CARv1 file whose root is the export manifest
//! (`docs/spec/car-export.md`). `cim_archive::export` does the work.

use std::path::{Path, PathBuf};

use cim_archive::{ExportSelection, Manifest};
use cim_cid::{AggregateKey, Timestamp};
use clap::Args;
use serde::Serialize;

use crate::args;
use crate::car::{Bars, failure, stores};
use crate::output::Output;
use crate::session::Session;

/// Arguments of `cim export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The CAR file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Only this aggregate, `type/id` (repeatable), with everything its events descend from.
    #[arg(long = "aggregate", value_name = "AGGREGATE")]
    aggregates: Vec<String>,
    /// Only events with a timestamp at or after this RFC 3339 time (and what they descend from).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events with a timestamp before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// The CAR file.
    pub path: PathBuf,
    /// The root: the manifest's CID.
    pub root: String,
    /// Event blocks.
    pub events: u64,
    /// Object blocks.
    pub objects: u64,
    /// Size of the file.
    pub bytes: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// Links from payloads to objects the store does not hold (not exported).
    pub missing_objects: Vec<String>,
}

/// Runs `cim export`.
pub async fn run(session: &Session, args: ExportArgs, out: &Output) -> anyhow::Result<Exported> {
    let aggregates = args.aggregates.iter().map(|a| args::aggregate(a)).collect::<anyhow::Result<Vec<_>>>()?;
    let since = args.since.as_deref().map(args::time).transpose()?;
    let until = args.until.as_deref().map(args::time).transpose()?;
    let exported = export(session, &aggregates, since, until, &args.output, out).await?;
    out.emit(&exported, || summary(&exported));
    Ok(exported)
}

/// One line per fact, for people.
pub fn summary(exported: &Exported) -> String {
    let mut text = format!(
        "wrote {} ({} bytes): {} events in {} aggregates, {} objects, {} names\nroot (export manifest): {}",
        exported.path.display(),
        exported.bytes,
        exported.events,
        exported.manifest.heads.len(),
        exported.objects,
        exported.manifest.names.len(),
        exported.root
    );
    if !exported.missing_objects.is_empty() {
        text.push_str(&format!("\nnot in the store, so not exported: {}", exported.missing_objects.join(", ")));
    }
    text
}

/// Writes the archive of the selected events to `path`.
pub async fn export(
    session: &Session,
    aggregates: &[AggregateKey],
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    path: &Path,
    out: &Output,
) -> anyhow::Result<Exported> {
    let selection = ExportSelection { aggregates: aggregates.to_vec(), since, until };
    let exported = cim_archive::export(stores(session), &selection, path, &Bars::new(out)).await.map_err(|e| {
        let corrupt = matches!(e, cim_archive::Error::Store(cim_store::Error::CorruptEvent { .. }));
        let error = failure(e, path);
        if corrupt { error.context("reading the event log (run `cim verify` to find corrupt events)") } else { error }
    })?;
    Ok(Exported {
        path: exported.path,
        root: exported.root.to_string(),
        events: exported.events,
        objects: exported.objects,
        bytes: exported.bytes,
        manifest: exported.manifest,
        missing_objects: exported.missing_objects.iter().map(ToString::to_string).collect(),
    })
}
