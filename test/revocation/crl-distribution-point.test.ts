/**
 * CRLs over HTTP: found through a certificate's CRL distribution point and fetched in the
 * background (the first check answers per policy meanwhile); a refresh picks up a newly revoked
 * certificate and fires onRevoked; conditional GET; configured URLs gate ready(); download
 * faults (HTTP 500, garbage, a hang, an oversized body) keep the previous CRL and log.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { computeIssuerKeyHash, createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { waitFor, within } from '../fixtures/wait.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());

type Mode = 'serve' | 'error500' | 'garbage' | 'hang' | 'huge';
let mode: Mode = 'serve';
let crl = await readFile(await pki.genCrl('initial', { format: 'der' }));
const conditionalHits: number[] = [];
const server = await startHttpServer((req, _body, res) => {
  if (mode === 'hang') return;
  if (mode === 'error500') return void res.writeHead(500).end('down');
  if (mode === 'garbage') return void res.writeHead(200).end('this is not a CRL');
  if (mode === 'huge') return void res.writeHead(200).end(Buffer.alloc(300_000, 0x30));
  const etag = `"${createHash('sha256').update(crl).digest('hex').slice(0, 16)}"`;
  if (req.headers['if-none-match'] === etag) {
    conditionalHits.push(Date.now());
    return void res.writeHead(304, { etag }).end();
  }
  res.writeHead(200, { 'content-type': 'application/pkix-crl', etag }).end(crl);
});
t.teardown(() => server.close());
const cdp = `${server.url}/issuing-ca.crl`;
const trustedCas = [pki.root.x509, pki.ca.x509];
const options = (crlOptions: Record<string, unknown>) =>
  revocationSchema.parse({ mode: 'crl', crl: { refreshIntervalSeconds: 1, fetchTimeoutMs: 500, ...crlOptions } });

t.test('distribution point: discovered, fetched in the background, refreshed, fires onRevoked', async (t) => {
  mode = 'serve';
  const victim = await pki.issue('cdp-victim', { cdp: [cdp] });
  const bystander = await pki.issue('cdp-bystander', { cdp: [cdp] });
  const logger = captureLogger();
  const checker = createRevocationChecker(options({}), { trustedCas, logger });
  t.teardown(() => checker.close());
  await checker.ready(); // nothing configured: resolves at once

  const first = await checker.check(victim.x509, pki.ca.x509);
  t.match(first, { status: 'good', method: 'crl', cached: false }, "first sight waits for the distribution point's first download");
  t.equal(logger.find('info', 'CRL loaded').length, 1, 'CRL fetched from the distribution point');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  t.equal((await checker.check(bystander.x509, pki.ca.x509)).status, 'good');

  t.ok(await waitFor(() => conditionalHits.length > 0, 4000), 'unchanged CRL re-fetched with a conditional GET (304)');

  const revokedEvents: string[] = [];
  checker.onRevoked((issuerKeyHash, serial) => {
    t.equal(issuerKeyHash, computeIssuerKeyHash(pki.ca.x509));
    revokedEvents.push(serial);
  });
  await pki.revoke(victim);
  crl = await readFile(await pki.genCrl('after-revoke', { format: 'der' }));
  t.ok(await waitFor(() => revokedEvents.length > 0, 5000), 'onRevoked within the refresh interval');
  t.same(revokedEvents, [victim.x509.serialNumber], 'only the newly revoked certificate is reported');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'revoked');
  t.equal((await checker.check(bystander.x509, pki.ca.x509)).status, 'good');
});

t.test('a distribution point that hangs on first sight: unknown after the fetch timeout, not forever', async (t) => {
  mode = 'hang';
  t.teardown(() => void (mode = 'serve'));
  const leaf = await pki.issue('cdp-first-hang', { cdp: [`${server.url}/hanging-first.crl`] });
  const checker = createRevocationChecker(options({}), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  const start = Date.now();
  const first = await checker.check(leaf.x509, pki.ca.x509);
  const waited = Date.now() - start;
  t.match(first, { status: 'unknown', method: 'crl' });
  t.match(first.detail, /first download/);
  t.ok(waited >= 400 && waited < 3_000, `waited about fetchTimeoutMs (500 ms): ${waited} ms`);
});

t.test('fetchDistributionPoints: false never fetches', async (t) => {
  const leaf = await pki.issue('cdp-ignored', { cdp: [`${server.url}/other.crl`] });
  const before = server.requests();
  const checker = createRevocationChecker(options({ fetchDistributionPoints: false }), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  t.equal((await checker.check(leaf.x509, pki.ca.x509)).status, 'unknown');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(server.requests(), before);
});

t.test('a configured URL is loaded before ready() resolves', async (t) => {
  mode = 'serve';
  const leaf = await pki.issue('url-leaf');
  const checker = createRevocationChecker(options({ urls: [cdp], fetchDistributionPoints: false }), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  await within(checker.ready(), 5000, 'ready');
  t.match(await checker.check(leaf.x509, pki.ca.x509), { status: 'good', method: 'crl', cached: true });
});

for (const fault of ['error500', 'garbage', 'hang', 'huge'] as const) {
  t.test(`download fault "${fault}": logged, previous CRL kept`, async (t) => {
    mode = 'serve';
    const leaf = await pki.issue(`fault-${fault}`);
    const logger = captureLogger();
    const checker = createRevocationChecker(options({ urls: [cdp], fetchDistributionPoints: false, maxBytes: 100_000 }), {
      trustedCas,
      logger,
    });
    t.teardown(() => checker.close());
    await checker.ready();
    t.equal((await checker.check(leaf.x509, pki.ca.x509)).status, 'good');
    mode = fault;
    const logged = () => [...logger.find('warn', 'CRL download failed'), ...logger.find('warn', 'CRL rejected')];
    t.ok(await waitFor(() => logged().length > 0, 5000), 'the failure is logged');
    const line = logged()[0];
    const expected = { error500: /500/, garbage: /pem/, hang: /http-timeout/, huge: /http-too-large/ }[fault];
    t.match(JSON.stringify({ ...line?.obj, err: (line?.obj.err as { fault?: string })?.fault }), expected);
    t.equal((await checker.check(leaf.x509, pki.ca.x509)).status, 'good', 'previous CRL still answers');
    mode = 'serve';
  });
}

t.test('a URL that never worked: ready() still resolves, checks answer unknown', async (t) => {
  mode = 'error500';
  const leaf = await pki.issue('never-loaded');
  const logger = captureLogger();
  const checker = createRevocationChecker(options({ urls: [`${server.url}/missing.crl`], fetchDistributionPoints: false }), {
    trustedCas,
    logger,
  });
  t.teardown(() => checker.close());
  await within(checker.ready(), 5000, 'ready');
  t.equal((await checker.check(leaf.x509, pki.ca.x509)).status, 'unknown');
  t.equal(logger.find('warn', 'CRL download failed', { status: 500 }).length, 1);
  mode = 'serve';
});
