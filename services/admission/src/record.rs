//! The admission decisions a stack made, kept for the explorer: one JSON line per decision in
//! `STATE/admission/decisions.jsonl`, appended by `sigstack apply` and the webhook.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Decision, Phase, RuleStatus};

/// One rule's outcome, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRule {
    /// `policy/rule`.
    pub rule: String,
    /// `mutate` or `validate`.
    pub phase: String,
    /// `pass`, `fail`, `skip` or `error`.
    pub status: String,
    /// Kyverno's message.
    pub message: String,
}

/// One admission decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmissionRecord {
    /// Unix seconds.
    pub time: u64,
    /// Who decided: `apply`, `webhook /mutate` or `webhook /validate`.
    pub source: String,
    /// `Kind/namespace/name`.
    pub resource: String,
    /// Images as the resource wrote them.
    pub images: Vec<String>,
    /// Images after admission (pinned to digests when verified).
    pub admitted_images: Vec<String>,
    /// Whether it was admitted.
    pub admitted: bool,
    /// Kyverno's denial message, when denied.
    pub message: Option<String>,
    /// Every rule that applied.
    pub rules: Vec<RecordedRule>,
}

/// The images of a Pod or of a controller's pod template, init containers first.
pub fn resource_images(resource: &Value) -> Vec<String> {
    image_pointers(resource).into_iter().map(|(_, image)| image).collect()
}

/// Each image of a Pod or of a controller's pod template with its JSON pointer, init containers
/// first (Kyverno's `ExtractImagesFromResource` fields).
pub(crate) fn image_pointers(resource: &Value) -> Vec<(String, String)> {
    let specs = ["/spec", "/spec/template/spec", "/spec/jobTemplate/spec/template/spec"];
    let Some((pointer, spec)) =
        specs.iter().find_map(|p| resource.pointer(p).filter(|s| s.get("containers").is_some()).map(|s| (p, s)))
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, container) in spec[field].as_array().into_iter().flatten().enumerate() {
            if let Some(image) = container["image"].as_str() {
                found.push((format!("{pointer}/{field}/{i}/image"), image.to_string()));
            }
        }
    }
    found
}

impl AdmissionRecord {
    /// The record of `decision` on `resource`.
    pub fn new(source: &str, resource: &Value, namespace: Option<&str>, decision: &Decision) -> AdmissionRecord {
        let meta = &resource["metadata"];
        let name = meta["name"].as_str().or(meta["generateName"].as_str()).unwrap_or("?");
        AdmissionRecord {
            time: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
            source: source.to_string(),
            resource: format!(
                "{}/{}/{name}",
                resource["kind"].as_str().unwrap_or("?"),
                namespace.or(meta["namespace"].as_str()).unwrap_or("default")
            ),
            images: resource_images(resource),
            admitted_images: resource_images(&decision.mutated),
            admitted: decision.blocked.is_none(),
            message: decision.blocked.clone(),
            rules: decision
                .results
                .iter()
                .map(|r| RecordedRule {
                    rule: format!("{}/{}", r.policy, r.rule),
                    phase: if r.phase == Phase::Mutate { "mutate" } else { "validate" }.into(),
                    status: match r.status {
                        RuleStatus::Pass => "pass",
                        RuleStatus::Fail => "fail",
                        RuleStatus::Skip => "skip",
                        RuleStatus::Error => "error",
                    }
                    .into(),
                    message: r.message.clone(),
                })
                .collect(),
        }
    }
}

/// `STATE/admission/decisions.jsonl`.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    path: PathBuf,
    limit: u64,
}

/// The size past which the decision log starts again (the previous one kept as `.1`): a webhook
/// that runs for days must not fill the disk, and the explorer re-reads the file.
pub(crate) const DECISION_LOG_LIMIT: u64 = 8 * 1024 * 1024;

impl DecisionLog {
    /// The decision log of the stack on `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> DecisionLog {
        DecisionLog { path: state_dir.join("admission").join("decisions.jsonl"), limit: DECISION_LOG_LIMIT }
    }

    /// The same log, rotated at `limit` bytes instead.
    pub fn with_limit(self, limit: u64) -> DecisionLog {
        DecisionLog { limit, ..self }
    }

    /// Appends one record as one line (a single `write` of a line opened for appending, so
    /// concurrent writers do not interleave). A log already past the limit is first renamed to
    /// `decisions.jsonl.1` (replacing the one before), so at most twice the limit is kept.
    pub fn append(&self, record: &AdmissionRecord) -> std::io::Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.limit) {
            let mut previous = self.path.clone().into_os_string();
            previous.push(".1");
            std::fs::rename(&self.path, previous)?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(&line)
    }

    /// Every record, oldest first; lines that do not parse (a torn last line) are skipped.
    pub fn read(&self) -> Vec<AdmissionRecord> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_round_trip_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = DecisionLog::in_state_dir(dir.path());
        let pod = json!({"kind": "Pod", "metadata": {"name": "web", "namespace": "prod"},
                         "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}});
        let decision = Decision {
            results: vec![],
            patches: vec![],
            mutated: pod.clone(),
            blocked: Some("denied".into()),
            warnings: vec![],
        };
        let record = AdmissionRecord::new("apply", &pod, None, &decision);
        assert_eq!(record.resource, "Pod/prod/web");
        assert_eq!(record.images, vec!["nginx:latest"]);
        assert!(!record.admitted);
        log.append(&record).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("admission/decisions.jsonl"))
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        assert_eq!(log.read(), vec![record]);
    }

    #[test]
    fn the_log_starts_again_past_its_limit_and_keeps_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let log = DecisionLog::in_state_dir(dir.path()).with_limit(1000);
        let pod = json!({"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [{"image": "a"}]}});
        let decision =
            Decision { results: vec![], patches: vec![], mutated: pod.clone(), blocked: None, warnings: vec![] };
        let record = AdmissionRecord::new("apply", &pod, None, &decision);
        for _ in 0..100 {
            log.append(&record).unwrap();
        }
        let size =
            |name: &str| std::fs::metadata(dir.path().join("admission").join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size("decisions.jsonl") < 1000 + 400, "the current log stays near its limit");
        assert!(size("decisions.jsonl.1") >= 1000, "the one before is kept");
        assert!(!dir.path().join("admission/decisions.jsonl.2").exists(), "and no more");
        assert!(!log.read().is_empty());
    }

    #[test]
    fn images_of_controllers_and_cronjobs() {
        let deployment = json!({"spec": {"template": {"spec": {"initContainers": [{"image": "a"}], "containers": [{"image": "b"}]}}}});
        assert_eq!(resource_images(&deployment), vec!["a", "b"]);
        let cronjob =
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "c"}]}}}}}});
        assert_eq!(resource_images(&cronjob), vec!["c"]);
    }
}
