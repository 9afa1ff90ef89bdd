//! Request bodies read strictly: a JSON object, every field known to the
//! request type (its `deny_unknown_fields`), every integer within 64 bits.
//!
//! serde_json reads an integer beyond 64 bits as a float without a word
//! (`18446744073709551616` becomes `1.8446744073709552e19`), and a struct
//! from an array as readily as from an object; both would store something
//! the sender did not send, so both are refused before decoding.

use serde::de::DeserializeOwned;

/// Why a body was refused: what, and where (a JSON path such as
/// `.patch[0].value`, `.` for the whole body, or a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path.as_str() {
            "." => write!(f, "{}", self.message),
            byte if byte.starts_with("byte ") => write!(f, "at {byte}: {}", self.message),
            path => write!(f, "at `{path}`: {}", self.message),
        }
    }
}

/// The smallest and largest integers a body may carry: what DAG-CBOR and
/// serde_json both keep exactly.
const INTEGER_RANGE: &str = "-9223372036854775808 ..= 18446744073709551615";

/// Decodes `body` as a `T`: refuses a body that is not a JSON object and
/// any integer outside 64 bits, then names the JSON path of any mismatch
/// (an unknown field, a wrong type).
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err(Refusal { path: ".".into(), message: "the body must be a JSON object".into() }),
        None => return Err(Refusal { path: ".".into(), message: "the body is empty; send a JSON object".into() }),
    }
    if let Some((offset, literal)) = wide_integer(body) {
        let shown: String = literal.chars().take(40).collect();
        let more = if literal.len() > 40 { "…" } else { "" };
        return Err(Refusal {
            path: format!("byte {offset}"),
            message: format!(
                "the integer {shown}{more} does not fit in 64 bits ({INTEGER_RANGE}); send it as a string"
            ),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| Refusal { path: e.path().to_string(), message: e.inner().to_string() })?;
    deserializer.end().map_err(|e| Refusal { path: ".".into(), message: e.to_string() })?;
    Ok(value)
}

/// The first integer literal (no fraction, no exponent) outside
/// [`INTEGER_RANGE`], with its byte offset. Strings are skipped; the text
/// need not be valid JSON (the decoder judges that next).
fn wide_integer(body: &[u8]) -> Option<(usize, &str)> {
    let mut at = 0;
    while at < body.len() {
        match body[at] {
            b'"' => {
                at += 1;
                while at < body.len() && body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                at += 1;
                while at < body.len() && matches!(body[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    at += 1;
                }
                let literal = std::str::from_utf8(&body[start..at]).ok()?;
                let integer = !literal.contains(['.', 'e', 'E']);
                if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                    return Some((start, literal));
                }
            }
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::Value;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Command {
        id: String,
        #[serde(default)]
        expected_version: Option<u64>,
        #[serde(default)]
        value: Option<Value>,
    }

    fn refused(body: &str) -> Refusal {
        from_slice::<Command>(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn takes_a_well_formed_object() {
        let command: Command = from_slice(
            br#" {"id": "u1", "value": {"n": -9223372036854775808, "m": 18446744073709551615, "f": 1.5e300}} "#,
        )
        .expect("valid");
        assert_eq!(command.value.expect("a value")["m"], serde_json::json!(u64::MAX));
    }

    #[test]
    fn refuses_unknown_fields_by_name() {
        let refusal = refused(r#"{"id": "u1", "expected_verison": 3}"#);
        assert!(refusal.message.contains("unknown field `expected_verison`"), "{refusal}");
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for body in [r#"["u1", 3]"#, "[]", "\"u1\"", "3", "null", "", "  "] {
            let refusal = refused(body);
            assert_eq!(refusal.path, ".", "{body:?}");
            assert!(refusal.message.contains("JSON object"), "{body:?}: {refusal}");
        }
    }

    #[test]
    fn refuses_integers_beyond_64_bits_with_their_offset() {
        let refusal = refused(r#"{"id": "u1", "value": {"x": 18446744073709551616}}"#);
        assert_eq!(refusal.path, "byte 28");
        assert!(refusal.message.starts_with("the integer 18446744073709551616 does not fit in 64 bits"), "{refusal}");
        let refusal = refused(r#"{"id": "u1", "value": [-9223372036854775809]}"#);
        assert!(refusal.message.starts_with("the integer -9223372036854775809 "), "{refusal}");
        let long = format!(r#"{{"id": "u1", "value": {}}}"#, "9".repeat(500));
        assert!(refused(&long).message.len() < 200, "a long literal is shown cut");
    }

    #[test]
    fn digits_inside_strings_are_text() {
        let body = r#"{"id": "18446744073709551616 \" 99999999999999999999999", "value": "1e999999999999999999999"}"#;
        assert_eq!(
            from_slice::<Command>(body.as_bytes()).expect("strings").id,
            "18446744073709551616 \" 99999999999999999999999"
        );
    }

    #[test]
    fn trailing_text_is_refused() {
        assert!(refused(r#"{"id": "u1"} {"id": "u2"}"#).message.contains("trailing"));
    }
}
