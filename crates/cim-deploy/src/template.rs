//! Subject templates: `{key}` replaced by its value, as the Nix reader does
//! with `lib.replaceStrings` (left to right, each position once); a
//! placeholder left over is unknown.

use std::collections::BTreeMap;

use crate::Error;

/// `template` with each `{key}` of `vars` replaced; `where_` names the rule
/// in errors.
pub(crate) fn render(where_: &str, vars: &BTreeMap<&'static str, String>, template: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while let Some(c) = rest.chars().next() {
        if c == '{' {
            for (key, value) in vars {
                if let Some(after) =
                    rest.strip_prefix('{').and_then(|r| r.strip_prefix(key)).and_then(|r| r.strip_prefix('}'))
                {
                    out.push_str(value);
                    rest = after;
                    continue 'scan;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if let Some(placeholder) = leftover(&out) {
        let known: Vec<String> = vars.keys().map(|k| format!("{{{k}}}")).collect();
        return Err(Error::Invalid(format!(
            "{where_}: unknown placeholder in `{template}`: {placeholder} (known here: {})",
            known.join(" ")
        )));
    }
    Ok(out)
}

/// The first `{name}` (letters and `_`) in `text`.
fn leftover(text: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(open) = text[from..].find('{') {
        let start = from + open;
        let name_len = text[start + 1..].chars().take_while(|c| c.is_ascii_alphabetic() || *c == '_').count();
        if name_len > 0 && text[start + 1 + name_len..].starts_with('}') {
            return Some(&text[start..start + name_len + 2]);
        }
        from = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("namespace", "cim".to_owned()), ("NAMESPACE", "CIM".to_owned())])
    }

    #[test]
    fn substitutes_every_occurrence() -> Result<(), Error> {
        assert_eq!(render("t", &vars(), "{NAMESPACE}_EVENTS.{namespace}.{namespace}")?, "CIM_EVENTS.cim.cim");
        assert_eq!(render("t", &vars(), "$JS.API.>")?, "$JS.API.>");
        assert_eq!(render("t", &vars(), "{}{1}")?, "{}{1}");
        Ok(())
    }

    #[test]
    fn refuses_unknown_placeholders() {
        let err = render("[rule]", &vars(), "a.{nope}.b").unwrap_err().to_string();
        assert!(err.contains("[rule]: unknown placeholder in `a.{nope}.b`: {nope}"), "{err}");
    }
}
