//! Kubernetes objects and policy edits the admission tests (sigstack's judges and the real
//! Kyverno's) share.

use serde_json::Value;

/// A Pod with one container running `image` (YAML; no namespace: the caller's applies).
pub fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: \"{image}\"}}]\n"
    )
}

/// A Deployment whose Pod template runs `image`.
pub fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: c, image: \"{image}\"}}]\n"
    )
}

/// Applies `edit` to every keyless attestor of a policy.
pub fn each_keyless(value: &mut Value, edit: &dyn Fn(&mut Value)) {
    match value {
        Value::Object(map) => {
            if let Some(keyless) = map.get_mut("keyless") {
                edit(keyless);
            }
            map.values_mut().for_each(|v| each_keyless(v, edit));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| each_keyless(v, edit)),
        _ => {}
    }
}
