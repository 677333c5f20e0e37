"""sigstore-python, unmodified, obtains a signing certificate from a sigstack CA and accepts it.

Runs sigstore-python's own signing-certificate step (CSR -> POST /api/v2/signingCert -> embedded SCT
verified against the CT key) and its own verifier's chain check (pyca webpki profile), then the
identity policy `verify identity` uses. The trust config is assembled from the PEM files the stack
writes; the transparency-log key is a throwaway, since this step never talks to a log.

usage: fulcio_cert.py TRUST_DIR FULCIO_URL TOKEN EXPECTED_SAN EXPECTED_ISSUER
"""

import base64
import hashlib
import json
import sys
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify.policy import Identity
from sigstore.verify.verifier import Verifier


def key_entry(spki_der: bytes, url: str) -> dict:
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": base64.b64encode(spki_der).decode(),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        },
        "logId": {"keyId": base64.b64encode(hashlib.sha256(spki_der).digest()).decode()},
    }


def main() -> None:
    trust_dir, fulcio_url, token, expected_san, expected_issuer = sys.argv[1:6]
    chain = x509.load_pem_x509_certificates(open(f"{trust_dir}/fulcio-chain.pem", "rb").read())
    ct_key = serialization.load_pem_public_key(open(f"{trust_dir}/ctlog.pub", "rb").read())
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    throwaway_tlog = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(der, spki)
    # trusted_root lists the CA chain issuer first, root last; fulcio-chain.pem is root first.
    ordered = list(reversed(chain))
    trust_config = {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [key_entry(throwaway_tlog, "http://127.0.0.1:1")],
            "certificateAuthorities": [{
                "subject": {"organization": "sigstack", "commonName": "sigstack"},
                "uri": fulcio_url,
                "certChain": {"certificates": [{"rawBytes": base64.b64encode(c.public_bytes(der)).decode()} for c in ordered]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [key_entry(ct_key.public_bytes(der, spki), "http://127.0.0.1:1")],
            "timestampAuthorities": [],
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [{"url": fulcio_url, "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}, "operator": "sigstack"}],
            "oidcUrls": [],
            "rekorTlogUrls": [{"url": "http://127.0.0.1:1", "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}, "operator": "sigstack"}],
            "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }
    config = ClientTrustConfig.from_json(json.dumps(trust_config))
    context = SigningContext.from_trust_config(config)
    with context.signer(IdentityToken(token), cache=True) as signer:
        # sigstore-python's own step: CSR, Fulcio v2, then verify_sct with the CT keyring.
        cert = signer._signing_cert()

    class Now:
        time = datetime.now(timezone.utc)

    verified_chain = Verifier(trusted_root=config.trusted_root)._verify_chain_at_time(cert, Now)
    Identity(identity=expected_san, issuer=expected_issuer).verify(cert)
    print(json.dumps({
        "san": expected_san,
        "chain_length": len(verified_chain) + 1,
        "not_after_minus_before": int((cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()),
        "sct": "verified",
    }))


if __name__ == "__main__":
    main()
