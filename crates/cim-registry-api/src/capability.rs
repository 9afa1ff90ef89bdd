//! Capability patterns. A capability is named like a NATS subject
//! (`units.read`, `registry.schemas`), and a pattern matches capabilities
//! as a subscription matches subjects: tokens are separated by `.`, `*` is
//! exactly one token, `>` (last) one or more tokens, anything else itself.
//! `units.*` matches `units.read`, not `units.read.x` nor `units`;
//! `units.>` matches both `units.read` and `units.read.x`.
//!
//! (Component-name patterns are globs instead: names have no dots.)

/// Why a pattern is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPattern {
    /// What is wrong.
    pub reason: &'static str,
}

impl std::fmt::Display for InvalidPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for InvalidPattern {}

/// Checks a pattern: tokens not empty, without whitespace, `>` only as the
/// last token, `*` and `>` only as whole tokens.
pub fn check(pattern: &str) -> Result<(), InvalidPattern> {
    let invalid = |reason| Err(InvalidPattern { reason });
    let tokens: Vec<&str> = pattern.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return invalid("a pattern has no empty tokens (no leading, trailing or double `.`)");
        }
        if token.bytes().any(|b| !b.is_ascii_graphic()) {
            return invalid("a pattern has no whitespace or control characters");
        }
        if *token != "*" && *token != ">" && token.contains(['*', '>']) {
            return invalid("`*` and `>` are whole tokens, e.g. `units.*`");
        }
        if *token == ">" && index + 1 != tokens.len() {
            return invalid("`>` is only the last token, e.g. `units.>`");
        }
    }
    Ok(())
}

/// Whether `capability` matches `pattern` (which should pass [`check`]; an
/// invalid pattern matches what its tokens literally say).
pub fn matches(pattern: &str, capability: &str) -> bool {
    let mut subject = capability.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (literal, Some(actual)) if literal == actual => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_subject_token_semantics() {
        assert!(matches("units.*", "units.read"));
        assert!(!matches("units.*", "units.read.x"));
        assert!(!matches("units.*", "units"));
        assert!(matches("units.>", "units.read"));
        assert!(matches("units.>", "units.read.x"));
        assert!(!matches("units.>", "units"));
        assert!(matches("*.read", "units.read"));
        assert!(!matches("*.read", "units.write"));
        assert!(matches(">", "registry.schemas"));
        assert!(matches("units.read", "units.read"));
        assert!(!matches("units.read", "units.reader"));
        assert!(!matches("units.rea*", "units.read"), "`*` inside a token is not a wildcard");
        assert!(matches("*", "units") && !matches("*", "units.read"));
    }

    #[test]
    fn patterns_are_checked() {
        for good in ["units.*", "units.>", ">", "*", "registry.schemas", "*.read", "a-b_c:d"] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in ["", "units.", ".units", "units..read", "units.>.read", "units.rea*", "un its", "units.>x"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
