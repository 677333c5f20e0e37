//! Kyverno's `validate.pattern` overlay matching: maps, arrays, wildcard strings, `|`
//! alternatives, `!` negation, and the `=()` optional anchor. Other anchors are refused by name.

use serde_json::Value;

use crate::wildcard;

/// Checks `resource` against `pattern`; on failure returns the path where it failed.
pub(crate) fn check(resource: &Value, pattern: &Value, path: &str) -> Result<(), PatternFailure> {
    match pattern {
        Value::Object(fields) => {
            let Value::Object(object) = resource else {
                return Err(PatternFailure::Mismatch(path.to_string()));
            };
            for (key, sub_pattern) in fields {
                let (name, optional) = match key.strip_prefix("=(").and_then(|k| k.strip_suffix(')')) {
                    Some(name) => (name, true),
                    None if key.ends_with(')') && key.contains('(') => {
                        return Err(PatternFailure::Unsupported(format!(
                            "anchor {key:?} is not supported (only =() is)"
                        )));
                    }
                    None => (key.as_str(), false),
                };
                match object.get(name) {
                    None if optional => continue,
                    None => return Err(PatternFailure::Mismatch(format!("{path}{name}/"))),
                    Some(value) => check(value, sub_pattern, &format!("{path}{name}/"))?,
                }
            }
            Ok(())
        }
        Value::Array(elements) => {
            let Value::Array(items) = resource else {
                return Err(PatternFailure::Mismatch(path.to_string()));
            };
            let [element] = elements.as_slice() else {
                return Err(PatternFailure::Unsupported("array patterns must have exactly one element".into()));
            };
            for (i, item) in items.iter().enumerate() {
                check(item, element, &format!("{path}{i}/"))?;
            }
            Ok(())
        }
        Value::String(expected) => {
            let actual = match resource {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(PatternFailure::Mismatch(path.to_string())),
            };
            let ok = expected.split('|').map(str::trim).any(|alternative| match alternative.strip_prefix('!') {
                Some(negated) => !wildcard::matches(negated, &actual),
                None => wildcard::matches(alternative, &actual),
            });
            if ok { Ok(()) } else { Err(PatternFailure::Mismatch(path.to_string())) }
        }
        other => {
            if resource == other {
                Ok(())
            } else {
                Err(PatternFailure::Mismatch(path.to_string()))
            }
        }
    }
}

/// Why a pattern did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternFailure {
    /// The resource differs at this path.
    Mismatch(String),
    /// The pattern uses something sigstack does not evaluate.
    Unsupported(String),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pattern() -> Value {
        json!({"spec": {
            "=(ephemeralContainers)": [{"image": "ghcr.io/acme/*"}],
            "=(initContainers)": [{"image": "ghcr.io/acme/*"}],
            "containers": [{"image": "ghcr.io/acme/* | !*:latest"}]
        }})
    }

    #[test]
    fn restrict_image_registries() {
        let ok = json!({"spec": {"containers": [{"image": "ghcr.io/acme/app:v1"}]}});
        assert_eq!(check(&ok, &pattern(), "/"), Ok(()));
        let nginx = json!({"spec": {"containers": [{"image": "ghcr.io/acme/a:v1"}, {"image": "nginx:latest"}]}});
        assert_eq!(check(&nginx, &pattern(), "/"), Err(PatternFailure::Mismatch("/spec/containers/1/image/".into())));
        let init =
            json!({"spec": {"containers": [{"image": "ghcr.io/acme/a"}], "initContainers": [{"image": "busybox"}]}});
        assert_eq!(
            check(&init, &pattern(), "/"),
            Err(PatternFailure::Mismatch("/spec/initContainers/0/image/".into()))
        );
        let missing = json!({"spec": {}});
        assert_eq!(check(&missing, &pattern(), "/"), Err(PatternFailure::Mismatch("/spec/containers/".into())));
        // `!` and `|`: "not latest" lets other registries through in this pattern's second branch.
        let other = json!({"spec": {"containers": [{"image": "docker.io/x:1"}]}});
        assert_eq!(check(&other, &pattern(), "/"), Ok(()));
        let unsupported = json!({"^(spec)": {}});
        assert!(matches!(check(&ok, &unsupported, "/"), Err(PatternFailure::Unsupported(_))));
        assert_eq!(check(&json!({"n": 3}), &json!({"n": 3}), "/"), Ok(()));
    }
}
