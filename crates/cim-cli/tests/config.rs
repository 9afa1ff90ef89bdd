//! `cim config check`: validation without connecting.

use crate::common::cim;

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
    cim(&["config", "check", url.to_str().unwrap()]).fails(2, "is not a NATS URL");
    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[store\n").unwrap();
    cim(&["config", "check", syntax.to_str().unwrap()]).fails(2, "syntax.toml");
    cim(&["config", "check"]).fails(2, "no config file given");
}
