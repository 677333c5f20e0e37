//! Checkpoints as signed notes (golang.org/x/mod/sumdb/note, C2SP tlog-checkpoint): the body
//! (origin, tree size, base64 root, optional extension lines), a blank line, then signature lines
//! `— <name> base64(<4-byte key hint> <signature>)`. Rekor v1 signs with its ECDSA log key (DER
//! signature, hint = the log ID's first bytes), Rekor v2 with an Ed25519 note key (raw signature,
//! hint = the C2SP key ID's). Witness cosignatures and lines of other keys are skipped, as
//! sigstore-go skips them. By hand: no Rust crate reads notes with both key kinds.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sigstack_fulcio::SubjectKey;

use crate::VerificationError;

/// U+2014 EM DASH and a space start every signature line.
const SIGNATURE_LINE_START: &str = "\u{2014} ";

/// A checkpoint whose log signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: [u8; 32],
}

fn refuse(message: impl Into<String>) -> VerificationError {
    VerificationError::Checkpoint(message.into())
}

/// Verifies `note` with the log key `spki` (DER) whose ID is `key_id`: one signature line with the
/// key's hint (and named `name`, when given) must verify over the body.
pub fn verify_note(
    note: &str,
    spki: &[u8],
    key_id: &[u8],
    name: Option<&str>,
) -> Result<Checkpoint, VerificationError> {
    let (body, signatures) =
        note.split_once("\n\n").ok_or_else(|| refuse("a checkpoint is a body, a blank line and signature lines"))?;
    let body = format!("{body}\n");
    let mut lines = body.lines();
    let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| refuse("the checkpoint has no origin"))?;
    let size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| refuse("the checkpoint's second line is not a tree size"))?;
    let root: [u8; 32] = lines
        .next()
        .and_then(|l| B64.decode(l).ok())
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| refuse("the checkpoint's third line is not a base64 SHA-256 root"))?;
    let key = SubjectKey::from_spki_der(spki).map_err(|e| refuse(format!("the log key: {e}")))?;
    let hint = key_id.get(..4).ok_or_else(|| refuse("the log ID is shorter than a key hint"))?;
    let mut candidates = 0;
    for line in signatures.lines().filter(|l| !l.is_empty()) {
        let Some((signer, signature)) = line.strip_prefix(SIGNATURE_LINE_START).and_then(|l| l.split_once(' ')) else {
            return Err(refuse(format!("malformed signature line {line:?}")));
        };
        let Ok(signature) = B64.decode(signature) else { continue };
        if signature.len() <= 4 || &signature[..4] != hint || name.is_some_and(|n| n != signer) {
            continue;
        }
        candidates += 1;
        // ECDSA log keys sign with a DER signature, Ed25519 note keys with a raw one; the key's
        // kind picks the scheme.
        if key.verify_proof(body.as_bytes(), &signature[4..]) {
            if let Some(name) = name
                && origin != name
            {
                return Err(refuse(format!("the checkpoint's origin {origin:?} is not the log's {name:?}")));
            }
            return Ok(Checkpoint { origin: origin.to_string(), size, root });
        }
    }
    Err(refuse(match candidates {
        0 => format!("the checkpoint carries no signature by {} with the log's key", name.unwrap_or("the log")),
        _ => "the checkpoint's signature by the log's key does not verify".to_string(),
    }))
}
