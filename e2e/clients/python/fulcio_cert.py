"""sigstore-python, unmodified, obtains a signing certificate from a sigstack CA and accepts it.

Runs sigstore-python's own signing-certificate step (CSR -> POST /api/v2/signingCert -> embedded SCT
verified against the CT key) and its own verifier's chain check (pyca webpki profile), then the
identity policy `verify identity` uses, with the trust config the stack writes.

usage: fulcio_cert.py TRUST_CONFIG TOKEN EXPECTED_SAN EXPECTED_ISSUER
"""

import json
import sys
from datetime import datetime, timezone

from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify.policy import Identity
from sigstore.verify.verifier import Verifier


def main() -> None:
    trust_config, token, expected_san, expected_issuer = sys.argv[1:5]
    config = ClientTrustConfig.from_json(open(trust_config).read())
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
