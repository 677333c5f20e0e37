//! Issued certificates parsed by an independent parser (x509-parser), and the embedded SCT checked
//! by rebuilding the RFC 6962 precert entry from the final certificate, without the CA's code.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use common::*;
use sigstack_fulcio::{IssuedChain, KeyProof, SubjectKey};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

const SCT_OID: &str = "1.3.6.1.4.1.11129.2.4.2";

async fn issue(setup: &Setup, token: &str, challenge: &str) -> IssuedChain {
    let client = ClientKey::new();
    let proof = KeyProof::PublicKey {
        key: SubjectKey::from_spki_der(&client.spki_der()).unwrap(),
        proof: client.sign(challenge.as_bytes()),
    };
    setup.fulcio.sign(token, proof).await.unwrap()
}

fn sigstore_ext<'a>(cert: &'a X509Certificate<'_>, n: u32) -> Option<&'a X509Extension<'a>> {
    let wanted = format!("1.3.6.1.4.1.57264.1.{n}");
    cert.extensions().iter().find(|e| e.oid.to_id_string() == wanted)
}

/// `.1`–`.6` are raw bytes.
fn raw_ext(cert: &X509Certificate<'_>, n: u32) -> String {
    String::from_utf8(sigstore_ext(cert, n).unwrap_or_else(|| panic!("no .{n}")).value.to_vec()).unwrap()
}

/// `.8` and later are DER UTF8String.
fn der_ext(cert: &X509Certificate<'_>, n: u32) -> String {
    let value = sigstore_ext(cert, n).unwrap_or_else(|| panic!("no .{n}")).value;
    let (rest, any) = x509_parser::der_parser::asn1_rs::Any::from_der(value).unwrap();
    assert!(rest.is_empty());
    assert_eq!(any.tag(), x509_parser::der_parser::asn1_rs::Tag::Utf8String, ".{n} must be a DER UTF8String");
    String::from_utf8(any.data.to_vec()).unwrap()
}

fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
    match cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
        _ => None,
    }) {
        Some(id) => id,
        None => panic!("no SKI"),
    }
}

fn aki(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|k| k.0.to_vec()),
            _ => None,
        })
        .expect("AKI")
}

#[tokio::test]
async fn github_leaf_has_fulcios_profile() {
    let setup = setup();
    let token = github_token(&setup.issuer);
    let chain = issue(&setup, &token, "repo:acme/widget:ref:refs/heads/main").await;
    assert_eq!(chain.certificates.len(), 3, "leaf, intermediate, root");
    let (_, leaf) = X509Certificate::from_der(&chain.certificates[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&chain.certificates[1]).unwrap();
    let (_, root) = X509Certificate::from_der(&chain.certificates[2]).unwrap();

    assert_eq!(leaf.version(), X509Version::V3);
    assert_eq!(leaf.subject().iter().count(), 0, "empty subject");
    let serial = leaf.raw_serial();
    assert!(serial.len() <= 20 && serial[0] & 0x80 == 0, "positive serial of at most 20 bytes");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let not_before = leaf.validity().not_before.timestamp();
    assert!((now - not_before).abs() <= 5, "notBefore is now");
    assert_eq!(leaf.validity().not_after.timestamp() - not_before, 600, "10-minute validity");

    let san = leaf.subject_alternative_name().unwrap().expect("SAN");
    assert!(san.critical, "SAN critical with an empty subject");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main")]
    );
    let key_usage = leaf.key_usage().unwrap().expect("KeyUsage");
    assert!(key_usage.critical && key_usage.value.digital_signature());
    assert_eq!(key_usage.value.flags, 1, "digitalSignature only");
    let eku = leaf.extended_key_usage().unwrap().expect("EKU");
    assert!(eku.value.code_signing && !eku.value.server_auth && !eku.value.client_auth && eku.value.other.is_empty());
    assert_eq!(aki(&leaf), ski(&intermediate));
    assert!(!ski(&leaf).is_empty());

    // Sigstore extensions from the token's claims.
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let claim = |name: &str| claims[name].as_str().unwrap().to_string();
    assert_eq!(raw_ext(&leaf, 1), GITHUB_ISSUER);
    assert_eq!(raw_ext(&leaf, 2), "push");
    assert_eq!(raw_ext(&leaf, 3), claim("sha"));
    assert_eq!(raw_ext(&leaf, 4), claim("workflow"));
    assert_eq!(raw_ext(&leaf, 5), "acme/widget");
    assert_eq!(raw_ext(&leaf, 6), "refs/heads/main");
    assert_eq!(der_ext(&leaf, 8), GITHUB_ISSUER);
    assert_eq!(der_ext(&leaf, 9), "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main");
    assert_eq!(der_ext(&leaf, 10), claim("job_workflow_sha"));
    assert_eq!(der_ext(&leaf, 11), "github-hosted");
    assert_eq!(der_ext(&leaf, 12), "https://github.com/acme/widget");
    assert_eq!(der_ext(&leaf, 13), claim("sha"));
    assert_eq!(der_ext(&leaf, 14), "refs/heads/main");
    assert_eq!(der_ext(&leaf, 15), claim("repository_id"));
    assert_eq!(der_ext(&leaf, 16), "https://github.com/acme");
    assert_eq!(der_ext(&leaf, 17), claim("repository_owner_id"));
    assert_eq!(der_ext(&leaf, 18), "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main");
    assert_eq!(der_ext(&leaf, 19), claim("workflow_sha"));
    assert_eq!(der_ext(&leaf, 20), "push");
    assert_eq!(
        der_ext(&leaf, 21),
        format!("https://github.com/acme/widget/actions/runs/{}/attempts/1", claim("run_id"))
    );
    assert_eq!(der_ext(&leaf, 22), "public");
    assert_eq!(der_ext(&leaf, 24), claim("sub"));
    for n in 1..=24 {
        if let Some(ext) = sigstore_ext(&leaf, n) {
            assert!(!ext.critical, ".{n} must not be critical");
        }
    }

    // Exactly one SCT extension, non-critical, last.
    let scts: Vec<_> = leaf.extensions().iter().filter(|e| e.oid.to_id_string() == SCT_OID).collect();
    assert_eq!(scts.len(), 1);
    assert!(!scts[0].critical);
    assert_eq!(leaf.extensions().last().unwrap().oid.to_id_string(), SCT_OID);

    // The chain verifies and the CA certificates are RFC 5280-clean.
    leaf.verify_signature(Some(intermediate.public_key())).unwrap();
    intermediate.verify_signature(Some(root.public_key())).unwrap();
    root.verify_signature(None).unwrap();
    for (ca, pathlen) in [(&intermediate, Some(0)), (&root, None)] {
        let bc = ca.basic_constraints().unwrap().expect("basicConstraints");
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, pathlen);
        let ku = ca.key_usage().unwrap().expect("keyUsage");
        assert!(ku.critical && ku.value.key_cert_sign());
        assert!(!ski(ca).is_empty());
        assert!(ca.subject().to_string().contains("not for production"), "{}", ca.subject());
        assert!(ca.raw_serial().len() <= 20);
    }
    assert_eq!(aki(&intermediate), ski(&root));
    assert!(intermediate.extended_key_usage().unwrap().expect("EKU on intermediate").value.code_signing);
    assert_eq!(root.subject(), root.issuer());
}

#[tokio::test]
async fn email_leaf_has_an_email_san_and_issuer_extensions_only() {
    let setup = setup();
    let chain = issue(&setup, &email_token(&setup.issuer), "dev@acme.test").await;
    let (_, leaf) = X509Certificate::from_der(&chain.certificates[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().expect("SAN");
    assert!(san.critical);
    assert_eq!(san.value.general_names, vec![GeneralName::RFC822Name("dev@acme.test")]);
    assert_eq!(raw_ext(&leaf, 1), EMAIL_ISSUER);
    assert_eq!(der_ext(&leaf, 8), EMAIL_ISSUER);
    assert_eq!(der_ext(&leaf, 24), "dev@acme.test");
    for n in (2..=6).chain(9..=23) {
        assert!(sigstore_ext(&leaf, n).is_none(), "email leaf must not carry .{n}");
    }
}

/// Minimal DER reader for the test: (tag, header length, content length) at `pos`.
fn tlv(buf: &[u8], pos: usize) -> (u8, usize, usize) {
    let tag = buf[pos];
    let first = buf[pos + 1] as usize;
    if first < 0x80 {
        return (tag, 2, first);
    }
    let n = first & 0x7f;
    let len = buf[pos + 2..pos + 2 + n].iter().fold(0usize, |acc, b| acc << 8 | *b as usize);
    (tag, 2 + n, len)
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Go's `ct.BuildPrecertTBS`, by hand: the TBS with the SCT-list extension removed.
fn tbs_without_sct(tbs: &[u8], sct_extension_der: &[u8]) -> Vec<u8> {
    let (tag, header, len) = tlv(tbs, 0);
    assert_eq!(tag, 0x30);
    let body = &tbs[header..header + len];
    let mut pos = 0;
    let mut rebuilt = Vec::new();
    while pos < body.len() {
        let (tag, h, l) = tlv(body, pos);
        let element = &body[pos..pos + h + l];
        if tag == 0xa3 {
            let (_, sh, sl) = tlv(element, h);
            let extensions = &element[h + sh..h + sh + sl];
            let mut kept = Vec::new();
            let mut epos = 0;
            while epos < extensions.len() {
                let (_, eh, el) = tlv(extensions, epos);
                let extension = &extensions[epos..epos + eh + el];
                if extension != sct_extension_der {
                    kept.extend_from_slice(extension);
                }
                epos += eh + el;
            }
            rebuilt.extend(encode(0xa3, &encode(0x30, &kept)));
        } else {
            rebuilt.extend_from_slice(element);
        }
        pos += h + l;
    }
    encode(0x30, &rebuilt)
}

#[tokio::test]
async fn embedded_sct_verifies_with_the_ct_key_independently() {
    let setup = setup();
    let chain = issue(&setup, &github_token(&setup.issuer), "repo:acme/widget:ref:refs/heads/main").await;
    let (_, leaf) = X509Certificate::from_der(&chain.certificates[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&chain.certificates[1]).unwrap();

    // The raw SCT-list extension (to strip) and its value.
    let sct_ext = leaf.extensions().iter().find(|e| e.oid.to_id_string() == SCT_OID).unwrap();
    let value = sct_ext.value;
    let tbs = leaf.tbs_certificate.as_ref();
    let sct_ext_der = {
        // Find the full Extension SEQUENCE that contains this value inside the TBS.
        let start = tbs.windows(value.len()).position(|w| w == value).unwrap();
        let mut from = start;
        loop {
            from -= 1;
            if tbs[from] == 0x30 {
                let (_, h, l) = tlv(tbs, from);
                if from + h + l == start + value.len() {
                    break &tbs[from..from + h + l];
                }
            }
        }
    };
    let precert_tbs = tbs_without_sct(tbs, sct_ext_der);
    assert!(precert_tbs.len() < tbs.len());

    // extnValue = OCTET STRING( u16 list_len || u16 sct_len || sct ).
    let (tag, h, l) = tlv(value, 0);
    assert_eq!(tag, 0x04);
    let list = &value[h..h + l];
    let list_len = u16::from_be_bytes([list[0], list[1]]) as usize;
    assert_eq!(list_len, list.len() - 2);
    let sct_len = u16::from_be_bytes([list[2], list[3]]) as usize;
    assert_eq!(sct_len + 2, list_len, "exactly one SCT");
    let sct = &list[4..4 + sct_len];
    assert_eq!(sct[0], 0, "v1");
    let log_id = &sct[1..33];
    let timestamp = &sct[33..41];
    assert_eq!(&sct[41..43], &[0, 0], "no SCT extensions");
    assert_eq!((sct[43], sct[44]), (4, 3), "SHA-256 / ECDSA");
    let sig_len = u16::from_be_bytes([sct[45], sct[46]]) as usize;
    let signature = &sct[47..47 + sig_len];
    assert_eq!(47 + sig_len, sct.len());

    let ct_spki = setup.fulcio.ca().ctlog().public_key_der().to_vec();
    assert_eq!(log_id, digest(&SHA256, &ct_spki).as_ref(), "log ID = SHA-256(DER SPKI)");
    let issuer_key_hash = digest(&SHA256, intermediate.tbs_certificate.subject_pki.raw);
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(timestamp);
    signed.extend_from_slice(&[0, 1]);
    signed.extend_from_slice(issuer_key_hash.as_ref());
    signed.extend_from_slice(&(precert_tbs.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(&precert_tbs);
    signed.extend_from_slice(&[0, 0]);
    let (_, ct_key) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&ct_spki).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, ct_key.subject_public_key.data.as_ref())
        .verify(&signed, signature)
        .expect("SCT signature verifies over the rebuilt precert entry");
    let ms = u64::from_be_bytes(timestamp.try_into().unwrap());
    assert!(ms / 1000 >= leaf.validity().not_before.timestamp() as u64);
}

#[tokio::test]
async fn ca_material_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let first = sigstack_fulcio::CertificateAuthority::load_or_generate(dir.path()).unwrap();
    let second = sigstack_fulcio::CertificateAuthority::load_or_generate(dir.path()).unwrap();
    assert_eq!(first.root_der(), second.root_der());
    assert_eq!(first.ctlog().public_key_der(), second.ctlog().public_key_der());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("ca.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let other = sigstack_fulcio::CertificateAuthority::load_or_generate(tempfile::tempdir().unwrap().path()).unwrap();
    assert_ne!(first.root_der(), other.root_der());
}

#[tokio::test]
async fn a_leafs_identity_reads_back_and_issues_again_at_another_time() {
    let setup = setup();
    let issued = issue(&setup, &github_token(&setup.issuer), "repo:acme/widget:ref:refs/heads/main").await;
    let identity = sigstack_fulcio::Identity::of_leaf(&issued.certificates[0]).unwrap();
    assert!(identity.san().starts_with("https://github.com/"), "{}", identity.san());
    let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
    let key = SubjectKey::from_spki_der(&ClientKey::new().spki_der()).unwrap();
    let again = setup.fulcio.ca().issue(&key, &identity, hour_ago).unwrap();
    let (_, first) = X509Certificate::from_der(&issued.certificates[0]).unwrap();
    let (_, second) = X509Certificate::from_der(&again.certificates[0]).unwrap();
    for n in [1, 8, 9, 10, 11, 12] {
        assert_eq!(sigstore_ext(&first, n).unwrap().value, sigstore_ext(&second, n).unwrap().value, ".{n}");
    }
    let expired = second.validity().not_after.timestamp() as u64;
    assert!(expired < SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs(), "issued in the past, expired");
    assert!(sigstack_fulcio::Identity::of_leaf(b"not a certificate").is_err());
}
