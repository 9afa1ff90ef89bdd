//! `cim import`: a CAR into the store, verified completely before anything
//! is written; `cim_archive::verify` and `Verified::write` do the work (see
//! there, and `docs/spec/car-export.md`, for what is checked). Importing the
//! same archive twice writes nothing the second time.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::car::{Bars, failure, stores};
use crate::exit::Exit;
use crate::output::Output;
use crate::session::Session;

/// Arguments of `cim import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CAR file (as written by `cim export`).
    file: PathBuf,
    /// Verify everything against the store, then stop without writing.
    #[arg(long)]
    dry_run: bool,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    /// The archive.
    pub file: PathBuf,
    /// Its root (the manifest's CID).
    pub root: String,
    /// Events in the archive.
    pub events: u64,
    /// Events written.
    pub events_written: u64,
    /// Events the store already held.
    pub events_present: u64,
    /// Objects in the archive.
    pub objects: u64,
    /// Objects written.
    pub objects_written: u64,
    /// Aggregates in the archive.
    pub aggregates: u64,
    /// Names in the manifest, each pointed at its imported version record.
    pub names: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Runs `cim import`.
pub async fn run(session: &Session, args: ImportArgs, out: &Output) -> anyhow::Result<Exit> {
    let bars = Bars::new(out);
    let path = &args.file;
    let verified = cim_archive::verify(stores(session), path, &bars).await.map_err(|e| failure(e, path))?;
    let done = if args.dry_run {
        verified.summary().clone()
    } else {
        verified.write(stores(session), &bars).await.map_err(|e| failure(e, path))?
    };
    let imported = Imported {
        file: args.file.clone(),
        root: done.root.to_string(),
        events: done.events,
        events_written: done.events_written,
        events_present: done.events_present,
        objects: done.objects,
        objects_written: done.objects_written,
        aggregates: done.aggregates,
        names: done.names,
        dry_run: args.dry_run,
    };
    out.emit(&imported, || {
        let verb = if imported.dry_run { "verified (dry run, nothing written)" } else { "imported" };
        format!(
            "{verb} {}: root {}\n  events:  {} in {} aggregates, {} written, {} already in the store\n  objects: {}, {} written{}",
            imported.file.display(),
            imported.root,
            imported.events,
            imported.aggregates,
            imported.events_written,
            imported.events_present,
            imported.objects,
            imported.objects_written,
            if imported.names.is_empty() { String::new() } else { format!("\n  names:   {}", imported.names.join(", ")) }
        )
    });
    Ok(Exit::Ok)
}
