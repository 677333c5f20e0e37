// The explorer in a real browser: Debian's Chromium driven by playwright-core (no browser
// download). Visits every page, checks what a demo audience would look for, watches the log page
// update itself while a new signature is logged, saves a screenshot of each page, and fails if
// any request leaves the explorer's origin.
//
// usage: node explorer.cjs NODE_PREFIX EXPLORER_URL OUT_DIR SIGSTACK_BIN STATE_DIR EXPECT_JSON
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');
const fs = require('fs');
const [prefix, base, outDir, sigstackBin, stateDir, expectJson] = process.argv.slice(2);
const expect = JSON.parse(expectJson);
const { chromium } = require(path.join(prefix, 'node_modules', 'playwright-core'));

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).replace(/\s+/g, ' ');
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const shots = [];
  const shot = async (name) => {
    const file = path.join(outDir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  };

  // Overview: every service answers; the trust files are there to download.
  await page.goto(`${base}/`);
  const services = await text(page, 'table');
  assert(!services.includes('✘'), `a service does not answer: ${services}`);
  for (const name of ['oidc', 'fulcio', 'rekor', 'registry', 'tuf']) assert(services.includes(name), `no ${name} in ${services}`);
  assert((await page.locator('ul.files a[href="/trust/trusted_root.json"]').count()) === 1, 'no trusted_root.json link');
  await shot('overview');

  // Log: entries with the signer's identity, each proven included in the signed checkpoint.
  await page.goto(`${base}/log`);
  const log = await text(page, 'main');
  assert(log.includes(expect.identity), `the log does not show ${expect.identity}`);
  assert(log.includes('✔ included'), 'no entry proven included');
  assert(!log.includes('✘'), `a check failed on the log page: ${log.slice(0, 2000)}`);
  await shot('log');

  // Live: a new signature appears without reloading the page.
  const rows = await page.locator('table.entries tbody tr').count();
  const artifact = path.join(outDir, 'live-artifact.txt');
  fs.writeFileSync(artifact, `signed while the page was open ${Date.now()}\n`);
  execFileSync(sigstackBin, ['sign-bundle', '--state-dir', stateDir, '--bundle', path.join(outDir, 'live.sigstore.json'), artifact], { stdio: 'ignore' });
  await page.waitForFunction((n) => document.querySelectorAll('table.entries tbody tr').length > n, rows, { timeout: 20000 });
  const live = await text(page, '#live');
  assert(live.includes('updated'), `the live indicator says ${live}`);

  // Certificate: the SAN and a verified SCT.
  await page.locator('a', { hasText: 'certificate' }).first().click();
  await page.waitForURL(/\/certificate\//);
  const cert = await text(page, 'main');
  assert(cert.includes(expect.identity.split(' ')[0]), 'the certificate page lacks the SAN');
  assert((await text(page, '#sct')).includes('✔ verifies'), 'the SCT is not shown verified');
  assert(cert.includes('Source Repository URI'), 'the GitHub claims are not named');
  await shot('certificate');

  // Registry: the signed image signed and attested with its SBOM, the unsigned one not.
  await page.goto(`${base}/registry`);
  const signed = await text(page, `section#${expect.signed_section}`);
  assert(signed.includes('✔ signed') && signed.includes('✔ attested'), `signed image: ${signed}`);
  assert(signed.includes('https://spdx.dev/Document') && signed.includes('SBOM:'), `no SBOM summary: ${signed}`);
  const unsigned = await text(page, `section#${expect.unsigned_section}`);
  assert(unsigned.includes('✘ not signed'), `unsigned image: ${unsigned}`);
  await shot('registry');

  // Admission: nginx:latest denied with Kyverno's reason; the signed Pod admitted and pinned.
  await page.goto(`${base}/admission`);
  const denied = await text(page, `tr:has-text("${expect.denied_resource}")`);
  assert(denied.includes('✘ denied') && denied.includes('images must come from'), `denial: ${denied}`);
  const admitted = await text(page, `tr:has-text("${expect.admitted_resource}")`);
  assert(admitted.includes('✔ admitted') && admitted.includes('pinned to'), `admission: ${admitted}`);
  await shot('admission');

  // Search by the image digest.
  await page.goto(`${base}/search?q=${encodeURIComponent(expect.search)}`);
  const found = await text(page, 'main');
  assert(/[1-9]\d* entr/.test(found), `search found nothing: ${found.slice(0, 500)}`);
  await shot('search');

  await browser.close();
  const foreign = requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:'));
  assert(foreign.length === 0, `requests left the explorer: ${foreign.join(', ')}`);
  console.log(JSON.stringify({ requests: requests.length, screenshots: shots }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
