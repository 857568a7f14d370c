// Revocation end to end through the proxy, with peers nobody here wrote: a CRL made by
// `openssl ca -gencrl` and an `openssl ocsp` responder. Good certificates pass, revoked ones are
// refused in every mode that checks that source, unknown/faulty answers fail closed (or open when
// configured), and an open keep-alive connection of a certificate revoked later is closed.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import { createOpensslPki, type Issued } from '../fixtures/openssl-pki.js';
import { sidecarPkiFor } from '../fixtures/sidecar-pki.js';
import { freePort } from '../fixtures/net.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { startOpensslResponder } from '../fixtures/openssl-responder.js';

const pki = await createOpensslPki();
const echo = await startEchoUpstream();
const ocspPort = await freePort();
const aia = [`http://127.0.0.1:${ocspPort}/`];
const good = await pki.issue('good', { ocsp: aia });
const revoked = await pki.issue('revoked', { ocsp: aia });
await pki.revoke(revoked);
const stray = await pki.issue('stray', { ocsp: aia, outsideDatabase: true, serial: '5EED' }); // OCSP: unknown
const crlFile = await pki.genCrl('crl');
const responder = await startOpensslResponder(pki, ocspPort, pki.ca);

const { files: sidecarPki, serverRootPem } = await sidecarPkiFor(pki);

t.teardown(async () => {
  await responder.stop();
  await echo.close();
  await pki.cleanup();
});

const as = (c: Issued) => ({ cert: readFileSync(c.certPath, 'utf8'), key: readFileSync(c.keyPath, 'utf8') });
const get = (port: number, c: Issued) => call({ port, ca: serverRootPem, ...as(c) });

const modes: Array<{ mode: string; crl: boolean; ocsp: boolean }> = [
  { mode: 'crl', crl: true, ocsp: false },
  { mode: 'ocsp', crl: false, ocsp: true },
  { mode: 'crl-then-ocsp', crl: true, ocsp: true },
  { mode: 'ocsp-then-crl', crl: true, ocsp: true },
];

for (const m of modes) {
  t.test(`mode ${m.mode}`, async (t) => {
    const sc = await startTestSidecar(sidecarPki, echo.url, {
      clientAuth: { failureMode: 'http' },
      revocation: { mode: m.mode, crl: { files: [crlFile], fetchDistributionPoints: false } },
    });
    t.teardown(() => sc.close());
    const before = echo.requests();
    const ok = await get(sc.port, good);
    t.equal(ok.status, 200, 'good passes');
    t.equal(ok.json?.headers['x-device-id'], 'good');
    const no = await get(sc.port, revoked);
    t.equal(no.status, 403);
    t.same(no.json, { error: 'client_certificate_rejected', reason: 'revoked' }, 'revoked is refused');
    t.equal(echo.requests(), before + 1, 'only the good request reached the upstream');
    const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    t.match(metrics, /mtls_revocation_checks_total\{method="(crl|ocsp)",status="revoked",cache="(hit|miss)"\} 1/);
    t.match(metrics, /mtls_handshakes_total\{result="rejected",reason="revoked",tls_version="TLSv1\.3"\} 1/);
  });
}

t.test('unknown: fail-closed refuses, fail-open passes and counts it', async (t) => {
  // `stray` was signed outside the CA database: the CRL does not list it, OCSP says unknown.
  const closed = await startTestSidecar(sidecarPki, echo.url, { clientAuth: { failureMode: 'http' }, revocation: { mode: 'ocsp' } });
  t.teardown(() => closed.close());
  t.same((await get(closed.port, stray)).json, { error: 'client_certificate_rejected', reason: 'revocation_unknown' });
  const open = await startTestSidecar(sidecarPki, echo.url, { clientAuth: { failureMode: 'http' }, revocation: { mode: 'ocsp', onUnknown: 'fail-open' } });
  t.teardown(() => open.close());
  t.equal((await get(open.port, stray)).status, 200);
  t.match(await (await fetch(`${open.adminUrl}/metrics`)).text(), /mtls_revocation_checks_total\{method="ocsp",status="unknown",cache="miss"\} 1/);
  t.equal((await get(open.port, revoked)).json?.reason, 'revoked', 'fail-open never lets a revoked certificate through');
});

t.test('faulty responders fail closed, and the sidecar keeps serving others', async (t) => {
  const hang = await startHttpServer(() => new Promise(() => undefined));
  const garbage = await startHttpServer((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/ocsp-response' });
    res.end(Buffer.from('definitely not DER'));
  });
  const error500 = await startHttpServer((_req, _body, res) => {
    res.writeHead(500);
    res.end();
  });
  t.teardown(async () => {
    await hang.close();
    await garbage.close();
    await error500.close();
  });
  for (const [name, server] of [['hangs', hang], ['garbage', garbage], ['HTTP 500', error500]] as const) {
    const sc = await startTestSidecar(sidecarPki, echo.url, {
      clientAuth: { failureMode: 'http' },
      revocation: { mode: 'ocsp-then-crl', ocsp: { overrideUrl: server.url, timeoutMs: 300 }, crl: { files: [] } },
    });
    const res = await get(sc.port, good);
    t.equal(res.json?.reason, 'revocation_unknown', `responder ${name}: fail closed`);
    t.ok(sc.logs.some((l) => l.msg === 'OCSP check failed'), `responder ${name}: logged`);
    await sc.close();
  }
  // With the CRL as fallback, a dead responder costs nothing: the CRL answers.
  const fallback = await startTestSidecar(sidecarPki, echo.url, {
    clientAuth: { failureMode: 'http' },
    revocation: { mode: 'ocsp-then-crl', ocsp: { overrideUrl: hang.url, timeoutMs: 300 }, crl: { files: [crlFile] } },
  });
  t.teardown(() => fallback.close());
  t.equal((await get(fallback.port, good)).status, 200, 'OCSP hangs, CRL says good');
  t.equal((await get(fallback.port, revoked)).json?.reason, 'revoked', 'OCSP hangs, CRL says revoked');
});

t.test('an open keep-alive connection is closed once its certificate is revoked (new CRL)', async (t) => {
  const victim = await pki.issue('long-lived', { ocsp: aia });
  const liveCrl = await pki.genCrl('live-crl');
  const sc = await startTestSidecar(sidecarPki, echo.url, {
    revocation: { mode: 'crl', crl: { files: [liveCrl], filePollIntervalSeconds: 1, refreshIntervalSeconds: 1, fetchDistributionPoints: false } },
  });
  t.teardown(() => sc.close());
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: serverRootPem, ...as(victim) });
  t.teardown(() => agent.destroy());
  const socketClosed = new Promise<number>((resolve) => {
    https
      .get({ host: '127.0.0.1', port: sc.port, servername: 'localhost', path: '/first', agent }, (res) => {
        res.resume();
        res.socket.once('close', () => resolve(Date.now()));
      })
      .end();
  });
  await new Promise((r) => setTimeout(r, 300));
  await pki.revoke(victim);
  await pki.genCrl('live-crl'); // rewrites the same file, as a CA publishing job would
  const revokedAt = Date.now();
  const closedAt = await Promise.race([socketClosed, new Promise<number>((r) => setTimeout(() => r(0), 10_000))]);
  t.ok(closedAt > 0, 'the open connection was closed');
  t.ok(closedAt - revokedAt < 3_000, `closed ${closedAt - revokedAt} ms after the CRL was published (poll interval 1 s)`);
  t.ok(sc.logs.some((l) => l.event === 'revoked_connections_closed'), 'logged');
  t.match(await sc.sidecar.metrics.registry.getSingleMetricAsString('mtls_connections_closed_total'), /mtls_connections_closed_total\{reason="revoked"\} 1/, 'counted');
  const again = await get(sc.port, victim);
  t.ok(again.error, 'and a new connection is refused');
});

// 40 requests of a revoked client, all sent while its OCSP answer is still on its way (each on its
// own connection): each is logged and counted as the refusal it is, never as a 2xx. (Once, 8 of
// 40 were logged "status":200 and counted 2xx although the upstream received none.)
for (const failureMode of ['reject', 'http'] as const) {
  t.test(`failureMode ${failureMode}: a revoked client's requests are counted as refusals`, async (t) => {
    const sc = await startTestSidecar(sidecarPki, echo.url, { clientAuth: { failureMode }, revocation: { mode: 'ocsp' } });
    t.teardown(() => sc.close());
    const before = echo.requests();
    const results = await Promise.all(Array.from({ length: 40 }, () => get(sc.port, revoked)));
    t.equal(echo.requests(), before, 'the upstream received none');
    if (failureMode === 'http') t.same(results.map((r) => r.status), Array(40).fill(403), 'each answered 403');
    else t.ok(results.every((r) => r.status === undefined && r.error), 'each connection closed without an answer');
    await new Promise((r) => setTimeout(r, 200)); // the last close events
    const access = sc.logs.filter((l) => l.event === 'access');
    t.same(access.filter((l) => l.status !== 403), [], 'every access line says 403');
    const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    t.notMatch(metrics, /mtls_requests_total\{[^}]*status_class="2xx"[^}]*\} [1-9]/, 'no 2xx counted');
    const refused = Number(/mtls_requests_total\{[^}]*status_class="4xx"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    t.equal(refused, access.length, `each access line is counted as a 4xx (${refused})`);
    if (failureMode === 'http') t.equal(refused, 40);
  });
}
