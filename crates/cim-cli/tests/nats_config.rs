//! `cim nats-config`: the NATS users' passwords added as bcrypt hashes, and
//! a real nats-server letting exactly those passwords in.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::common::cim;

#[tokio::test]
async fn hashed_passwords_let_the_right_logins_in() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("nats-password-admin"), "  admin-s3cret\n").unwrap();
    std::fs::write(credentials.join("nats-password-ius"), "ius-s3cret").unwrap();
    let base = dir.path().join("base.json");
    let users = json!([
        { "user": "admin", "permissions": { "publish": { "allow": [">"] }, "subscribe": { "allow": [">"] } } },
        { "user": "ius", "permissions": { "publish": { "allow": ["ius.>"] }, "subscribe": { "allow": ["_INBOX_ius.>"] } } },
    ]);
    std::fs::write(&base, json!({ "accounts": { "T": { "users": users } } }).to_string()).unwrap();
    let out = dir.path().join("nats.conf");
    let args = ["nats-config", base.to_str().unwrap(), "--credentials", credentials.to_str().unwrap()];

    let run = cim(&[&args[..], &["--out", out.to_str().unwrap(), "--cost", "4"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("s3cret"), "a password in plain text:\n{text}");
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    let config: Value = serde_json::from_str(&text).unwrap();
    for user in config["accounts"]["T"]["users"].as_array().unwrap() {
        assert!(user["password"].as_str().unwrap().starts_with("$2a$04$"), "{user}");
    }

    // nats-server takes the hashes: the right password logs in, no other.
    let accounts = serde_json::to_string(&config["accounts"]).unwrap();
    let server = cim_test_support::NatsServer::builder().config_extra(&format!("accounts: {accounts}")).start().await;
    let login = |user: &'static str, password: &'static str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into()).connect(server.url())
    };
    let client = login("admin", "admin-s3cret").await.expect("admin logs in");
    client.flush().await.unwrap();
    let client = login("ius", "ius-s3cret").await.expect("ius logs in");
    client.flush().await.unwrap();
    assert!(login("ius", "admin-s3cret").await.is_err(), "ius logged in with admin's password");
    assert!(login("admin", "$2a$04$x").await.is_err());
}

#[test]
fn a_missing_or_empty_password_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, json!({ "accounts": { "T": { "users": [{ "user": "ius" }] } } }).to_string()).unwrap();
    let out = dir.path().join("nats.conf");
    let (base, dir_s, out_s) = (base.to_str().unwrap(), dir.path().to_str().unwrap(), out.to_str().unwrap());
    cim(&["nats-config", base, "--credentials", dir_s, "--out", out_s]).fails(1, "nats-password-ius");
    std::fs::write(dir.path().join("nats-password-ius"), " \n").unwrap();
    cim(&["nats-config", base, "--credentials", dir_s, "--out", out_s]).fails(1, "is empty");
    assert!(!out.exists());
    let plain = dir.path().join("plain.json");
    std::fs::write(
        &plain,
        json!({ "accounts": { "T": { "users": [{ "user": "ius", "password": "x" }] } } }).to_string(),
    )
    .unwrap();
    let plain = plain.to_str().unwrap();
    cim(&["nats-config", plain, "--credentials", dir_s, "--out", out_s]).fails(1, "already has a password");
    std::fs::write(dir.path().join("bad.json"), "{").unwrap();
    let bad = dir.path().join("bad.json");
    cim(&["nats-config", bad.to_str().unwrap(), "--credentials", dir_s, "--out", out_s]).fails(2, "not a JSON");
}
