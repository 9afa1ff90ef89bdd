//! `cim nats-config`: a NATS server configuration with every user's
//! password added as a bcrypt hash (`cim_deploy::hash_passwords`), so that
//! the file nats-server runs with holds no password in plain text. The
//! NixOS host module runs it before NATS starts (and at build time, on
//! placeholder passwords, before `nats-server -t`); `cim up` calls the same
//! function for its embedded server.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::exit::{Exit, usage};
use crate::output::Output;

/// `cim nats-config BASE --credentials DIR --out FILE`.
#[derive(Debug, Args)]
pub struct NatsConfigArgs {
    /// The server configuration without passwords (JSON), e.g. the host module's.
    base: PathBuf,
    /// Directory with each user's password in `nats-password-<user>`
    /// (systemd's $CREDENTIALS_DIRECTORY in the host module).
    #[arg(long, value_name = "DIR")]
    credentials: PathBuf,
    /// Where to write the configuration: replaced atomically, mode 0600.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// bcrypt cost (4-31).
    #[arg(long, default_value_t = cim_deploy::BCRYPT_COST, hide = true)]
    cost: u32,
}

/// Runs `cim nats-config`.
pub fn run(args: NatsConfigArgs, out: &Output) -> anyhow::Result<Exit> {
    let text = fs::read_to_string(&args.base).with_context(|| format!("cannot read {}", args.base.display()))?;
    let mut config: Value = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{} is not a JSON NATS configuration: {e}", args.base.display())))?;
    if !(4..=31).contains(&args.cost) {
        return Err(usage(format!("--cost {} is not a bcrypt cost (4-31)", args.cost)));
    }
    let users = cim_deploy::hash_passwords(&mut config, args.cost, |user| {
        cim_deploy::read_password(&args.credentials.join(format!("nats-password-{user}")))
    })
    .with_context(|| format!("cannot add the passwords to {}", args.base.display()))?;
    write_private(&args.out, &serde_json::to_string_pretty(&config)?)?;
    out.emit(&json!({ "file": args.out, "users": users }), || {
        format!("{}: {} users with bcrypt-hashed passwords ({})", args.out.display(), users.len(), users.join(", "))
    });
    Ok(Exit::Ok)
}

/// Writes `text` to a fresh file beside `path` (0600) and renames it over
/// `path`: the server never reads a half-written file.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    let mut tmp_name = name.to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
