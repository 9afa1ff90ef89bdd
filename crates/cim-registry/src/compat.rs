//! The compatibility rule for a new version of a JSON Schema. Pure.
//!
//! A new version may add optional properties and otherwise keep the shape
//! of the previous one. Walking both schemas from the root through
//! `properties` and `items`, it is refused when it:
//!
//! - `required_added`: makes a property required that was not (old data
//!   lacks it);
//! - `required_removed`: stops requiring a property that was required
//!   (readers rely on it), including by removing it;
//! - `property_removed`: drops a property the old version described;
//! - `type_changed`: changes a schema's `type`;
//! - `additional_properties_closed`: sets `additionalProperties: false`
//!   where the old version allowed other properties.
//!
//! Each refusal names the JSON pointer, into the new schema, of the keyword
//! or property at fault. Other keywords (formats, bounds, enums) are not
//! compared.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

/// One way a new version breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incompatibility {
    /// JSON pointer into the new schema, e.g. `/properties/title/type`.
    pub pointer: String,
    /// Which rule, e.g. `type_changed`.
    pub rule: &'static str,
    /// What changed.
    pub message: String,
}

/// Every way `new` breaks the rule against `old`; empty when compatible.
pub fn check(old: &Value, new: &Value) -> Vec<Incompatibility> {
    let mut found = Vec::new();
    compare(old, new, "", &mut found);
    found
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn names(schema: &Map<String, Value>, keyword: &str) -> BTreeSet<String> {
    match schema.get(keyword) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

fn compare(old: &Value, new: &Value, pointer: &str, found: &mut Vec<Incompatibility>) {
    let (Value::Object(old), Value::Object(new)) = (old, new) else { return };
    let mut refuse = |pointer: String, rule, message: String| found.push(Incompatibility { pointer, rule, message });
    if let (Some(before), Some(after)) = (old.get("type"), new.get("type"))
        && before != after
    {
        refuse(format!("{pointer}/type"), "type_changed", format!("type changed from {before} to {after}"));
    }
    let old_required = names(old, "required");
    let new_required = names(new, "required");
    for name in new_required.difference(&old_required) {
        refuse(
            format!("{pointer}/properties/{}", escape(name)),
            "required_added",
            format!("property {name:?} became required; data written under the previous version may lack it"),
        );
    }
    for name in old_required.difference(&new_required) {
        refuse(
            format!("{pointer}/properties/{}", escape(name)),
            "required_removed",
            format!("property {name:?} is no longer required; readers of the previous version rely on it"),
        );
    }
    let old_properties = names(old, "properties");
    let new_properties = names(new, "properties");
    for name in old_properties.difference(&new_properties) {
        if !old_required.contains(name) {
            refuse(
                format!("{pointer}/properties/{}", escape(name)),
                "property_removed",
                format!("property {name:?} was removed"),
            );
        }
    }
    let open = |schema: &Map<String, Value>| schema.get("additionalProperties") != Some(&Value::Bool(false));
    if open(old) && !open(new) {
        refuse(
            format!("{pointer}/additionalProperties"),
            "additional_properties_closed",
            "additionalProperties became false; data with other properties would be refused".to_owned(),
        );
    }
    for name in old_properties.intersection(&new_properties) {
        let path = format!("{pointer}/properties/{}", escape(name));
        compare(&old["properties"][name], &new["properties"][name], &path, found);
    }
    if let (Some(before), Some(after)) = (old.get("items"), new.get("items")) {
        compare(before, after, &format!("{pointer}/items"), found);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "type": "object",
            "required": ["title"],
            "properties": {
                "title": {"type": "string"},
                "body": {"type": "object", "properties": {"text": {"type": "string"}}},
                "tags": {"type": "array", "items": {"type": "string"}}
            }
        })
    }

    fn rules(new: Value) -> Vec<(String, &'static str)> {
        check(&base(), &new).into_iter().map(|i| (i.pointer, i.rule)).collect()
    }

    #[test]
    fn adding_an_optional_property_is_allowed() {
        let mut new = base();
        new["properties"]["summary"] = json!({"type": "string"});
        assert!(check(&base(), &new).is_empty());
        assert!(check(&base(), &base()).is_empty());
    }

    #[test]
    fn refusals_name_the_pointer() {
        let mut new = base();
        new["required"] = json!(["title", "summary"]);
        new["properties"]["summary"] = json!({"type": "string"});
        assert_eq!(rules(new), [("/properties/summary".to_owned(), "required_added")]);

        let mut new = base();
        new["required"] = json!([]);
        new["properties"].as_object_mut().expect("object").remove("title");
        assert_eq!(rules(new), [("/properties/title".to_owned(), "required_removed")]);

        let mut new = base();
        new["properties"]["body"]["properties"]["text"]["type"] = json!("integer");
        assert_eq!(rules(new), [("/properties/body/properties/text/type".to_owned(), "type_changed")]);

        let mut new = base();
        new["properties"]["tags"]["items"]["type"] = json!("number");
        assert_eq!(rules(new), [("/properties/tags/items/type".to_owned(), "type_changed")]);

        let mut new = base();
        new["properties"].as_object_mut().expect("object").remove("body");
        new["additionalProperties"] = json!(false);
        assert_eq!(
            rules(new),
            [
                ("/properties/body".to_owned(), "property_removed"),
                ("/additionalProperties".to_owned(), "additional_properties_closed")
            ]
        );
    }
}
