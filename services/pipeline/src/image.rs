//! Hermetic image builds: one gzip layer from a directory (or the built-in demo application), an
//! OCI config and manifest, pushed under a tag. Deterministic: the same files give the same digest.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::oci::{OCI_MANIFEST, Registry, sha256_digest};

/// What goes into the image.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// The built-in demo application, with package metadata of each kind the SBOM reads; the
    /// version string makes distinct images.
    Demo {
        /// Written to /app/VERSION.
        version: String,
    },
    /// Every regular file under a directory, at the same paths from the image root.
    Dir(PathBuf),
}

/// The pushed image.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// `host/repository:tag`.
    pub reference: String,
    /// Manifest digest.
    pub digest: String,
    /// Files in the layer.
    pub files: usize,
}

fn demo_files(version: &str) -> Vec<(String, Vec<u8>, u32)> {
    let file = |path: &str, content: &str, mode| (path.to_string(), content.as_bytes().to_vec(), mode);
    vec![
        file("app/hello.sh", "#!/bin/sh\necho \"hello from the sigstack demo app\"\n", 0o755),
        file("app/VERSION", &format!("{version}\n"), 0o644),
        file(
            "app/Cargo.lock",
            "version = 4\n\n[[package]]\nname = \"demo-app\"\nversion = \"0.1.0\"\ndependencies = [\"itoa\"]\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.11\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
            0o644,
        ),
        file(
            "app/package-lock.json",
            r#"{"name": "demo-web", "version": "1.0.0", "lockfileVersion": 3, "packages": {"": {"name": "demo-web", "version": "1.0.0"}, "node_modules/is-number": {"version": "7.0.0", "license": "MIT"}}}"#,
            0o644,
        ),
        file(
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
            0o644,
        ),
        file(
            "var/lib/dpkg/status",
            "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\nArchitecture: amd64\n",
            0o644,
        ),
    ]
}

fn dir_files(root: &Path) -> anyhow::Result<Vec<(String, Vec<u8>, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
                let mode = entry.metadata()?.permissions().mode() & 0o777;
                files.push((relative, std::fs::read(&path)?, mode));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Builds the image and pushes it as `repository:tag`.
pub async fn build(
    registry: &Registry,
    repository: &str,
    tag: &str,
    source: &ImageSource,
) -> anyhow::Result<BuildOutcome> {
    let files = match source {
        ImageSource::Demo { version } => demo_files(version),
        ImageSource::Dir(dir) => dir_files(dir)?,
    };
    if files.is_empty() {
        anyhow::bail!("nothing to put in the image: no regular files");
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content, mode) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, content.as_slice()).with_context(|| format!("add {path}"))?;
    }
    let layer_tar = tar.into_inner()?;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar)?;
    let layer = gz.finish()?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/app/hello.sh"], "Labels": {"org.opencontainers.image.source": format!("https://github.com/{repository}")}},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer_tar)]},
        "history": [{"created_by": "sigstack build"}]
    }))?;
    let reference = registry.tagged(repository, tag)?;
    let layer_digest = registry.push_blob(&reference, &layer).await?;
    let config_digest = registry.push_blob(&reference, &config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}]
    }))?;
    let digest = registry.push_manifest(&reference, &manifest, OCI_MANIFEST).await?;
    Ok(BuildOutcome { reference: format!("{}/{repository}:{tag}", registry.host), digest, files: files.len() })
}
