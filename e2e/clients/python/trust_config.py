"""Builds a sigstore-python ClientTrustConfig from the PEM files a sigstack stack writes.

Stands in until the stack writes trust_config.json itself. usage:
trust_config.py TRUST_DIR FULCIO_URL REKOR_URL OUT.json
"""

import base64
import hashlib
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
START = {"start": "2020-01-01T00:00:00Z"}


def key_entry(spki_der: bytes, url: str) -> dict:
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {"rawBytes": base64.b64encode(spki_der).decode(), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": START},
        "logId": {"keyId": base64.b64encode(hashlib.sha256(spki_der).digest()).decode()},
    }


def pem_key(path: str) -> bytes:
    return serialization.load_pem_public_key(open(path, "rb").read()).public_bytes(DER, SPKI)


def build(trust_dir: str, fulcio_url: str, rekor_url: str, rekor_key: bytes | None = None) -> dict:
    chain = x509.load_pem_x509_certificates(open(f"{trust_dir}/fulcio-chain.pem", "rb").read())
    service = lambda url: {"url": url, "majorApiVersion": 1, "validFor": START, "operator": "sigstack"}
    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [key_entry(rekor_key or pem_key(f"{trust_dir}/rekor.pub"), rekor_url)],
            "certificateAuthorities": [{
                "subject": {"organization": "sigstack", "commonName": "sigstack"},
                "uri": fulcio_url,
                # issuer first, root last; fulcio-chain.pem is root first.
                "certChain": {"certificates": [{"rawBytes": base64.b64encode(c.public_bytes(DER)).decode()} for c in reversed(chain)]},
                "validFor": START,
            }],
            "ctlogs": [key_entry(pem_key(f"{trust_dir}/ctlog.pub"), fulcio_url)],
            "timestampAuthorities": [],
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(fulcio_url)],
            "oidcUrls": [],
            "rekorTlogUrls": [service(rekor_url)],
            "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }


if __name__ == "__main__":
    trust_dir, fulcio_url, rekor_url, out = sys.argv[1:5]
    with open(out, "w") as f:
        json.dump(build(trust_dir, fulcio_url, rekor_url), f, indent=2)
