use std::io::Write;

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Demo {
    limit: u32,
    label: String,
}

impl Settings for Demo {
    const SECTION: &'static str = "demo";
    fn validate(&self) -> Result<(), Invalid> {
        if self.limit > 10 { Err(Invalid::new("limit", "must be at most 10")) } else { Ok(()) }
    }
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn error(text: &str, overrides: &[Override]) -> String {
    let file = file(text);
    load::<Demo>(Some(file.path()), overrides, true).expect_err("must be refused").to_string()
}

#[test]
fn loads_sections_with_defaults() {
    let file = file("[nats]\nurl = \"nats://a:4222, nats://b:4222\"\n[demo]\nlimit = 3\n");
    let config = load::<Demo>(Some(file.path()), &[], true).expect("valid");
    assert_eq!(config.nats.url, ["nats://a:4222", "nats://b:4222"]);
    assert_eq!(config.component.limit, 3);
    assert_eq!(config.store, StoreConfig::default());
}

#[test]
fn names_unknown_keys_and_sections_with_their_line() {
    let message = error("[nats]\nurl = \"nats://a:4222\"\nusr = \"x\"\n", &[]);
    assert!(
        message.contains(":3:") && message.contains("`nats.usr`") && message.contains("unknown field `usr`"),
        "{message}"
    );
    let message = error("[natz]\n", &[]);
    assert!(message.contains("unknown section `natz`"), "{message}");
    let message = error("[demo]\nlimit = \"many\"\n", &[]);
    assert!(message.contains("`demo.limit`") && message.contains(":2:"), "{message}");
}

#[test]
fn names_out_of_range_values() {
    assert!(error("[demo]\nlimit = 11\n", &[]).contains("`demo.limit` must be at most 10"));
    assert!(error("[store]\nreplicas = 9\n", &[]).contains("`store.replicas`"));
    assert!(error("[http]\nlisten = \"nowhere\"\n", &[]).contains("`http.listen`"));
    assert!(error("[log]\nlevel = \"verbose\"\n", &[]).contains("`log.level`"));
    let message = error("[nats]\ncreds_file = \"/nonexistent/x.creds\"\n", &[]);
    assert!(message.contains("`nats.creds_file`") && message.contains("/nonexistent/x.creds"), "{message}");
    let message = error("[nats]\ncreds_file = \"/etc/hostname\"\ntoken_file = \"/etc/hostname\"\n", &[]);
    assert!(message.contains("cannot be combined"), "{message}");
}

#[test]
fn an_inbox_prefix_is_literal_subject_tokens() {
    let file = file("[nats]\ninbox_prefix = \"_INBOX_ius.replies\"\n");
    let config = load::<Demo>(Some(file.path()), &[], true).expect("valid");
    assert_eq!(config.nats.inbox_prefix.as_deref(), Some("_INBOX_ius.replies"));
    for bad in ["_INBOX.>", "_INBOX.*", "_INBOX..x", "", "my inbox", "_INBOX."] {
        let message = error(&format!("[nats]\ninbox_prefix = {bad:?}\n"), &[]);
        assert!(message.contains("`nats.inbox_prefix`") && message.contains("literal tokens"), "{bad:?}: {message}");
    }
}

#[test]
fn environment_and_flags_override_the_file() {
    let vars = [
        ("CIM_NATS_URL".to_owned(), "nats://env:4222".to_owned()),
        ("CIM_DEMO_LIMIT".to_owned(), "7".to_owned()),
        ("CIM_DEMO_LABEL".to_owned(), "42".to_owned()),
        ("CIM_NATS_SERVER".to_owned(), "/usr/bin/nats-server".to_owned()),
        ("HOME".to_owned(), "/root".to_owned()),
    ];
    let (mut overrides, warnings) = env_overrides::<Demo>(vars);
    assert_eq!(warnings, ["ignoring CIM_NATS_SERVER: [nats] has no key `server`"]);
    overrides.push(Override::parse_set("demo.limit=9").expect("valid --set"));
    let file = file("[demo]\nlimit = 1\n");
    let config = load::<Demo>(Some(file.path()), &overrides, true).expect("valid");
    assert_eq!(config.nats.url, ["nats://env:4222"]);
    assert_eq!(config.component.limit, 9);
    assert_eq!(config.component.label, "42", "a number given for a string key is read as a string");
    let bad = [Override::parse_set("demo.limit=12").expect("valid --set")];
    assert!(error("", &bad).starts_with("--set demo.limit=12: `demo.limit` must be at most 10"));
    let bad = [Override { key: "demo.limit".into(), value: "lots".into(), origin: "CIM_DEMO_LIMIT".into() }];
    assert!(error("", &bad).starts_with("CIM_DEMO_LIMIT: `demo.limit`"));
    assert!(Override::parse_set("nats=1").is_err());
}

#[test]
fn without_a_file_every_key_has_its_default() {
    let config = load::<Demo>(None, &[], true).expect("the defaults are valid");
    assert_eq!(config, Config::<Demo>::default());
    let overrides = [Override::parse_set("nats.url=nats://elsewhere:4222").expect("valid --set")];
    let config = load::<Demo>(None, &overrides, true).expect("valid");
    assert_eq!(config.nats.url, ["nats://elsewhere:4222"]);
    let bad = [Override::parse_set("demo.limit=11").expect("valid --set")];
    let message = load::<Demo>(None, &bad, true).expect_err("out of range").to_string();
    assert!(message.starts_with("--set demo.limit=11: `demo.limit` must be at most 10"), "{message}");
}
