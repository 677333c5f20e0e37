//! Kyverno's `any`/`all` conditions (pkg/engine/variables: `SubstituteAllInConditions`,
//! `EvaluateAnyAllConditions`, and the operator handlers in `variables/operator`), as attestation
//! checks use them: `{{ jmespath }}` variables resolved against the in-toto predicate, then each
//! condition's operator applied to key and value.
//!
//! The JMESPath is the `jmespath` crate's (the standard function set); Kyverno adds its own
//! functions on top, which a policy here cannot call.

use serde::Deserialize;
use serde_json::Value;

use crate::wildcard;

/// One `{any, all}` block: every `all` condition holds, and one of `any` if there are any.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnyAllConditions {
    /// At least one must hold (when non-empty).
    #[serde(default)]
    pub any: Vec<Condition>,
    /// Every one must hold.
    #[serde(default)]
    pub all: Vec<Condition>,
}

/// `{key, operator, value, message}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Usually a `{{ variable }}`.
    pub key: Value,
    /// Kyverno's operator name.
    pub operator: String,
    /// What the key is compared with (may hold variables and wildcards).
    #[serde(default)]
    pub value: Value,
    /// Reported when the condition does not hold.
    #[serde(default)]
    pub message: Option<String>,
}

/// The operators Kyverno's CRD allows (`ConditionOperator`), minus the deprecated `Duration*` ones.
pub(crate) const OPERATORS: &[&str] = &[
    "Equals",
    "NotEquals",
    "In",
    "AnyIn",
    "AllIn",
    "NotIn",
    "AnyNotIn",
    "AllNotIn",
    "GreaterThan",
    "GreaterThanOrEquals",
    "LessThan",
    "LessThanOrEquals",
];

/// Why conditions could not be evaluated (as opposed to not holding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError(pub String);

/// Evaluates every block against `context` (the predicate). `Ok(None)`: all hold; `Ok(Some(m))`: one
/// does not, with its message.
pub fn evaluate_conditions(blocks: &[AnyAllConditions], context: &Value) -> Result<Option<String>, ConditionError> {
    for block in blocks {
        for condition in &block.all {
            if let Some(message) = failed(condition, context)? {
                return Ok(Some(message));
            }
        }
        if !block.any.is_empty() {
            let mut messages = Vec::new();
            for condition in &block.any {
                match failed(condition, context)? {
                    None => {
                        messages.clear();
                        break;
                    }
                    Some(message) => messages.push(message),
                }
            }
            if !messages.is_empty() {
                return Ok(Some(messages.join("; ")));
            }
        }
    }
    Ok(None)
}

fn failed(condition: &Condition, context: &Value) -> Result<Option<String>, ConditionError> {
    let key = substitute(&condition.key, context)?;
    let value = substitute(&condition.value, context)?;
    if apply(&condition.operator, &key, &value)? {
        return Ok(None);
    }
    Ok(Some(
        condition.message.clone().unwrap_or_else(|| {
            format!("condition failed: {} {} {}", display(&key), condition.operator, display(&value))
        }),
    ))
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replaces `{{ expr }}` in every string of `value`. A string that is one variable becomes the
/// variable's JSON value; variables inside longer strings are interpolated as text.
fn substitute(value: &Value, context: &Value) -> Result<Value, ConditionError> {
    match value {
        Value::String(text) => substitute_string(text, context),
        Value::Array(items) => items.iter().map(|v| substitute(v, context)).collect::<Result<_, _>>().map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), substitute(v, context)?)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn substitute_string(text: &str, context: &Value) -> Result<Value, ConditionError> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("{{")
    {
        return search(inner.trim(), context);
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else { break };
        out.push_str(&rest[..start]);
        out.push_str(&display(&search(rest[start + 2..start + end].trim(), context)?));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn search(expression: &str, context: &Value) -> Result<Value, ConditionError> {
    let compiled =
        jmespath::compile(expression).map_err(|e| ConditionError(format!("invalid JMESPath {expression:?}: {e}")))?;
    let found = compiled.search(context).map_err(|e| ConditionError(format!("JMESPath {expression:?}: {e}")))?;
    let found = serde_json::to_value(&*found).map_err(|e| ConditionError(e.to_string()))?;
    // Kyverno's substitution fails on a path that is not there (gojmespath NotFoundError).
    if found.is_null() {
        return Err(ConditionError(format!("Unknown key {expression:?} in path")));
    }
    Ok(found)
}

/// Whether `operator` holds for `key` and `value`.
fn apply(operator: &str, key: &Value, value: &Value) -> Result<bool, ConditionError> {
    Ok(match operator {
        "Equals" => equals(key, value),
        "NotEquals" => !equals(key, value),
        "AnyIn" => items(key).iter().any(|k| contained(k, value)),
        // `In` (deprecated) is `AllIn` for lists and membership for a single key.
        "AllIn" | "In" => items(key).iter().all(|k| contained(k, value)),
        "AnyNotIn" => items(key).iter().any(|k| !contained(k, value)),
        "AllNotIn" | "NotIn" => items(key).iter().all(|k| !contained(k, value)),
        "GreaterThan" => order(key, value)?.is_gt(),
        "GreaterThanOrEquals" => order(key, value)?.is_ge(),
        "LessThan" => order(key, value)?.is_lt(),
        "LessThanOrEquals" => order(key, value)?.is_le(),
        other => return Err(ConditionError(format!("unknown operator {other:?}"))),
    })
}

fn items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Kyverno's Equals: a string value is a wildcard pattern over a string key; numbers compare as
/// numbers (also when one side is a numeric string); anything else must be deeply equal.
fn equals(key: &Value, value: &Value) -> bool {
    match (key, value) {
        (Value::String(k), Value::String(v)) => wildcard::matches(v, k),
        (Value::Number(_), _) | (_, Value::Number(_)) => {
            matches!((number(key), number(value)), (Some(a), Some(b)) if a == b)
        }
        _ => key == value,
    }
}

fn contained(key: &Value, value: &Value) -> bool {
    items(value).iter().any(|v| equals(key, v))
}

/// Numbers as numbers; otherwise versions (`v1.2.3`, `SPDX-2.3`-style trailing numbers compare
/// component by component).
fn order(key: &Value, value: &Value) -> Result<std::cmp::Ordering, ConditionError> {
    if let (Some(a), Some(b)) = (number(key), number(value)) {
        return a.partial_cmp(&b).ok_or_else(|| ConditionError("NaN in a comparison".into()));
    }
    match (version(key), version(value)) {
        (Some(a), Some(b)) => Ok(a.cmp(&b)),
        _ => Err(ConditionError(format!("cannot compare {} with {}: neither numbers nor versions", key, value))),
    }
}

fn version(value: &Value) -> Option<Vec<u64>> {
    let text = value.as_str()?.trim();
    let digits = text.trim_start_matches(|c: char| !c.is_ascii_digit());
    let parts: Option<Vec<u64>> = digits.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn block(all: Value, any: Value) -> Vec<AnyAllConditions> {
        vec![serde_json::from_value(json!({"all": all, "any": any})).unwrap()]
    }

    fn spdx() -> Value {
        json!({"spdxVersion": "SPDX-2.3", "name": "app", "packages": [{"name": "a", "licenseConcluded": "MIT"},
               {"name": "b", "licenseConcluded": "Apache-2.0"}], "creationInfo": {"creators": ["Tool: sigstack"]}})
    }

    #[test]
    fn equals_with_variables_and_wildcards() {
        let ok = block(json!([{"key": "{{ spdxVersion }}", "operator": "Equals", "value": "SPDX-2.*"}]), json!([]));
        assert_eq!(evaluate_conditions(&ok, &spdx()), Ok(None));
        let no = block(
            json!([{"key": "{{ spdxVersion }}", "operator": "Equals", "value": "SPDX-3.0", "message": "SPDX 3 only"}]),
            json!([]),
        );
        assert_eq!(evaluate_conditions(&no, &spdx()), Ok(Some("SPDX 3 only".into())));
        let interpolated =
            block(json!([{"key": "v={{ spdxVersion }}", "operator": "Equals", "value": "v=SPDX-2.3"}]), json!([]));
        assert_eq!(evaluate_conditions(&interpolated, &spdx()), Ok(None));
    }

    #[test]
    fn list_operators_over_a_projection() {
        let licenses = "{{ packages[].licenseConcluded }}";
        let cases = [
            ("AllIn", json!(["MIT", "Apache-2.0"]), true),
            ("AllIn", json!(["MIT"]), false),
            ("AnyIn", json!(["MIT"]), true),
            ("AnyNotIn", json!(["MIT"]), true),
            ("AllNotIn", json!(["GPL-*"]), true),
            ("AllNotIn", json!(["Apache-*"]), false),
        ];
        for (operator, value, holds) in cases {
            let c = block(json!([{"key": licenses, "operator": operator, "value": value}]), json!([]));
            assert_eq!(evaluate_conditions(&c, &spdx()).unwrap().is_none(), holds, "{operator} {value}");
        }
        let length =
            block(json!([{"key": "{{ length(packages) }}", "operator": "GreaterThan", "value": 1}]), json!([]));
        assert_eq!(evaluate_conditions(&length, &spdx()), Ok(None));
    }

    #[test]
    fn any_needs_one_and_all_needs_every() {
        let any = block(
            json!([]),
            json!([{"key": "{{ name }}", "operator": "Equals", "value": "x"},
                   {"key": "{{ name }}", "operator": "Equals", "value": "app"}]),
        );
        assert_eq!(evaluate_conditions(&any, &spdx()), Ok(None));
        let none = block(json!([]), json!([{"key": "{{ name }}", "operator": "Equals", "value": "x"}]));
        assert!(evaluate_conditions(&none, &spdx()).unwrap().is_some());
    }

    #[test]
    fn versions_and_missing_keys() {
        let newer = block(
            json!([{"key": "{{ spdxVersion }}", "operator": "GreaterThanOrEquals", "value": "SPDX-2.2"}]),
            json!([]),
        );
        assert_eq!(evaluate_conditions(&newer, &spdx()), Ok(None));
        let missing = block(json!([{"key": "{{ builder.id }}", "operator": "Equals", "value": "x"}]), json!([]));
        assert!(evaluate_conditions(&missing, &spdx()).unwrap_err().0.contains("Unknown key"));
        let bad = block(json!([{"key": "{{ [ }}", "operator": "Equals", "value": "x"}]), json!([]));
        assert!(evaluate_conditions(&bad, &spdx()).unwrap_err().0.contains("invalid JMESPath"));
    }
}
