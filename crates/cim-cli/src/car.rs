//! What `cim export` and `cim import` add to `cim-archive`, which does the
//! work: the stores of the session, progress bars, and exit codes for the
//! library's errors.

use std::path::Path;
use std::sync::Mutex;

use cim_archive::{Error, Phase, Progress, Stores};
use indicatif::ProgressBar;

use crate::exit::{conflict, not_found, problems};
use crate::output::Output;
use crate::session::Session;

/// The session's stores.
pub fn stores(session: &Session) -> Stores<'_> {
    Stores { events: &session.events, objects: &session.objects, named: &session.named }
}

/// Progress bars for a person at a terminal (hidden otherwise, see
/// [`Output::progress`]), one phase at a time.
#[derive(Debug)]
pub struct Bars<'a> {
    out: &'a Output,
    bar: Mutex<Option<ProgressBar>>,
}

impl<'a> Bars<'a> {
    /// Bars shown as `out` says.
    pub fn new(out: &'a Output) -> Self {
        Self { out, bar: Mutex::new(None) }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only loses the bar.
        if let Ok(mut bar) = self.bar.lock() {
            f(&mut bar);
        }
    }
}

impl Progress for Bars<'_> {
    fn start(&self, phase: Phase, total: u64) {
        let label = match phase {
            Phase::ExportEvents => "events",
            Phase::ExportObjects | Phase::ImportObjects => "objects",
            Phase::Verify => "verifying",
            Phase::CheckChains => "checking",
            Phase::ImportEvents => "importing",
            _ => "working",
        };
        let new =
            if phase.counts_bytes() { self.out.progress_bytes(total, label) } else { self.out.progress(total, label) };
        self.with(|bar| {
            if let Some(old) = bar.replace(new) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, _: Phase, amount: u64) {
        self.with(|bar| bar.iter().for_each(|bar| bar.inc(amount)));
    }

    fn finish(&self, _: Phase) {
        self.with(|bar| bar.take().iter().for_each(ProgressBar::finish_and_clear));
    }
}

/// The library's error with the exit code it deserves: a refused archive
/// (`path`) is a verification problem (3), or a conflict (4) when it would
/// fork a chain; nothing was written then.
pub fn failure(error: Error, path: &Path) -> anyhow::Error {
    match error {
        Error::Store(error) => error.into(),
        Error::Ipld(error) => error.into(),
        error if error.is_conflict() => conflict(format!("refusing {}: {error}; nothing was written", path.display())),
        error if error.is_refusal() => problems(format!("refusing {}: {error}; nothing was written", path.display())),
        error if error.is_not_found() => not_found(error.to_string()),
        error @ (Error::Stopped { .. } | Error::NameNotMoved { .. }) => {
            anyhow::Error::new(error).context(format!("importing {}", path.display()))
        }
        error => error.into(),
    }
}
