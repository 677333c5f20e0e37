//! C2SP signed notes with an Ed25519 key: Rekor v2's checkpoints.
//!
//! Written by hand because no Rust crate implements the Go `sumdb/note` format with the key-ID
//! rules sigstore-go uses (rekor-tiles `pkg/note`): the key ID of an Ed25519 note key is
//! SHA-256(name || 0x0A || 0x01 || public key), its first four bytes prefix each signature, and
//! all 32 bytes are the log's `logId.keyId` in trusted roots and entries.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::RekorError;
use crate::merkle::Hash;

/// The signature algorithm byte of Ed25519 note keys.
const ALG_ED25519: u8 = 1;
/// U+2014 EM DASH, which starts every signature line.
const SIGNATURE_LINE_START: &str = "\u{2014} ";

/// The Ed25519 key ID of a note key named `name`.
pub fn note_key_id(name: &str, public_key: &[u8]) -> [u8; 32] {
    let mut message = Vec::with_capacity(name.len() + 2 + public_key.len());
    message.extend_from_slice(name.as_bytes());
    message.push(b'\n');
    message.push(ALG_ED25519);
    message.extend_from_slice(public_key);
    let mut id = [0u8; 32];
    id.copy_from_slice(digest(&SHA256, &message).as_ref());
    id
}

/// Signs checkpoints under one name (the log's origin).
pub(crate) struct NoteSigner {
    name: String,
    key: Ed25519KeyPair,
    key_id: [u8; 32],
}

impl NoteSigner {
    /// A signer named `name`: a note name, so non-empty, with no whitespace and no `+`.
    pub(crate) fn new(name: &str, key: Ed25519KeyPair) -> Result<Self, RekorError> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(RekorError::Internal(format!(
                "{name:?} cannot name a checkpoint: a note name has no whitespace and no '+'"
            )));
        }
        let key_id = note_key_id(name, key.public_key().as_ref());
        Ok(NoteSigner { name: name.to_string(), key, key_id })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key_id(&self) -> &[u8; 32] {
        &self.key_id
    }

    pub(crate) fn public_key_spki(&self) -> Result<Vec<u8>, RekorError> {
        let der = self.key.public_key().as_der().map_err(|e| RekorError::Internal(format!("Ed25519 key: {e}")))?;
        Ok(der.as_ref().to_vec())
    }

    /// The C2SP checkpoint of a tree: origin, size, base64 root, then one signature line.
    pub(crate) fn checkpoint(&self, size: u64, root: &Hash) -> String {
        let body = format!("{}\n{size}\n{}\n", self.name, B64.encode(root));
        let mut hinted = self.key_id[..4].to_vec();
        hinted.extend_from_slice(self.key.sign(body.as_bytes()).as_ref());
        format!("{body}\n{SIGNATURE_LINE_START}{} {}\n", self.name, B64.encode(hinted))
    }
}

/// A checkpoint whose signature by the named key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

/// Checks a C2SP checkpoint as sigstore-go does (`f_log.ParseCheckpoint`): its origin is
/// `name`, one of its signature lines is `name`'s with the right key hint and verifies with the
/// Ed25519 `public_key`; other signature lines (witness cosignatures) are ignored.
pub fn verify_checkpoint(note: &str, name: &str, public_key: &[u8]) -> Result<VerifiedCheckpoint, String> {
    let (body, signatures) =
        note.split_once("\n\n").ok_or("a checkpoint is a body, a blank line and signature lines")?;
    let body = format!("{body}\n");
    let mut lines = body.lines();
    let origin = lines.next().unwrap_or_default();
    if origin != name {
        return Err(format!("checkpoint origin {origin:?} is not the log's name {name:?}"));
    }
    let size: u64 =
        lines.next().and_then(|l| l.parse().ok()).ok_or("the checkpoint's second line is not a tree size")?;
    let root: Hash = lines
        .next()
        .and_then(|l| B64.decode(l).ok())
        .and_then(|r| r.try_into().ok())
        .ok_or("the checkpoint's third line is not a base64 SHA-256 root")?;
    let hint = &note_key_id(name, public_key)[..4];
    let key = UnparsedPublicKey::new(&ED25519, public_key);
    for line in signatures.lines() {
        let Some((signer, signature)) = line.strip_prefix(SIGNATURE_LINE_START).and_then(|l| l.split_once(' ')) else {
            return Err(format!("malformed signature line {line:?}"));
        };
        let Ok(signature) = B64.decode(signature) else { continue };
        if signer != name || signature.len() != 4 + 64 || &signature[..4] != hint {
            continue;
        }
        return match key.verify(body.as_bytes(), &signature[4..]) {
            Ok(()) => Ok(VerifiedCheckpoint { origin: origin.to_string(), size, root }),
            Err(_) => Err(format!("the checkpoint's signature by {name} does not verify")),
        };
    }
    Err(format!("the checkpoint carries no signature by {name} with this key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    fn signer(name: &str) -> NoteSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        NoteSigner::new(name, Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()).unwrap()
    }

    #[test]
    fn checkpoints_verify_under_their_name_only() {
        let signer = signer("127.0.0.1");
        let public = signer.key.public_key().as_ref().to_vec();
        let note = signer.checkpoint(7, &[9u8; 32]);
        assert!(note.starts_with("127.0.0.1\n7\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} 127.0.0.1 "), "{note}");
        let verified = verify_checkpoint(&note, "127.0.0.1", &public).unwrap();
        assert_eq!((verified.size, verified.root), (7, [9u8; 32]));
        assert!(verify_checkpoint(&note, "localhost", &public).unwrap_err().contains("origin"));
        let other = super::tests::signer("127.0.0.1");
        let err = verify_checkpoint(&note, "127.0.0.1", other.key.public_key().as_ref()).unwrap_err();
        assert!(err.contains("no signature"), "{err}");
        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert!(verify_checkpoint(&tampered, "127.0.0.1", &public).unwrap_err().contains("does not verify"));
    }

    #[test]
    fn witness_lines_are_ignored() {
        let signer = signer("log.example");
        let public = signer.key.public_key().as_ref().to_vec();
        let note = signer.checkpoint(1, &[1u8; 32]);
        let witnessed = format!("{note}\u{2014} witness.example AAAAAAAA\n");
        assert!(verify_checkpoint(&witnessed, "log.example", &public).is_ok());
    }

    #[test]
    fn key_id_follows_the_c2sp_rule() {
        // `(printf 'example.com\n\001'; head -c 32 /dev/zero) | sha256sum`
        let id = note_key_id("example.com", &[0u8; 32]);
        assert_eq!(crate::entries::hex(&id), "32a0b7a0ccc5b147549cc8ad1fc904ef284258de75df17421655c21cb92790c3");
        assert!(NoteSigner::new("has space", signer("x").key).is_err());
    }
}
