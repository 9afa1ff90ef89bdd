//! Parsing the values people type: aggregates, CIDs, times, JSON payloads.
//! Each failure is a usage error (exit 2) that shows the expected form.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use cim_cid::{AggregateKey, Cid, Ipld, Timestamp, ipld_from_json};
use serde_json::Value;

use crate::exit::usage;

/// `type/id`, e.g. `order/42`.
pub fn aggregate(text: &str) -> anyhow::Result<AggregateKey> {
    text.parse().map_err(|e: cim_cid::Error| usage(e.to_string()))
}

/// A CID in its string form (`bafy…`).
pub fn cid(text: &str) -> anyhow::Result<Cid> {
    text.parse().map_err(|e| usage(format!("{text:?} is not a CID ({e}); CIDs look like bafyrei…")))
}

/// An RFC 3339 time such as `2026-11-22T05:00:00Z`.
pub fn time(text: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse_rfc3339(text).map_err(|e| usage(e.to_string()))
}

/// A JSON payload, where `{"/": "<cid>"}` is an IPLD link (DAG-JSON).
pub fn payload(text: &str, source: &str) -> anyhow::Result<Ipld> {
    let json: Value = serde_json::from_str(text).map_err(|e| {
        usage(format!(
            "{source} is not valid JSON: {e}; e.g. '{{\"total\": 42, \"invoice\": {{\"/\": \"bafkrei…\"}}}}'"
        ))
    })?;
    ipld_from_json(&json).map_err(|e| usage(format!("{source} is not valid DAG-JSON: {e}")))
}

/// JSON text, e.g. a unit's content or a patch; `example` shows the form.
pub fn json(text: &str, source: &str, example: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).map_err(|e| usage(format!("{source} is not valid JSON: {e}; e.g. '{example}'")))
}

/// JSON given inline or in a file (`-`: stdin), whichever is present.
pub fn json_input(
    inline: Option<&str>,
    file: Option<&Path>,
    what: &str,
    example: &str,
) -> anyhow::Result<Option<Value>> {
    match (inline, file) {
        (Some(text), _) => json(text, what, example).map(Some),
        (None, Some(path)) => json(&read_text(path)?, &format!("{what} in {}", path.display()), example).map(Some),
        (None, None) => Ok(None),
    }
}

/// The text of a file, or of stdin for `-`.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(text)
}

/// Renders IPLD data as compact DAG-JSON text.
pub fn ipld_text(value: &Ipld) -> String {
    cim_cid::ipld_to_dag_json(value).unwrap_or_else(|e| format!("<not representable as JSON: {e}>"))
}

/// IPLD data as a DAG-JSON value.
pub fn ipld_json(value: &Ipld) -> Value {
    cim_cid::ipld_to_json(value).unwrap_or_else(|e| Value::String(format!("<not representable as JSON: {e}>")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;

    #[test]
    fn bad_values_are_usage_errors_that_show_the_form() {
        let error = aggregate("order").expect_err("no id");
        assert_eq!(Exit::of(&error), Exit::Usage);
        assert!(error.to_string().contains("order/42"), "{error}");
        assert!(cid("bafynope").expect_err("bad").to_string().contains("not a CID"));
        let error = payload("{\"total\": ", "the payload").expect_err("truncated");
        assert!(error.to_string().contains("not valid JSON"), "{error}");
        assert!(matches!(payload("{\"n\": 1}", "p").expect("valid"), Ipld::Map(_)));
        let error = json("[1,", "--patch", "[]").expect_err("truncated");
        assert_eq!(Exit::of(&error), Exit::Usage);
        assert!(error.to_string().starts_with("--patch is not valid JSON"), "{error}");
    }
}
