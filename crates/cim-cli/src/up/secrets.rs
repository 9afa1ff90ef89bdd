//! `cim up`'s NATS users on the data directory: one password per user,
//! generated once into `secrets/nats-password-<user>` (directory 0700, files
//! 0600; the name the host module gives its credentials), and the server's
//! `authorization` block with the users' permissions (cim-deploy) and their
//! passwords as bcrypt hashes, never in plain text.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cim_deploy::NatsUser;
use serde_json::json;

use crate::embedded::{Credentials, Users};

/// Random bytes in a generated password (hex: twice as many characters,
/// within bcrypt's 72 bytes).
const PASSWORD_BYTES: usize = 24;

/// The directory of the passwords.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets")
}

/// `user`'s password file.
pub fn password_file(data_dir: &Path, user: &str) -> PathBuf {
    dir(data_dir).join(format!("nats-password-{user}"))
}

/// Creates `path` if needed and makes it 0700.
pub fn private_dir(path: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (0700)", path.display()))
}

/// Every user's password (generated if it has none yet) and the server's
/// `authorization` block; `admin` is the user other commands log in as.
pub fn users(data_dir: &Path, users: &[NatsUser], admin: &str) -> anyhow::Result<Users> {
    private_dir(&dir(data_dir))?;
    let mut entries = Vec::with_capacity(users.len());
    for user in users {
        let file = password_file(data_dir, &user.user);
        if !file.exists() {
            generate(&file)?;
        }
        let password = cim_deploy::read_password(&file)?;
        let mut entry = user.to_nats_json();
        entry["password"] = json!(cim_deploy::hash_password(&password, cim_deploy::BCRYPT_COST)?);
        entries.push(entry);
    }
    let authorization = format!("authorization: {}", serde_json::to_string_pretty(&json!({ "users": entries }))?);
    let admin = Credentials { user: admin.to_owned(), password_file: password_file(data_dir, admin) };
    Ok(Users { authorization, admin })
}

/// Writes a new random password to `file` (0600), which must not exist.
fn generate(file: &Path) -> anyhow::Result<()> {
    let mut bytes = [0u8; PASSWORD_BYTES];
    fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read random bytes from /dev/urandom for a NATS password")?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    out.write_all(format!("{password}\n").as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_private_kept_and_only_hashed_in_the_configuration() -> anyhow::Result<()> {
        let data = tempfile::tempdir()?;
        let deployment = cim_deploy::Deployment::embedded()?;
        let all = deployment.users("cim")?;
        let first = users(data.path(), &all, deployment.admin_user())?;
        let mode = |path: &Path| fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&dir(data.path()))?, 0o700);
        for user in &all {
            let file = password_file(data.path(), &user.user);
            assert_eq!(mode(&file)?, 0o600, "{}", file.display());
            let password = cim_deploy::read_password(&file)?;
            assert_eq!(password.len(), 2 * PASSWORD_BYTES);
            assert!(!first.authorization.contains(&password), "{}'s password is in plain text", user.user);
        }
        assert_eq!(first.authorization.matches("\"$2a$11$").count(), all.len());
        assert_eq!(first.admin.password_file, password_file(data.path(), "admin"));
        // A second start keeps the passwords.
        let admin = fs::read(&first.admin.password_file)?;
        users(data.path(), &all, deployment.admin_user())?;
        assert_eq!(fs::read(&first.admin.password_file)?, admin);
        Ok(())
    }
}
