// Under `mode: ocsp`, a certificate revoked in an `openssl ca` database — answered by `openssl
// ocsp` (nextUpdate 10 minutes away) — is refused within `ocsp.maxGoodAgeSeconds` on every way a
// device reaches the sidecar: a new connection, its open keep-alive connection, a resumed TLS
// session; and no request it sends after the sidecar learned the revocation reaches the upstream.
// Before maxGoodAgeSeconds, the cached "good" lived until nextUpdate: none of the three was refused.
//
// Each answer is made by `openssl ocsp -reqin` (a fresh process, so it reads the current index);
// openssl's own HTTP server is not used here: version 3.0 keeps an HTTP/1.1 connection open for its
// next request, one connection at a time, and when the client then closes that idle connection it
// spins on it forever (read, alarm, stat; the socket in CLOSE_WAIT; openssl issues 23934, 31129),
// which a sidecar's pooled connection does within seconds.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/index.js';
import { call } from '../fixtures/client.js';
import { openKeepAlive } from '../fixtures/keep-alive.js';
import { probeRevocation, revocationApplied } from '../fixtures/revocation-probe.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import { createOpensslPki, type Issued } from '../fixtures/openssl-pki.js';
import { sidecarPkiFor } from '../fixtures/sidecar-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';

const MAX_GOOD_AGE_S = 2;
const pki = await createOpensslPki();
const echo = await startEchoUpstream();
const responder = await startHttpServer(async (_req, body, res) => {
  res.writeHead(200, { 'content-type': 'application/ocsp-response' });
  res.end(await pki.respond(body, pki.ca, { nmin: 10 }));
});
const aia = [`${responder.url}/`];
const victims = [await pki.issue('victim-reject', { ocsp: aia }), await pki.issue('victim-http', { ocsp: aia })];
const keepAliveOnly = await pki.issue('victim-keep-alive-only', { ocsp: aia });
const bystander = await pki.issue('bystander', { ocsp: aia });
const { files: sidecarPki, serverRootPem } = await sidecarPkiFor(pki);

const as = (c: Issued) => ({ cert: readFileSync(c.certPath, 'utf8'), key: readFileSync(c.keyPath, 'utf8') });

t.teardown(async () => {
  await responder.close();
  await echo.close();
  await pki.cleanup();
});

for (const [i, failureMode] of (['reject', 'http'] as const).entries()) {
  t.test(`failureMode ${failureMode}: revoked at the responder → refused within maxGoodAgeSeconds (${MAX_GOOD_AGE_S} s), every way`, async (t) => {
    const victim = victims[i]!;
    const sc = await startTestSidecar(sidecarPki, echo.url, { clientAuth: { failureMode }, revocation: { mode: 'ocsp', ocsp: { maxGoodAgeSeconds: MAX_GOOD_AGE_S } } });
    t.teardown(() => sc.close());
    // A device of the same CA, connected throughout: it keeps passing, its connection stays open.
    const other = await openKeepAlive({ port: sc.port, ca: serverRootPem, ...as(bystander) });
    t.teardown(() => other.close());
    t.equal((await other.get('/bystander')).status, 200);

    const r = await probeRevocation({
      port: sc.port,
      ca: serverRootPem,
      ...as(victim),
      upstream: echo,
      applied: revocationApplied(sc.logs),
      revoke: () => pki.revoke(victim),
      limitMs: 10_000,
    });
    t.comment(`revoke → refused: new ${r.newConnection.refusedAfterMs} ms, keep-alive ${r.keepAlive.refusedAfterMs} ms, resumed ${r.resumed.refusedAfterMs} ms; ${r.reachedUpstream} requests reached the upstream meanwhile`);
    const bound = MAX_GOOD_AGE_S * 1000 + 1_000; // maxGoodAge, plus an exchange and the probe's 50 ms pace on a busy machine
    for (const [way, w] of [['a new connection', r.newConnection], ['the open keep-alive connection', r.keepAlive], ['a resumed session', r.resumed]] as const) {
      t.ok(w.refusedAfterMs >= 0 && w.refusedAfterMs < bound, `${way}: refused ${w.refusedAfterMs} ms after the revocation (${w.how})`);
    }
    t.ok(r.everyAttemptResumed, 'every resumption attempt resumed the session');
    if (failureMode === 'http') {
      // The first refusal may be a connection accepted a moment earlier and closed as revoked.
      t.equal((await call({ port: sc.port, ca: serverRootPem, ...as(victim) })).json?.reason, 'revoked', 'a new connection is refused as revoked');
      const again = await call({ port: sc.port, ca: serverRootPem, session: r.session });
      t.equal(again.reused, true);
      t.equal(again.json?.reason, 'revoked', 'a resumed session is refused as revoked');
    }
    t.same(r.sentAfterApplied, [], 'nothing sent after the sidecar learned the revocation reached the upstream');
    t.ok(sc.logs.some((l) => l.event === 'revoked_connections_closed'), 'the open connection was closed as revoked');

    t.equal((await other.get('/bystander')).status, 200, 'the other device’s open connection is untouched');
    t.equal((await call({ port: sc.port, ca: serverRootPem, ...as(bystander) })).status, 200, 'and it still connects');
  });
}

// Nothing but one open connection: no new handshake asks about the certificate, so only the
// sidecar's own re-checks of open connections (every maxGoodAge / 4) can learn the revocation.
t.test('an open keep-alive connection alone is closed within maxGoodAgeSeconds', async (t) => {
  const sc = await startTestSidecar(sidecarPki, echo.url, { revocation: { mode: 'ocsp', ocsp: { maxGoodAgeSeconds: MAX_GOOD_AGE_S } } });
  t.teardown(() => sc.close());
  const ka = await openKeepAlive({ port: sc.port, ca: serverRootPem, ...as(keepAliveOnly) });
  t.teardown(() => ka.close());
  t.equal((await ka.get('/before')).status, 200);
  const askedBefore = responder.requests();
  await pki.revoke(keepAliveOnly);
  const start = Date.now();
  let last: { status?: number; error?: string } = {};
  while (Date.now() - start < 10_000) {
    last = await ka.get('/meanwhile');
    if (last.status !== 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const took = Date.now() - start;
  t.equal(last.error, 'closed', 'the connection was closed');
  t.ok(took < MAX_GOOD_AGE_S * 1000 + 1_000, `${took} ms after the revocation`);
  t.ok(sc.logs.some((l) => l.event === 'revoked_connections_closed'), 'logged as revoked');
  // Re-asked from 75 % of maxGoodAge, single flight: about one request per 1.5 s, not one per re-check (0.5 s).
  t.ok(responder.requests() - askedBefore <= 2, `the responder was asked ${responder.requests() - askedBefore} times meanwhile`);
});
