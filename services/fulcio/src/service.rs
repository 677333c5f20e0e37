use std::time::SystemTime;

use serde_json::{Value, json};

use crate::{CertificateAuthority, FulcioError, IssuedChain, IssuerKind, SubjectKey, TokenVerifier};

/// How the caller proves it holds the private key.
#[derive(Debug, Clone)]
pub enum KeyProof {
    /// A public key plus a signature over the token's `email` or `sub` (Fulcio's challenge).
    PublicKey {
        /// The key to certify.
        key: SubjectKey,
        /// Signature over the challenge with that key.
        proof: Vec<u8>,
    },
    /// A PKCS#10 request whose self-signature was already verified.
    Csr(SubjectKey),
}

/// The CA service: token verification, proof of possession, issuance.
pub struct Fulcio {
    ca: CertificateAuthority,
    verifier: TokenVerifier,
}

impl Fulcio {
    /// A CA issuing from `ca` for tokens `verifier` accepts.
    pub fn new(ca: CertificateAuthority, verifier: TokenVerifier) -> Self {
        Fulcio { ca, verifier }
    }

    /// The certificate authority.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// Verifies `token` and the key proof, then issues a leaf with embedded SCT.
    pub async fn sign(&self, token: &str, proof: KeyProof) -> Result<IssuedChain, FulcioError> {
        let principal = self.verifier.verify(token).await?;
        let key = match proof {
            KeyProof::PublicKey { key, proof } => {
                if !key.verify_proof(principal.challenge.as_bytes(), &proof) {
                    return Err(FulcioError::ProofOfPossession(principal.challenge));
                }
                key
            }
            KeyProof::Csr(key) => key,
        };
        self.ca.issue(&key, &principal.identity, SystemTime::now())
    }

    /// `GET /api/v2/configuration`: the issuers this CA trusts, in Fulcio's JSON shape.
    pub fn configuration(&self) -> Value {
        let mut issuers: Vec<Value> = self
            .verifier
            .issuers()
            .map(|issuer| {
                let (challenge, kind) = match issuer.kind {
                    IssuerKind::GithubActions => ("sub", "github-workflow"),
                    IssuerKind::Email => ("email", "email"),
                    IssuerKind::Sub => ("sub", "uri"),
                };
                json!({"issuerUrl": issuer.issuer_url, "audience": issuer.audience, "challengeClaim": challenge, "issuerType": kind})
            })
            .collect();
        issuers.sort_by(|a, b| a["issuerUrl"].as_str().cmp(&b["issuerUrl"].as_str()));
        json!({ "issuers": issuers })
    }
}
