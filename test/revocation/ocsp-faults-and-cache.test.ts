/**
 * OCSP faults and caching, with a loopback responder whose signed answers come from
 * `openssl ocsp -reqin` (real signing), bent only to inject one fault at a time: a hang past the
 * timeout, garbage, a signer the issuer never certified, a corrupted signature, an expired
 * answer, an hour-old answer without nextUpdate (re-dated and re-signed), an answer about another
 * certificate, HTTP 500, tryLater, an oversized body, a missing
 * nonce. Each must give `unknown`, a log line naming the reason, and no throw.
 * Then: cache hits, single flight, the negative cache, refresh-ahead firing onRevoked.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker, type RevocationResult } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { redateOcspResponse } from '../fixtures/ocsp-redate.js';
import { createOpensslPki, openssl, type Issued } from '../fixtures/openssl-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { waitFor, within } from '../fixtures/wait.js';

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => void unhandled.push(err);
process.on('unhandledRejection', onUnhandled);

const pki = await createOpensslPki();
const rogue = await createOpensslPki({ caName: 'Rogue CA', rootName: 'Rogue Root' });
t.teardown(() => Promise.all([pki.cleanup(), rogue.cleanup()]));
const leaf = await pki.issue('leaf');
const otherLeaf = await pki.issue('other-leaf');
const rogueSigner = await rogue.issue('rogue-ocsp', { eku: 'OCSPSigning' });
const noEkuSigner = await pki.issue('not-an-ocsp-signer', { eku: 'clientAuth' });
const trustedCas = [pki.root.x509, pki.ca.x509];

type Answer = { status?: number; body?: Buffer; hang?: boolean; delayMs?: number };
let answer: (request: Buffer) => Promise<Answer> = async (request) => ({ body: await pki.respond(request, pki.ca) });
const server = await startHttpServer(async (_req, body, res) => {
  const a = await answer(body);
  if (a.hang) return;
  if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
  res.writeHead(a.status ?? 200, { 'content-type': 'application/ocsp-response' });
  res.end(a.body ?? Buffer.alloc(0));
});
t.teardown(() => server.close());

async function requestFor(cert: Issued, nonce: boolean): Promise<Buffer> {
  const out = join(pki.dir, `req-${cert.name}-${nonce}.der`);
  await openssl(['ocsp', '-issuer', pki.ca.certPath, '-cert', cert.certPath, nonce ? '-nonce' : '-no_nonce', '-reqout', out], pki.dir);
  return readFile(out);
}

function makeChecker(ocsp: Record<string, unknown> = {}, now?: () => number) {
  const logger = captureLogger();
  const options = revocationSchema.parse({ mode: 'ocsp', ocsp: { overrideUrl: server.url, timeoutMs: 400, ...ocsp } });
  const checker = createRevocationChecker(options, { trustedCas, logger, ...(now ? { now } : {}) });
  return { checker, logger };
}

const faults: { name: string; reason: string; answer: typeof answer; ocsp?: Record<string, unknown>; now?: () => number; detail?: RegExp }[] = [
  { name: 'a responder that hangs past the timeout', reason: 'http-timeout', answer: async () => ({ hang: true }) },
  { name: 'garbage instead of DER', reason: 'ocsp-malformed', answer: async () => ({ body: Buffer.from('<html>not ocsp</html>') }) },
  {
    name: 'a signer the issuer never certified (another CA’s OCSP signer)',
    reason: 'ocsp-signer',
    answer: async (req) => ({ body: await pki.respond(req, rogueSigner) }),
  },
  {
    name: 'a signer certified by the issuer but without id-kp-OCSPSigning',
    reason: 'ocsp-signer',
    answer: async (req) => ({ body: await pki.respond(req, noEkuSigner) }),
  },
  {
    name: 'a corrupted signature',
    reason: 'ocsp-signature',
    answer: async (req) => {
      const body = await pki.respond(req, pki.ca, { extra: ['-resp_no_certs'] });
      body[body.length - 2] = (body[body.length - 2] as number) ^ 0xff; // inside the signature value
      return { body };
    },
  },
  {
    name: 'an expired answer (nextUpdate long past)',
    reason: 'ocsp-expired',
    answer: async (req) => ({ body: await pki.respond(req, pki.ca, { nmin: 10 }) }),
    now: () => Date.now() + 3600_000,
  },
  {
    name: 'an answer without nextUpdate whose thisUpdate is an hour old',
    reason: 'ocsp-stale',
    answer: async (req) => ({ body: await redateOcspResponse(await pki.respond(req, pki.ca), pki.ca, new Date(Date.now() - 3600_000)) }),
    detail: /no nextUpdate, and thisUpdate .* is more than 300 s old/,
  },
  {
    name: 'an answer about another certificate (CertID mismatch)',
    reason: 'ocsp-certid',
    answer: async () => ({ body: await pki.respond(await requestFor(otherLeaf, false), pki.ca) }),
  },
  {
    name: 'a SHA-1 based signature (refused as weak)',
    reason: 'ocsp-signature',
    answer: async (req) => ({ body: await pki.respond(req, pki.ca, { extra: ['-rmd', 'sha1'] }) }),
    detail: /unsupported or weak signature algorithm 1\.2\.840\.10045\.4\.1/,
  },
  { name: 'HTTP 500', reason: 'http-status', answer: async () => ({ status: 500, body: Buffer.from('oops') }) },
  { name: 'tryLater', reason: 'ocsp-status', answer: async () => ({ body: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]) }) },
  { name: 'an oversized body', reason: 'http-too-large', answer: async () => ({ body: Buffer.alloc(200_000, 0x30) }) },
  {
    name: 'a nonce that is not echoed',
    reason: 'ocsp-nonce',
    answer: async () => ({ body: await pki.respond(await requestFor(leaf, false), pki.ca) }),
    ocsp: { nonce: true },
  },
];

for (const fault of faults) {
  t.test(`fault: ${fault.name}`, async (t) => {
    answer = fault.answer;
    const { checker, logger } = makeChecker(fault.ocsp, fault.now);
    t.teardown(() => checker.close());
    const started = Date.now();
    const r = await checker.check(leaf.x509, pki.ca.x509);
    t.match(r, { status: 'unknown', method: 'ocsp', cached: false });
    t.match(r.detail, fault.reason);
    if (fault.detail) t.match(r.detail, fault.detail);
    t.equal(logger.find('warn', 'OCSP check failed', { reason: fault.reason }).length, 1, `logged with reason ${fault.reason}`);
    t.ok(Date.now() - started < 3000, 'answered promptly');
  });
}

t.test('control: the same responder, unbent, answers good', async (t) => {
  answer = async (req) => ({ body: await pki.respond(req, pki.ca) });
  const { checker } = makeChecker({ nonce: true });
  t.teardown(() => checker.close());
  t.equal((await checker.check(leaf.x509, pki.ca.x509)).status, 'good');
});

t.test('a responder identified by key hash (byKey ResponderID) is accepted', async (t) => {
  answer = async (req) => ({ body: await pki.respond(req, pki.ca, { extra: ['-resp_key_id'] }) });
  const { checker } = makeChecker();
  t.teardown(() => checker.close());
  t.match(await checker.check(leaf.x509, pki.ca.x509), { status: 'good', detail: /issuer-signed/ });
});

t.test('cache hit and single flight: 20 concurrent checks, one request', async (t) => {
  answer = async (req) => ({ body: await pki.respond(req, pki.ca), delayMs: 100 });
  const { checker } = makeChecker();
  t.teardown(() => checker.close());
  const before = server.requests();
  const results = await Promise.all(Array.from({ length: 20 }, () => checker.check(leaf.x509, pki.ca.x509)));
  t.equal(server.requests() - before, 1, 'one responder request');
  t.ok(results.every((r) => r.status === 'good' && !r.cached));
  t.match(await checker.check(leaf.x509, pki.ca.x509), { status: 'good', cached: true });
  t.equal(server.requests() - before, 1, 'still one request after a cache hit');
});

t.test('negative cache: a failing responder is asked once per negativeCacheSeconds', async (t) => {
  answer = async () => ({ status: 500 });
  let offset = 0;
  const { checker } = makeChecker({ negativeCacheSeconds: 30 }, () => Date.now() + offset);
  t.teardown(() => checker.close());
  const before = server.requests();
  const results: RevocationResult[] = [];
  for (let i = 0; i < 5; i++) results.push(await checker.check(leaf.x509, pki.ca.x509));
  t.equal(server.requests() - before, 1, 'five checks, one request');
  t.ok(results.every((r) => r.status === 'unknown'));
  t.same(results.map((r) => r.cached), [false, true, true, true, true]);
  offset = 31_000;
  await checker.check(leaf.x509, pki.ca.x509);
  t.equal(server.requests() - before, 2, 'asked again once the negative entry expired');
});

t.test('refresh-ahead: a repeated check re-asks in the background and fires onRevoked', async (t) => {
  const victim = await pki.issue('ocsp-victim');
  answer = async (req) => ({ body: await pki.respond(req, pki.ca) });
  let offset = 0;
  const { checker } = makeChecker({ maxCacheTtlSeconds: 4 }, () => Date.now() + offset);
  t.teardown(() => checker.close());
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  const event = new Promise<string>((resolve) => checker.onRevoked((_ikh, serial) => resolve(serial)));
  await pki.revoke(victim);
  offset = 3_500; // past 75 % of the 4 s lifetime: the next hit triggers a refresh
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'good', cached: true }, 'served from cache meanwhile');
  t.equal(await within(event, 5000, 'onRevoked'), victim.x509.serialNumber);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'revoked', cached: true });
});

t.test('a replayed older "good" neither replaces a newer answer nor un-revokes', async (t) => {
  const victim = await pki.issue('ocsp-replay-victim');
  let recorded: Buffer | undefined;
  answer = async (req) => {
    const body = await pki.respond(req, pki.ca);
    recorded ??= body;
    return { body };
  };
  let offset = 0;
  const { checker, logger } = makeChecker({ maxCacheTtlSeconds: 4 }, () => Date.now() + offset);
  t.teardown(() => checker.close());
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good', 'good before revocation (recorded)');
  await pki.revoke(victim);
  offset = 4_500; // the good answer expired: the next check asks again
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'revoked');
  // The attacker on the plain-HTTP path now answers with the recorded "good", re-dated an hour back but "valid" for a day.
  const old = await redateOcspResponse(recorded!, pki.ca, new Date(Date.now() - 3_600_000), new Date(Date.now() + 86_400_000));
  answer = async () => ({ body: old });
  offset = 4_500 + 3_500; // past 75 % of the revoked answer's lifetime: a hit refreshes in the background
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'revoked');
  t.ok(await waitFor(() => logger.find('warn', 'OCSP answer older than the one held, or un-revoking it; ignored').length === 1, 3000), 'the replay was refused and logged');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'revoked', 'still revoked');
});

t.test('a failed background refresh keeps the still-valid answer', async (t) => {
  answer = async (req) => ({ body: await pki.respond(req, pki.ca) });
  let offset = 0;
  const { checker, logger } = makeChecker({ maxCacheTtlSeconds: 4 }, () => Date.now() + offset);
  t.teardown(() => checker.close());
  t.equal((await checker.check(otherLeaf.x509, pki.ca.x509)).status, 'good');
  answer = async () => ({ status: 503 });
  offset = 3_500;
  t.match(await checker.check(otherLeaf.x509, pki.ca.x509), { status: 'good', cached: true });
  t.ok(await waitFor(() => logger.find('warn', 'OCSP check failed').length === 1, 3000), 'refresh failure logged');
  t.match(await checker.check(otherLeaf.x509, pki.ca.x509), { status: 'good', cached: true });
});

t.test('no unhandled rejections', async (t) => {
  await new Promise((r) => setTimeout(r, 50));
  process.off('unhandledRejection', onUnhandled);
  t.same(unhandled, []);
});
