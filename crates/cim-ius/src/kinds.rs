//! Kinds of units and the standard metadata layer, as JSON Schemas kept in
//! the schema registry: the content of a unit of kind `K` must validate
//! against schema type `unit:K` (the version the unit was created with),
//! its metadata against `unit-metadata`.

use serde_json::{Value, json};

/// Prefix of kind schema types in the registry.
pub const KIND_PREFIX: &str = "unit:";
/// Schema type of the standard metadata layer.
pub const METADATA_TYPE: &str = "unit-metadata";

/// The schema type of a kind.
pub fn schema_type(kind: &str) -> String {
    format!("{KIND_PREFIX}{kind}")
}

/// Checks a kind name: `[a-z0-9-]`, 1–64 bytes, starting with a letter.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The standard metadata layer: well-known fields, and `extensions` for
/// whatever a kind or an organisation adds.
pub fn metadata_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "CIM unit metadata",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "title": {"type": "string", "maxLength": 1024},
            "description": {"type": "string"},
            "language": {"type": "string", "description": "BCP 47 language tag, e.g. en or de-CH"},
            "authors": {"type": "array", "items": {"type": "string"}},
            "source": {"type": "string", "description": "where the information came from, e.g. a URL"},
            "license": {"type": "string"},
            "created_by": {"type": "string"},
            "extensions": {"type": "object", "description": "kind- or organisation-specific metadata"}
        }
    })
}

/// The built-in kinds and the schemas of their content.
pub fn builtin() -> Vec<(&'static str, Value)> {
    let string = json!({"type": "string"});
    vec![
        (
            "text-document",
            json!({
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": string,
                    "format": {"type": "string", "enum": ["plain", "markdown", "html"]}
                }
            }),
        ),
        (
            "chat-dialog",
            json!({
                "type": "object",
                "required": ["messages"],
                "properties": {
                    "participants": {"type": "array", "items": string},
                    "messages": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["role", "text"],
                            "properties": {"role": string, "text": string, "at": {"type": "string", "format": "date-time"}}
                        }
                    }
                }
            }),
        ),
        (
            "pdf",
            json!({"type": "object", "description": "the PDF itself is the object attached as `body`", "properties": {"summary": string}}),
        ),
        (
            "image",
            json!({"type": "object", "description": "the image itself is the object attached as `body`", "properties": {"alt_text": string, "caption": string}}),
        ),
        ("graph-mermaid", json!({"type": "object", "required": ["source"], "properties": {"source": string}})),
        ("graph-cypher", json!({"type": "object", "required": ["source"], "properties": {"source": string}})),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names() {
        assert!(builtin().iter().all(|(kind, _)| valid_kind(kind)));
        assert!(!valid_kind("Text") && !valid_kind("") && !valid_kind("a b") && !valid_kind("1abc"));
        assert_eq!(schema_type("pdf"), "unit:pdf");
    }
}
