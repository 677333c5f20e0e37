//! The verification core judging sigstack's TSA: its timestamps verify, other data and other
//! authorities are refused, and every token is minimally encoded as Go's parser insists.

use std::time::SystemTime;

use sigstack_tsa::{TimestampAuthority, TimestampRequest};
use sigstack_verify::timestamp::verify_timestamp;
use sigstack_verify::{Trust, Validity, VerificationError};

fn trusting(tsa: &TimestampAuthority) -> Trust {
    Trust {
        timestamp_authorities: vec![sigstack_verify::TimestampAuthority {
            chain: tsa.chain_der().to_vec(),
            valid: Validity::default(),
        }],
        ..Trust::default()
    }
}

#[test]
fn sigstacks_verifier_accepts_its_timestamps_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let tsa = TimestampAuthority::load_or_generate(&dir.path().join("a")).unwrap();
    let other = TimestampAuthority::load_or_generate(&dir.path().join("b")).unwrap();
    let signature = b"signature bytes";
    let request = TimestampRequest {
        hash_algorithm: sigstack_tsa::HashAlgorithm::Sha256,
        hashed_message: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signature).as_ref().to_vec(),
        nonce: None,
        cert_req: false,
        policy: None,
    };
    let now = SystemTime::now();
    let response = tsa.timestamp(&request, now).unwrap();
    let time = verify_timestamp(&trusting(&tsa), &response, signature).unwrap();
    let unix = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert!(time.abs_diff(unix) <= 1);
    assert!(
        matches!(verify_timestamp(&trusting(&tsa), &response, b"other bytes"), Err(VerificationError::Timestamp(m)) if m.contains("imprint"))
    );
    assert!(matches!(verify_timestamp(&trusting(&other), &response, signature), Err(VerificationError::Timestamp(_))));
    let mut tampered = response.clone();
    let last = tampered.len() - 5;
    tampered[last] ^= 1;
    assert!(verify_timestamp(&trusting(&tsa), &tampered, signature).is_err());
    // The chain is stable across reopenings of the same directory.
    let again = TimestampAuthority::load_or_generate(&dir.path().join("a")).unwrap();
    assert_eq!(again.chain_der(), tsa.chain_der());
}

/// Serial numbers are random: each must still be a minimal DER INTEGER, which Go's parser (cosign,
/// sigstore-go) insists on. One in 128 was not, once ("integer not minimally-encoded").
#[test]
fn every_timestamp_is_minimally_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let tsa = TimestampAuthority::load_or_generate(dir.path()).unwrap();
    let signature = b"signature bytes";
    for nonce in 0..2000u64 {
        let request = TimestampRequest {
            hash_algorithm: sigstack_tsa::HashAlgorithm::Sha256,
            hashed_message: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signature).as_ref().to_vec(),
            nonce: Some(vec![0x7f, (nonce % 256) as u8]),
            cert_req: false,
            policy: None,
        };
        let response = tsa.timestamp(&request, SystemTime::now()).unwrap();
        verify_timestamp(&trusting(&tsa), &response, signature).unwrap_or_else(|e| panic!("timestamp {nonce}: {e}"));
    }
}
