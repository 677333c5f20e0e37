//! The on-disk contract of a sigstack state directory.
//!
//! Every service keeps its keys under one state directory so that a restart with the same directory
//! is the same trust domain, and a fresh directory is a fresh one. This crate owns the rules that
//! make that safe: the directory is 0700, private keys are 0600, and every file is replaced
//! atomically (write to a temporary sibling, fsync, rename) so a crash never leaves half a key.
#![deny(missing_docs)]
#![warn(unreachable_pub)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Failure to read or write the state directory, always naming the path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// An I/O error on a given path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create directory", "write", ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file exists but its content is not what this version of sigstack writes.
    #[error("{path} is not usable: {reason} (delete the state directory to start a fresh trust domain)")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
}

impl StateError {
    /// Wraps an `io::Error` with the action and path it happened on.
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StateError::Io { action, path: path.to_path_buf(), source }
    }

    /// A file whose content cannot be used.
    pub fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        StateError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
    }
}

/// Creates `dir` (and parents) if missing and restricts it to its owner (0700): it holds private keys.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(|e| StateError::io("create directory", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| StateError::io("set permissions on", dir, e))
}

/// Atomically replaces `path` with `bytes`, readable only by the owner (0600). For private keys.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomic(path, bytes, 0o600)
}

/// Atomically replaces `path` with `bytes`, world-readable (0644). For trust files and descriptions.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomic(path, bytes, 0o644)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| StateError::io("create directory", parent, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| StateError::io("create", &tmp, e))?;
    // `mode` only applies when the file is created; a leftover temp file keeps its old bits.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| StateError::io("set permissions on", &tmp, e))?;
    file.write_all(bytes).map_err(|e| StateError::io("write", &tmp, e))?;
    file.sync_all().map_err(|e| StateError::io("sync", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| StateError::io("rename into", path, e))?;
    // The rename is only durable once the directory entry is.
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Reads `path` if it exists; `Ok(None)` when it does not.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io("read", path, e)),
    }
}

/// Loads the private file at `path`, or creates it with `generate` (0600) when absent.
///
/// Used for every long-lived secret: same state directory, same keys.
pub fn load_or_create_private<T>(
    path: &Path,
    generate: impl FnOnce() -> Result<Vec<u8>, StateError>,
    parse: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<T, StateError> {
    if let Some(bytes) = read_optional(path)? {
        return parse(&bytes).map_err(|reason| StateError::corrupt(path, reason));
    }
    let bytes = generate()?;
    let value = parse(&bytes).map_err(|reason| StateError::corrupt(path, reason))?;
    write_private(path, &bytes)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_dirs_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        ensure_private_dir(&dir).unwrap();
        let key = dir.join("keys/k.pem");
        write_private(&key, b"secret").unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&key).unwrap(), b"secret");
    }

    #[test]
    fn load_or_create_generates_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret");
        let parse = |b: &[u8]| Ok::<_, String>(b.to_vec());
        let first = load_or_create_private(&path, || Ok(b"one".to_vec()), parse).unwrap();
        let second = load_or_create_private(&path, || Ok(b"two".to_vec()), parse).unwrap();
        assert_eq!(first, b"one");
        assert_eq!(second, b"one");
    }

    #[test]
    fn corrupt_file_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("bad");
        fs::write(&path, b"x").unwrap();
        let err = load_or_create_private(&path, || Ok(vec![]), |_| Err::<(), _>("nope".into())).unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
