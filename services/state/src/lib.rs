//! The on-disk contract of a sigstack state directory.
//!
//! Every service keeps its keys under one state directory so that a restart with the same directory
//! is the same trust domain, and a fresh directory is a fresh one. This crate owns the rules that
//! make that safe: the directory is 0700, owned by the user and reached without a symbolic link;
//! private keys are 0600 and refused when others can read them; and every file is replaced
//! atomically (write to a new temporary sibling created exclusively, fsync, rename) so a crash
//! never leaves half a key and no other user can plant the file written.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
    /// A path another user could have placed or can read: refused before anything is trusted.
    #[error("refusing to use {path}: {reason}")]
    Unsafe {
        /// The offending path.
        path: PathBuf,
        /// Why it was refused, and what to do.
        reason: String,
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

/// Creates `dir` (and parents) if missing and restricts it to its owner (0700): it holds private
/// keys. An existing `dir` must be a directory of this user's, not a symbolic link: one another
/// user made (or points to) would let them read the keys or swap them.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StateError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(StateError::Unsafe {
                path: dir.to_path_buf(),
                reason: "it is a symbolic link; give the directory's real path".into(),
            });
        }
        Ok(meta) if meta.uid() != rustix::process::geteuid().as_raw() => {
            return Err(StateError::Unsafe {
                path: dir.to_path_buf(),
                reason: format!(
                    "it belongs to another user (uid {}, not {}); use a directory of your own",
                    meta.uid(),
                    rustix::process::geteuid().as_raw()
                ),
            });
        }
        _ => {}
    }
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
    // A new file of a random name, created exclusively (O_EXCL, which also never follows a
    // symbolic link) and 0600 from the start: nobody can have placed it or read it meanwhile.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}.tmp-"))
        .tempfile_in(parent)
        .map_err(|e| StateError::io("create a temporary file in", parent, e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| StateError::io("set permissions on", tmp.path(), e))?;
    tmp.write_all(bytes).map_err(|e| StateError::io("write", tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| StateError::io("sync", tmp.path(), e))?;
    tmp.persist(path).map_err(|e| StateError::io("rename into", path, e.error))?;
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

/// Reads the private file `path` if it exists, refusing one that others can read or write (a
/// key that has been readable is no longer a secret) or that is a symbolic link.
pub fn read_private(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io("read", path, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(StateError::Unsafe {
            path: path.to_path_buf(),
            reason: "a private key must not be a symbolic link".into(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StateError::Unsafe {
            path: path.to_path_buf(),
            reason: format!(
                "this private key is readable or writable by others (mode {mode:04o}); if nobody else could \
                 have read it, `chmod 600` it, else delete the state directory for a fresh trust domain"
            ),
        });
    }
    read_optional(path)
}

/// Loads the private file at `path`, or creates it with `generate` (0600) when absent.
///
/// Used for every long-lived secret: same state directory, same keys.
pub fn load_or_create_private<T>(
    path: &Path,
    generate: impl FnOnce() -> Result<Vec<u8>, StateError>,
    parse: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<T, StateError> {
    if let Some(bytes) = read_private(path)? {
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
    fn a_symlinked_state_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn a_state_dir_of_another_user_is_refused() {
        // /proc/1 is root's; as root (CI) a directory chowned to nobody stands in for it.
        let tmp = tempfile::tempdir().unwrap();
        let theirs = tmp.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        } else {
            let err = ensure_private_dir(Path::new("/root")).unwrap_err().to_string();
            assert!(err.contains("another user") || err.contains("Permission denied"), "{err}");
            return;
        }
        let err = ensure_private_dir(&theirs).unwrap_err().to_string();
        assert!(err.contains("belongs to another user (uid 65534"), "{err}");
    }

    #[test]
    fn keys_readable_by_others_or_linked_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("key.pem");
        write_private(&key, b"secret").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let parse = |b: &[u8]| Ok::<_, String>(b.to_vec());
        let err = load_or_create_private(&key, || Ok(b"new".to_vec()), parse).unwrap_err().to_string();
        assert!(err.contains("readable or writable by others (mode 0644)"), "{err}");
        let link = tmp.path().join("link.pem");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        let err = load_or_create_private(&link, || Ok(b"new".to_vec()), parse).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn temporary_files_are_new_and_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        // What the old predictable name would have been, planted as a link to a victim file.
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        std::os::unix::fs::symlink(&victim, tmp.path().join(format!(".out.tmp-{}", std::process::id()))).unwrap();
        write_public(&tmp.path().join("out"), b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(fs::read(tmp.path().join("out")).unwrap(), b"new");
        let leftovers = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .count();
        assert_eq!(leftovers, 1, "only the planted link remains: the temporary file was renamed");
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
        write_private(&path, b"x").unwrap();
        let err = load_or_create_private(&path, || Ok(vec![]), |_| Err::<(), _>("nope".into())).unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
