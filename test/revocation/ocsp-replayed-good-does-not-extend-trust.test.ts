/**
 * "A good is never trusted past maxGoodAgeSeconds", against someone on the plain-HTTP OCSP path:
 * without a nonce (the default), replaying the last signed `good` (same thisUpdate as the held one,
 * nextUpdate still ahead) used to restart maxGoodAge each time, so a revoked device stayed trusted
 * until that answer's nextUpdate (found by review). The same answer again no longer counts as fresh.
 */
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());
const trustedCas = [pki.root.x509, pki.ca.x509];

let replay: Buffer | undefined;
let captured: Buffer | undefined;
const server = await startHttpServer(async (_req, body, res) => {
  res.writeHead(200, { 'content-type': 'application/ocsp-response' });
  if (replay !== undefined) return void res.end(replay); // the attacker answers with the captured good
  captured = await pki.respond(body, pki.ca, { nmin: 10 });
  res.end(captured);
});
t.teardown(() => server.close());

t.test('a replayed good past maxGoodAge is not trusted again', async (t) => {
  let offset = 0;
  const options = revocationSchema.parse({ mode: 'ocsp', ocsp: { overrideUrl: server.url, maxGoodAgeSeconds: 2 } });
  const checker = createRevocationChecker(options, { trustedCas, logger: captureLogger(), now: () => Date.now() + offset });
  t.teardown(() => checker.close());
  const victim = await pki.issue('replay-victim');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  await pki.revoke(victim);
  replay = captured; // from now on the attacker replays the pre-revocation good
  const seen: string[] = [];
  for (const ms of [2_500, 5_000, 7_500, 10_000, 60_000]) {
    offset = ms;
    seen.push(`${ms}:${(await checker.check(victim.x509, pki.ca.x509)).status}`);
  }
  t.notOk(seen.some((s) => s.endsWith(':good')), `a revoked device's pre-revocation good is re-trusted: ${seen.join(' ')}`);
});
