//! A NATS server configuration with the users' passwords added as bcrypt
//! hashes, so that the file nats-server runs with holds no password in
//! plain text (NATS compares a password with a `$2a$…` hash by bcrypt).
//!
//! The NixOS host module renders its configuration without passwords into
//! the Nix store and adds them at NATS start with `cim nats-config`, which
//! calls [`hash_passwords`]; `cim up` uses the same for its embedded server.

use std::path::Path;

use serde_json::Value;

use crate::Error;

/// bcrypt cost of the hashes: NATS's own tooling (`nats server passwd`)
/// uses 11. Every login costs the server one bcrypt of this cost.
pub const BCRYPT_COST: u32 = 11;

/// bcrypt reads at most 72 bytes of a password; a longer one is refused
/// rather than silently cut.
const MAX_PASSWORD_BYTES: usize = 72;

/// The bcrypt hash of `password`, in the `$2a$` form NATS recognises.
pub fn hash_password(password: &str, cost: u32) -> Result<String, Error> {
    if password.is_empty() {
        return Err(Error::Password("a NATS password may not be empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Password(format!(
            "a NATS password may have at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest); this one has {}",
            password.len()
        )));
    }
    Ok(bcrypt::hash_with_result(password, cost)?.format_for_version(bcrypt::Version::TwoA))
}

/// A password file's content without white space at the ends (as
/// cim-runtime reads it); an empty one is an error.
pub fn read_password(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::PasswordFile { path: path.display().to_string(), source })?;
    let password = text.trim();
    if password.is_empty() {
        return Err(Error::Password(format!("the password file {} is empty", path.display())));
    }
    Ok(password.to_owned())
}

/// Adds `password` (the bcrypt hash of `password_of(user)`) to every user
/// of every account of `config` (`accounts.<account>.users[]`). Returns the
/// users, in order. A user that already has a password or another way to
/// log in is an error: the base configuration must hold no secret.
pub fn hash_passwords(
    config: &mut Value,
    cost: u32,
    mut password_of: impl FnMut(&str) -> Result<String, Error>,
) -> Result<Vec<String>, Error> {
    let accounts = config
        .get_mut("accounts")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::NatsConfig("no `accounts` object".into()))?;
    let mut done = Vec::new();
    for (account, body) in accounts {
        let Some(users) = body.get_mut("users") else { continue };
        let users =
            users.as_array_mut().ok_or_else(|| Error::NatsConfig(format!("accounts.{account}.users is not a list")))?;
        for entry in users {
            let entry = entry
                .as_object_mut()
                .ok_or_else(|| Error::NatsConfig(format!("a user of account {account} is not an object")))?;
            let user = entry
                .get("user")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::NatsConfig(format!("a user of account {account} has no `user` name")))?
                .to_owned();
            if let Some(key) = ["password", "nkey"].into_iter().find(|k| entry.contains_key(*k)) {
                return Err(Error::NatsConfig(format!(
                    "user {user} of account {account} already has a {key}: the base configuration must hold no secret"
                )));
            }
            let hash = hash_password(&password_of(&user)?, cost)?;
            entry.insert("password".into(), Value::String(hash));
            done.push(user);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // The lowest cost bcrypt allows keeps the tests fast; the format is the same.
    const COST: u32 = 4;

    #[test]
    fn passwords_become_hashes_nats_recognises() -> Result<(), Error> {
        let mut config = json!({ "accounts": { "CIM": { "users": [{ "user": "admin" }, { "user": "ius" }] } } });
        let users = hash_passwords(&mut config, COST, |user| Ok(format!("secret-{user}")))?;
        assert_eq!(users, ["admin", "ius"]);
        for (i, user) in users.iter().enumerate() {
            let hash = config["accounts"]["CIM"]["users"][i]["password"].as_str().expect("a password");
            assert!(hash.starts_with("$2a$04$") && hash.len() == 60, "{hash}");
            assert!(!config.to_string().contains(&format!("secret-{user}")));
            assert!(bcrypt::verify(format!("secret-{user}"), hash)?);
            assert!(!bcrypt::verify("secret-other", hash)?);
        }
        Ok(())
    }

    #[test]
    fn refuses_what_nats_would_not_take() {
        let mut config = json!({ "accounts": { "CIM": { "users": [{ "user": "a", "password": "plain" }] } } });
        let err = hash_passwords(&mut config, COST, |_| Ok("x".into())).unwrap_err();
        assert!(err.to_string().contains("already has a password"), "{err}");
        assert!(hash_password("", COST).is_err());
        assert!(hash_password(&"x".repeat(73), COST).unwrap_err().to_string().contains("at most 72 bytes"));
        let mut config = json!({ "port": 4222 });
        assert!(hash_passwords(&mut config, COST, |_| Ok("x".into())).is_err());
    }

    #[test]
    fn password_files_are_trimmed_and_may_not_be_empty() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("pw");
        std::fs::write(&file, "  s3cret \n")?;
        assert_eq!(read_password(&file)?, "s3cret");
        std::fs::write(&file, " \n")?;
        assert!(read_password(&file).unwrap_err().to_string().contains("is empty"));
        assert!(matches!(read_password(&dir.path().join("missing")), Err(Error::PasswordFile { .. })));
        Ok(())
    }
}
