use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use axum::Router;
use sigstack_state::{StateError, load_or_create_private};
use tough::editor::RepositoryEditor;
use tough::editor::signed::{PathExists, SignedRole};
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root};

/// Root metadata lives ten years: it is the anchor a client is given once.
pub const ROOT_EXPIRY_DAYS: i64 = 3650;
/// Targets, snapshot and timestamp live a year and are re-signed (new versions) on every start.
pub const TOP_LEVEL_EXPIRY_DAYS: i64 = 365;

/// Failure to build or sign the repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TufError {
    /// State directory I/O.
    #[error("{0}")]
    State(#[from] StateError),
    /// From `tough`.
    #[error("TUF repository: {0}")]
    Tough(String),
}

fn tough_error(e: impl std::fmt::Display) -> TufError {
    TufError::Tough(e.to_string())
}

/// What was published.
#[derive(Debug, Clone)]
pub struct Published {
    /// The directory to serve as the mirror's root.
    pub repo_dir: PathBuf,
    /// The initial root (`1.root.json`), what clients are given to bootstrap.
    pub root_json: Vec<u8>,
    /// The version of the targets, snapshot and timestamp metadata just signed.
    pub version: u64,
}

fn in_days(days: i64) -> Result<jiff::Timestamp, TufError> {
    let now = jiff::Timestamp::now();
    // Whole seconds: TUF clients parse `expires` as an RFC 3339 time without fractions.
    let whole = jiff::Timestamp::from_second(now.as_second()).map_err(tough_error)?;
    whole.checked_add(jiff::SignedDuration::from_hours(24 * days)).map_err(tough_error)
}

/// The version last published (from the served timestamp), or 0.
fn previous_version(repo_dir: &Path) -> u64 {
    std::fs::read(repo_dir.join("timestamp.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| json["signed"]["version"].as_u64())
        .unwrap_or(0)
}

/// Creates (first time) the key and root, then signs new targets, snapshot and timestamp
/// metadata for `targets` (name, content) with refreshed expiry and the next version.
pub async fn publish(tuf_dir: &Path, targets: &[(&str, &[u8])]) -> Result<Published, TufError> {
    sigstack_state::ensure_private_dir(tuf_dir)?;
    // PKCS#8 DER: tough's parse_keypair reads Ed25519 keys only in that form.
    let key_path = tuf_dir.join("key.pk8");
    load_or_create_private(
        &key_path,
        || {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|e| StateError::corrupt(&key_path, e.to_string()))?;
            Ok(pkcs8.as_ref().to_vec())
        },
        |bytes| tough::sign::parse_keypair(bytes).map(|_| ()).map_err(|e| e.to_string()),
    )?;
    let keys: Vec<Box<dyn KeySource>> = vec![Box::new(LocalKeySource { path: key_path.clone() })];
    let repo_dir = tuf_dir.join("repo");
    std::fs::create_dir_all(repo_dir.join("targets")).map_err(|e| StateError::io("create directory", &repo_dir, e))?;

    let root_path = repo_dir.join("1.root.json");
    if !root_path.exists() {
        write_root(&root_path, &keys).await?;
    }
    let root_json = std::fs::read(&root_path).map_err(|e| StateError::io("read", &root_path, e))?;

    let staging = tuf_dir.join("targets");
    std::fs::create_dir_all(&staging).map_err(|e| StateError::io("create directory", &staging, e))?;
    for (name, content) in targets {
        sigstack_state::write_public(&staging.join(name), content)?;
    }
    let version = previous_version(&repo_dir) + 1;
    let non_zero = NonZeroU64::new(version).ok_or_else(|| TufError::Tough("version overflow".into()))?;
    let expires = in_days(TOP_LEVEL_EXPIRY_DAYS)?;
    let mut editor = RepositoryEditor::new(&root_path).await.map_err(tough_error)?;
    editor
        .targets_version(non_zero)
        .map_err(tough_error)?
        .targets_expires(expires)
        .map_err(tough_error)?
        .snapshot_version(non_zero)
        .snapshot_expires(expires)
        .timestamp_version(non_zero)
        .timestamp_expires(expires);
    for (name, _) in targets {
        editor.add_target_path(staging.join(name)).await.map_err(tough_error)?;
    }
    let signed = editor.sign(&keys).await.map_err(tough_error)?;
    signed.write(&repo_dir).await.map_err(tough_error)?;
    signed.copy_targets(&staging, repo_dir.join("targets"), PathExists::Replace).await.map_err(tough_error)?;
    Ok(Published { repo_dir, root_json, version })
}

/// Version 1 of the root: one Ed25519 key for every role, threshold 1, consistent snapshots.
async fn write_root(root_path: &Path, keys: &[Box<dyn KeySource>]) -> Result<(), TufError> {
    let signer = keys[0].as_sign().await.map_err(tough_error)?;
    let key = signer.tuf_key();
    let key_id = key.key_id().map_err(tough_error)?;
    let role = || RoleKeys { keyids: vec![key_id.clone()], threshold: NonZeroU64::MIN, _extra: HashMap::new() };
    let root = Root {
        spec_version: "1.0.0".into(),
        consistent_snapshot: true,
        version: NonZeroU64::MIN,
        expires: in_days(ROOT_EXPIRY_DAYS)?,
        keys: HashMap::from([(key_id.clone(), key)]),
        roles: HashMap::from([
            (RoleType::Root, role()),
            (RoleType::Targets, role()),
            (RoleType::Snapshot, role()),
            (RoleType::Timestamp, role()),
        ]),
        _extra: HashMap::new(),
    };
    let holder = KeyHolder::Root(root.clone());
    let signed = SignedRole::new(root, &holder, keys, &SystemRandom::new()).await.map_err(tough_error)?;
    sigstack_state::write_public(root_path, signed.buffer())?;
    Ok(())
}

/// Serves the repository as static files (metadata at the root, targets under `targets/`).
/// `ServeDir` refuses paths that climb out of the directory; its bodiless 404/405 answers get the
/// same JSON error body as every other sigstack service.
pub fn router(repo_dir: &Path) -> Router {
    Router::new()
        .fallback_service(tower_http::services::ServeDir::new(repo_dir))
        .layer(axum::middleware::from_fn(json_errors))
}

async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let message = match status {
        axum::http::StatusCode::NOT_FOUND => format!("no such file in the TUF repository: {path}"),
        axum::http::StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed: the repository is read-only"),
        other => format!("{method} {path}: {other}"),
    };
    sigstack_wire::ErrorEnvelope::Http.response(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publishes_and_bumps_versions_with_the_same_root() {
        let dir = tempfile::tempdir().unwrap();
        let first = publish(dir.path(), &[("trusted_root.json", b"{\"a\":1}"), ("signing_config.v0.2.json", b"{}")])
            .await
            .unwrap();
        assert_eq!(first.version, 1);
        let second = publish(dir.path(), &[("trusted_root.json", b"{\"a\":2}"), ("signing_config.v0.2.json", b"{}")])
            .await
            .unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(first.root_json, second.root_json);
        for file in ["1.root.json", "timestamp.json", "2.snapshot.json", "2.targets.json"] {
            assert!(dir.path().join("repo").join(file).exists(), "{file}");
        }
        let targets: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("repo/2.targets.json")).unwrap()).unwrap();
        assert!(targets["signed"]["targets"]["trusted_root.json"]["hashes"]["sha256"].is_string());
        let hash = targets["signed"]["targets"]["trusted_root.json"]["hashes"]["sha256"].as_str().unwrap();
        let served = std::fs::read(dir.path().join(format!("repo/targets/{hash}.trusted_root.json"))).unwrap();
        assert_eq!(served, b"{\"a\":2}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("key.pk8")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
