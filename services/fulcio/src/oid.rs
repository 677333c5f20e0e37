//! Object identifiers of the Sigstore certificate profile (fulcio docs/oid-info.md) and RFC 6962.

use der::asn1::ObjectIdentifier as Oid;

/// RFC 6962 §3.3: the embedded SCT list extension.
pub const SCT_LIST: Oid = Oid::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// id-kp-codeSigning.
pub const CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512.
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption.
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// RSASSA-PSS.
pub const RSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// id-ecPublicKey.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// rsaEncryption.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-Ed25519 (key and signature algorithm).
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
/// secp256r1.
pub const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1.
pub const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
/// secp521r1.
pub const P521: Oid = Oid::new_unwrap("1.3.132.0.35");

/// subjectAltName.
pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");

/// `1.3.6.1.4.1.57264.1.N`: the Sigstore extension arc.
pub const fn sigstore(n: u32) -> Oid {
    match n {
        1 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.1"),
        2 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.2"),
        3 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.3"),
        4 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.4"),
        5 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.5"),
        6 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.6"),
        8 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.8"),
        9 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.9"),
        10 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.10"),
        11 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.11"),
        12 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.12"),
        13 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.13"),
        14 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.14"),
        15 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.15"),
        16 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.16"),
        17 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.17"),
        18 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.18"),
        19 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.19"),
        20 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.20"),
        21 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.21"),
        22 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.22"),
        23 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.23"),
        24 => Oid::new_unwrap("1.3.6.1.4.1.57264.1.24"),
        _ => panic!("not a Sigstore extension this CA writes"),
    }
}

/// N for an OID on the Sigstore arc `1.3.6.1.4.1.57264.1.N`.
pub fn sigstore_number(oid: &Oid) -> Option<u32> {
    oid.to_string().strip_prefix("1.3.6.1.4.1.57264.1.")?.parse().ok()
}
