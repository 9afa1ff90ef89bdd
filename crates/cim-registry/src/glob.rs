//! Glob patterns for component names: `*` matches any run of characters,
//! `?` one character, everything else itself. (Capability patterns match by
//! subject tokens instead: `cim_registry_api::capability`.)

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer matching with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("cim-*", "cim-ius"));
        assert!(matches("*", ""));
        assert!(matches("units.*", "units.write"));
        assert!(matches("c?m-i*s", "cim-ius"));
        assert!(!matches("cim-*", "other"));
        assert!(!matches("units.read", "units.write"));
        assert!(matches("*ius", "cim-ius"));
    }
}
