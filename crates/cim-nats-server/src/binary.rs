//! Finding a `nats-server` binary that is new enough.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// Atomic batch publish and per-message TTL arrived in 2.12; older servers
/// (Debian ships 2.9.10) accept the headers and silently ignore them.
pub const MIN_VERSION: (u32, u32) = (2, 12);

/// The environment variable naming the binary to use; it overrides every
/// other rule.
pub const BINARY_ENV: &str = "CIM_NATS_SERVER";

/// A `nats-server` executable whose version has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    path: PathBuf,
    version: String,
}

impl Binary {
    /// Finds the binary: `$CIM_NATS_SERVER` if set, else the first of
    /// `candidates` that is a file, else `nats-server` on `PATH`; then checks
    /// that it runs and is at least [`MIN_VERSION`].
    pub fn locate(candidates: &[PathBuf]) -> Result<Self> {
        let path = match env::var_os(BINARY_ENV) {
            Some(path) => PathBuf::from(path),
            None => {
                candidates.iter().find(|path| path.is_file()).cloned().unwrap_or_else(|| PathBuf::from("nats-server"))
            }
        };
        Self::at(path)
    }

    /// Checks the binary at `path` (or found on `PATH`, for a bare name).
    pub fn at(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let output = match Command::new(&path).arg("--version").output() {
            Ok(output) => output,
            Err(source) => return Err(Error::Missing { path, source }),
        };
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let Some((version, major_minor)) = parse_version(&text) else {
            return Err(Error::UnknownVersion { path, output: text });
        };
        if major_minor < MIN_VERSION {
            return Err(Error::TooOld { path, found: version });
        }
        Ok(Self { path, version })
    }

    /// The executable.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version it reports, e.g. `2.15.1`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// Reads the version and `(major, minor)` from output such as
/// `nats-server: v2.15.1`.
fn parse_version(text: &str) -> Option<(String, (u32, u32))> {
    let version = text.split_whitespace().find_map(|word| word.strip_prefix('v'))?;
    let mut parts = version.split('.');
    let major_minor = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    Some((version.to_owned(), major_minor))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_server_versions() {
        let major_minor = |text| parse_version(text).map(|(_, mm)| mm);
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some(("2.15.1".to_owned(), (2, 15))));
        assert_eq!(major_minor("nats-server: v2.9.10"), Some((2, 9)));
        assert_eq!(major_minor("nats-server: v2.12.0-RC.1"), Some((2, 12)));
        assert_eq!(major_minor("garbage"), None);
        assert!(major_minor("nats-server: v2.9.10") < Some((2, 12)));
    }
}
