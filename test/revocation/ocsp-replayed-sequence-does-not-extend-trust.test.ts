/**
 * Without a nonce, someone on the plain-HTTP OCSP path who captured several pre-revocation `good`
 * answers (distinct, increasing thisUpdate: the responder re-signs every request) replays them one
 * per re-ask: each is newer than the held one and not the same answer, so each restarted
 * maxGoodAge and a revoked device stayed in until the last one's nextUpdate (found by review). A
 * good without a nonce is now trusted at most maxGoodAge past its own thisUpdate (+ tolerance).
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());
const trustedCas = [pki.root.x509, pki.ca.x509];

let queue: Buffer[] | undefined;
let lastRequest: Buffer | undefined;
const server = await startHttpServer(async (_req, body, res) => {
  res.writeHead(200, { 'content-type': 'application/ocsp-response' });
  if (queue !== undefined) return void res.end(queue.shift() ?? Buffer.alloc(0));
  lastRequest = body;
  res.end(await pki.respond(body, pki.ca, { nmin: 10 }));
});
t.teardown(() => server.close());

t.test('a sequence of captured goods keeps a revoked device admitted past maxGoodAge', async (t) => {
  let offset = 0;
  const options = revocationSchema.parse({ mode: 'ocsp', ocsp: { overrideUrl: server.url, maxGoodAgeSeconds: 2 } });
  const checker = createRevocationChecker(options, { trustedCas, logger: captureLogger(), now: () => Date.now() + offset });
  t.teardown(() => checker.close());
  const victim = await pki.issue('seq-victim');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  // The attacker asks the responder itself (same nonce-less request) once a second before revocation.
  const captured: Buffer[] = [];
  for (let i = 0; i < 4; i++) {
    await sleep(1_100);
    captured.push(await pki.respond(lastRequest!, pki.ca, { nmin: 10 }));
  }
  await pki.revoke(victim);
  queue = captured; // from now on each re-ask gets the next captured (newer) good
  const seen: string[] = [];
  for (const ms of [2_500, 5_000, 7_500, 10_000]) {
    offset = ms;
    seen.push(`${ms}:${(await checker.check(victim.x509, pki.ca.x509)).status}`);
  }
  t.comment(seen.join(' '));
  t.notOk(seen.some((s) => s.endsWith(':good')), `revoked device re-trusted past maxGoodAge: ${seen.join(' ')}`);
});
