//! Finding a `nats-server` binary that is new enough.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Atomic batch publish and per-message TTL arrived in 2.12; older servers
/// (Debian ships 2.9.10) accept the headers and silently ignore them.
const MIN_VERSION: (u32, u32) = (2, 12);

/// The `nats-server` to run, located and version-checked once per process.
///
/// # Panics
/// If no binary is found or it is older than 2.12.
pub(crate) fn nats_server() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(locate) {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    }
}

fn locate() -> Result<PathBuf, String> {
    let candidate = match env::var_os("CIM_NATS_SERVER") {
        Some(path) => PathBuf::from(path),
        None => Some(crate::tools_dir().join("venv/bin/nats-server"))
            .filter(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("nats-server")),
    };
    let output = Command::new(&candidate).arg("--version").output().map_err(|e| {
        format!("cannot run `{} --version` ({e}): run `cargo xtask tools` to install nats-server", candidate.display())
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_version(&text)
        .ok_or_else(|| format!("cannot read the version of {} from {text:?}", candidate.display()))?;
    if version < MIN_VERSION {
        return Err(format!(
            "{} is nats-server {}.{}, but CIM's tests need {}.{} or newer (atomic batch publish, per-message TTL); \
             run `cargo xtask tools` to install the pinned one into .tools/venv, or set CIM_NATS_SERVER",
            candidate.display(),
            version.0,
            version.1,
            MIN_VERSION.0,
            MIN_VERSION.1,
        ));
    }
    Ok(candidate)
}

/// Reads `(major, minor)` from output such as `nats-server: v2.15.1`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().find_map(|word| word.strip_prefix('v'))?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_server_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert_eq!(parse_version("nats-server: v2.12.0-RC.1"), Some((2, 12)));
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("nats-server: v2.9.10") < Some((2, 12)));
    }
}
