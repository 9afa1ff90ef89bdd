//! `cim config check`: validation without connecting.

use crate::common::{cim, cim_without};

#[test]
fn config_check_accepts_a_valid_file_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[nats]\nurl = \"nats://127.0.0.1:4222\"\n\n[store]\nnamespace = \"ops\"\nreplicas = 3\n")
        .unwrap();
    let checked = cim(&["--json", "config", "check", good.to_str().unwrap()]).json();
    assert_eq!(checked["valid"], true);
    assert_eq!(checked["config"]["store"]["namespace"], "ops");
    assert_eq!(checked["nats"], "nats://127.0.0.1:4222");
    // --config works too, and nothing is contacted (no server listens there).
    assert_eq!(cim(&["--config", good.to_str().unwrap(), "config", "check"]).code, 0);

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[store]\nnamespaec = \"ops\"\n").unwrap();
    cim(&["config", "check", typo.to_str().unwrap()]).fails(2, "unknown field `namespaec`");
    let range = dir.path().join("range.toml");
    std::fs::write(&range, "[store]\nreplicas = 9\n").unwrap();
    cim(&["config", "check", range.to_str().unwrap()]).fails(2, "`replicas` must be between 1 and 5");
    let url = dir.path().join("url.toml");
    std::fs::write(&url, "[nats]\nurl = \"nats://host:port\"\n").unwrap();
    cim(&["config", "check", url.to_str().unwrap()]).fails(2, "is not a NATS server URL");
    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[store\n").unwrap();
    cim(&["config", "check", syntax.to_str().unwrap()]).fails(2, "syntax.toml");
    cim(&["config", "check"]).fails(2, "no config file given");
}

#[tokio::test]
async fn a_config_file_logs_in_with_a_user_and_a_password_file() {
    let server = cim_test_support::NatsServer::builder()
        .config_extra("authorization { users = [ { user: admin, password: s3cret } ] }")
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let write_config = |name: &str, password_file: &std::path::Path| {
        let path = dir.path().join(name);
        let toml = format!(
            "[nats]\nurl = \"{}\"\nuser = \"admin\"\npassword_file = \"{}\"\n",
            server.url(),
            password_file.display()
        );
        std::fs::write(&path, toml).unwrap();
        path
    };
    let good = write_config("good.toml", &password);
    let status = cim(&["--config", good.to_str().unwrap(), "--json", "status"]).json();
    assert!(status.to_string().contains("CIM_EVENTS"), "{status}");

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let refused = cim(&["--config", write_config("wrong.toml", &wrong).to_str().unwrap(), "status"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.to_lowercase().contains("authoriz"), "{}", refused.stderr);

    let missing = write_config("missing.toml", &dir.path().join("absent"));
    cim(&["config", "check", missing.to_str().unwrap()]).fails(2, "password_file");
    let half = dir.path().join("half.toml");
    std::fs::write(&half, format!("[nats]\nurl = \"{}\"\nuser = \"admin\"\n", server.url())).unwrap();
    cim(&["config", "check", half.to_str().unwrap()]).fails(2, "user and password_file go together");
}

/// A system service has no home directory: with a NATS server given, `cim`
/// needs no data directory; only the embedded server does.
#[tokio::test]
async fn a_remote_server_needs_no_home_directory() {
    let env = crate::common::Env::new().await;
    let url = env.server.url();
    let no_home = ["HOME", "XDG_DATA_HOME"];
    let status = cim_without(&no_home, &["--nats", &url, "--namespace", &env.namespace, "--json", "status"]).json();
    assert_eq!(status["events"]["events"], 0);
    cim_without(&no_home, &["status"]).fails(2, "neither XDG_DATA_HOME nor HOME is set");
    cim_without(&no_home, &["--nats", &url, "server"]).fails(2, "neither XDG_DATA_HOME nor HOME is set");
}
