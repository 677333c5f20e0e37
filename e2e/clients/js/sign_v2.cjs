// sigstore-js, unmodified, signing through the stack's signing config (Rekor v2 and the TSA
// when it lists them): @sigstore/sign 4.1's bundleBuilderFromSigningConfig, then @sigstore/verify
// with the stack's trusted root, for a message signature and a DSSE envelope.
//
// usage: node sign_v2.cjs NODE_PREFIX SIGNING_CONFIG TRUSTED_ROOT TOKEN OUT_DIR [dsse]
'use strict';
const fs = require('fs');
const path = require('path');
const [prefix, signingConfigPath, trustedRootPath, identityToken, outDir, withDsse] = process.argv.slice(2);
// The `sigstore` package's own copy of @sigstore/sign (4.1.x): the one with Rekor v2 support.
const fromSigstore = (name) => require(require.resolve(name, { paths: [path.join(prefix, 'node_modules', 'sigstore')] }));
const sign = fromSigstore('@sigstore/sign');
const verify = fromSigstore('@sigstore/verify');
const specs = fromSigstore('@sigstore/protobuf-specs');
const bundleLib = fromSigstore('@sigstore/bundle');

const readJSON = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

async function signAndVerify(bundleType, artifact) {
  const signingConfig = specs.SigningConfig.fromJSON(readJSON(signingConfigPath));
  const builder = sign.bundleBuilderFromSigningConfig({
    signingConfig,
    identityProvider: { getToken: async () => identityToken },
    bundleType,
  });
  const content =
    bundleType === 'dsseEnvelope' ? { data: artifact, type: 'application/vnd.in-toto+json' } : { data: artifact };
  const bundle = await builder.create(content);
  const json = bundleLib.bundleToJSON(bundle);
  const trust = verify.toTrustMaterial(specs.TrustedRoot.fromJSON(readJSON(trustedRootPath)));
  const verifier = new verify.Verifier(trust);
  verifier.verify(verify.toSignedEntity(bundle, bundleType === 'dsseEnvelope' ? undefined : artifact));
  return json;
}

async function main() {
  const artifact = Buffer.from('signed by sigstore-js through the signing config');
  fs.writeFileSync(path.join(outDir, 'js-artifact.txt'), artifact);
  const message = await signAndVerify('messageSignature', artifact);
  fs.writeFileSync(path.join(outDir, 'js-message.sigstore.json'), JSON.stringify(message));
  const result = { message: message.verificationMaterial.tlogEntries[0].kindVersion };
  if (withDsse === 'dsse') {
    const statement = Buffer.from(JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'js-artifact.txt', digest: { sha256: require('crypto').createHash('sha256').update(artifact).digest('hex') } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: { buildDefinition: { buildType: 'https://example.com/b', externalParameters: {} }, runDetails: { builder: { id: 'https://example.com/builder' } } },
    }));
    const dsse = await signAndVerify('dsseEnvelope', statement);
    fs.writeFileSync(path.join(outDir, 'js-dsse.sigstore.json'), JSON.stringify(dsse));
    result.dsse = dsse.verificationMaterial.tlogEntries[0].kindVersion;
  }
  result.timestamps = (message.verificationMaterial.timestampVerificationData?.rfc3161Timestamps || []).length;
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
