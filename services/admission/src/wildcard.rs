//! go-wildcard v1.0.3 semantics (what Kyverno's `ext/wildcard` uses): `*` matches any sequence
//! (also empty, also `/`), `?` exactly one character, anchored, case-sensitive, no escapes.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn go_wildcard_table() {
        assert!(matches("ghcr.io/org/*", "ghcr.io/org/a/b:tag"));
        assert!(matches(
            "https://github.com/org/*",
            "https://github.com/org/r/.github/workflows/x.yml@refs/heads/main"
        ));
        assert!(matches("*", ""));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(!matches("ghcr.io/org/*", "docker.io/nginx:latest"));
        assert!(!matches("GHCR.io/*", "ghcr.io/x"));
        assert!(matches("*.io/*/app:*", "ghcr.io/o/app:v1"));
    }
}
