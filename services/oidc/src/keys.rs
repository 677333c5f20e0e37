use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sigstack_state::{StateError, load_or_create_private};

use crate::OidcError;

/// The JWS algorithms the issuer signs with. RS256 is the default because GitHub uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit key.
    #[default]
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl SigningAlg {
    /// Parses the JOSE name (`RS256`, `ES256`), case-insensitively.
    pub fn parse(name: &str) -> Result<Self, OidcError> {
        match name.to_ascii_uppercase().as_str() {
            "RS256" => Ok(SigningAlg::RS256),
            "ES256" => Ok(SigningAlg::ES256),
            other => Err(OidcError::InvalidRequest(format!("unsupported alg {other:?}: use RS256 or ES256"))),
        }
    }

    fn jose(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
        }
    }
}

struct KeyEntry {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

/// The issuer's signing keys: one RSA and one P-256 key, persisted as PKCS#8 PEM (0600) so that
/// the same state directory always publishes the same JWKS.
pub struct SigningKeys {
    rsa: KeyEntry,
    ec: KeyEntry,
}

impl SigningKeys {
    /// Loads the keys from `dir`, generating any that are missing.
    pub fn load_or_generate(dir: &Path) -> Result<Self, OidcError> {
        let rsa = load_or_create_private(
            &dir.join("rs256.pk8.pem"),
            || {
                let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| generate_error("RSA", e))?;
                let der = key.as_der().map_err(|e| generate_error("RSA", e))?;
                Ok(pkcs8_pem(der.as_ref()))
            },
            |pem| key_entry(pem, SigningAlg::RS256),
        )?;
        let ec = load_or_create_private(
            &dir.join("es256.pk8.pem"),
            || {
                let key =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|e| generate_error("P-256", e))?;
                let der = key.to_pkcs8v1().map_err(|e| generate_error("P-256", e))?;
                Ok(pkcs8_pem(der.as_ref()))
            },
            |pem| key_entry(pem, SigningAlg::ES256),
        )?;
        Ok(SigningKeys { rsa, ec })
    }

    /// The public keys, as served at `jwks_uri`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.rsa.jwk.clone(), self.ec.jwk.clone()] }
    }

    /// The `kid` that tokens signed with `alg` carry.
    pub fn kid(&self, alg: SigningAlg) -> &str {
        &self.entry(alg).kid
    }

    /// Signs `claims` as a compact JWS with header `{"typ":"JWT","alg":…,"kid":…}`.
    pub fn sign(&self, alg: SigningAlg, claims: &serde_json::Value) -> Result<String, OidcError> {
        let entry = self.entry(alg);
        let mut header = Header::new(alg.jose());
        header.kid = Some(entry.kid.clone());
        jsonwebtoken::encode(&header, claims, &entry.encoding).map_err(|e| OidcError::Signing(e.to_string()))
    }

    fn entry(&self, alg: SigningAlg) -> &KeyEntry {
        match alg {
            SigningAlg::RS256 => &self.rsa,
            SigningAlg::ES256 => &self.ec,
        }
    }
}

fn generate_error(kind: &str, e: impl std::fmt::Display) -> StateError {
    StateError::corrupt(Path::new("<generated key>"), format!("{kind} key generation failed: {e}"))
}

fn pkcs8_pem(der: &[u8]) -> Vec<u8> {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec())).into_bytes()
}

fn key_entry(pem: &[u8], alg: SigningAlg) -> Result<KeyEntry, String> {
    let encoding = match alg {
        SigningAlg::RS256 => EncodingKey::from_rsa_pem(pem),
        SigningAlg::ES256 => EncodingKey::from_ec_pem(pem),
    }
    .map_err(|e| format!("not a PKCS#8 {alg:?} key: {e}"))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, alg.jose()).map_err(|e| e.to_string())?;
    // RFC 7638 thumbprint as kid: stable for a key, different between keys.
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| e.to_string())?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match alg {
        SigningAlg::RS256 => KeyAlgorithm::RS256,
        SigningAlg::ES256 => KeyAlgorithm::ES256,
    });
    Ok(KeyEntry { kid, encoding, jwk })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};

    #[test]
    fn both_algorithms_sign_and_verify_against_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::load_or_generate(dir.path()).unwrap();
        let jwks = keys.jwks();
        assert_ne!(keys.kid(SigningAlg::RS256), keys.kid(SigningAlg::ES256));
        for alg in [SigningAlg::RS256, SigningAlg::ES256] {
            let token =
                keys.sign(alg, &serde_json::json!({"sub": "x", "aud": "sigstore", "exp": 4_000_000_000u64})).unwrap();
            let header = decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.jose());
            let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
            let key = DecodingKey::from_jwk(jwk).unwrap();
            let mut validation = Validation::new(alg.jose());
            validation.set_audience(&["sigstore"]);
            let data = decode::<serde_json::Value>(&token, &key, &validation).unwrap();
            assert_eq!(data.claims["sub"], "x");
        }
    }

    #[test]
    fn keys_persist_with_private_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = SigningKeys::load_or_generate(dir.path()).unwrap().jwks();
        let second = SigningKeys::load_or_generate(dir.path()).unwrap().jwks();
        assert_eq!(serde_json::to_value(&first).unwrap(), serde_json::to_value(&second).unwrap());
        for file in ["rs256.pk8.pem", "es256.pk8.pem"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let other = SigningKeys::load_or_generate(tempfile::tempdir().unwrap().path()).unwrap().jwks();
        assert_ne!(serde_json::to_value(&first).unwrap(), serde_json::to_value(&other).unwrap());
    }

    #[test]
    fn unknown_alg_is_a_clear_error() {
        let err = SigningAlg::parse("HS256").unwrap_err();
        assert!(err.to_string().contains("RS256 or ES256"), "{err}");
    }
}
