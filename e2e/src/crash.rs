//! What the kill -9 tests of both logs (v1 and v2) share: how many cycles they run, how many
//! writers, when the log is killed, the signing key, and how a checkpoint's head is read.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::rfc9162::Hash;

/// Concurrent writers appending while the log is killed.
pub const WRITERS: usize = 8;

/// Kill cycles: `default` in `scripts/test.sh`; `scripts/soak.sh` sets SIGSTACK_CRASH_CYCLES for
/// the long run.
pub fn cycles(default: u32) -> u32 {
    std::env::var("SIGSTACK_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (size, root) of a checkpoint's note (C2SP: origin, size, base64 root).
pub fn checkpoint_head(checkpoint: &str) -> (u64, Hash) {
    let lines: Vec<&str> = checkpoint.lines().collect();
    let root: Hash = B64.decode(lines[2]).unwrap().try_into().unwrap();
    (lines[1].parse().unwrap(), root)
}

/// How long the writers run before the kill: 150 to 500 ms, different each cycle.
pub fn kill_after_millis(seed: u32) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    150 + ((nanos ^ seed.wrapping_mul(2_654_435_761)) % 350) as u64
}

/// A fresh P-256 key for the writers' entries.
pub fn signing_key() -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
}
