// sigstore-js's library API, unmodified: sign a blob through the stack (Fulcio + Rekor URLs and a
// stack token), then verify it with trust taken only from the stack's TUF mirror, once with the
// expected identity and once with a wrong one.
//
// usage: node sign_verify.cjs NODE_PREFIX FULCIO_URL REKOR_URL TUF_URL TUF_ROOT CACHE_DIR TOKEN IDENTITY ISSUER
'use strict';
const path = require('path');
const [prefix, fulcioURL, rekorURL, tufMirrorURL, tufRootPath, tufCachePath, identityToken, identity, issuer] =
  process.argv.slice(2);
const sigstore = require(path.join(prefix, 'node_modules', 'sigstore'));

async function main() {
  const payload = Buffer.from('signed by the sigstore-js library');
  const bundle = await sigstore.sign(payload, { fulcioURL, rekorURL, identityToken });
  const tuf = { tufMirrorURL, tufRootPath, tufCachePath };
  await sigstore.verify(bundle, payload, { ...tuf, certificateIssuer: issuer, certificateIdentityURI: identity });
  let wrongIdentity = 'accepted';
  try {
    await sigstore.verify(bundle, payload, {
      ...tuf,
      certificateIssuer: issuer,
      certificateIdentityURI: 'https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main',
    });
  } catch (e) {
    wrongIdentity = `refused: ${e.message}`;
  }
  let tampered = 'accepted';
  try {
    await sigstore.verify(bundle, Buffer.from('tampered'), { ...tuf, certificateIssuer: issuer, certificateIdentityURI: identity });
  } catch (e) {
    tampered = `refused: ${e.message}`;
  }
  const entry = bundle.verificationMaterial.tlogEntries[0];
  console.log(JSON.stringify({ verified: true, kind: entry.kindVersion, wrongIdentity, tampered }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
