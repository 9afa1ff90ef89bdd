//! The `nats-server` the tests run, located once per process by
//! `cim-nats-server`'s rules, with the workspace's `.tools/venv` as the
//! fallback before `PATH`.

use std::sync::OnceLock;

use cim_nats_server::Binary;

/// The binary, located and version-checked once per process.
///
/// # Panics
/// If no binary is found or it is older than 2.12.
pub(crate) fn nats_server() -> &'static Binary {
    static BINARY: OnceLock<Result<Binary, String>> = OnceLock::new();
    let located = BINARY.get_or_init(|| {
        Binary::locate(&[crate::tools_dir().join("venv/bin/nats-server")]).map_err(|error| error.to_string())
    });
    match located {
        Ok(binary) => binary,
        Err(message) => panic!("{message}"),
    }
}
