// The device CA's revocation feed, end to end: a sidecar subscribed to it closes a revoked
// device's keep-alive connection and refuses its new connections within a second of the revoke,
// while CRL polling is set to an hour (so only the feed can be that fast). Then its faults: a
// forged CRL on the feed is refused, a stream cut while a revocation happens is resumed from the
// cursor and catches up, a CA restart is survived; /readyz and the metrics say when it is down.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import t from 'tap';
import { loadCaConfigFile } from '../../src/config/index.js';
import { startEchoUpstream } from '../../src/dev/index.js';
import { enrollDevice, type DeviceEnrollment } from '../../src/device/index.js';
import { runCa } from '../../src/enroll/index.js';
import { issueCrl } from '../../src/pki/index.js';
import { mint } from '../fixtures/chain-corpus.js';
import { call } from '../fixtures/client.js';
import { startTestCa } from '../fixtures/device-ca.js';
import { openKeepAlive, sleep } from '../fixtures/keep-alive.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import type { TestPki } from '../fixtures/pki.js';

const ca = await startTestCa((c) => {
  c.publish.feed = { heartbeatSeconds: 1 };
});
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  await ca.close();
});
const feedUrl = `${ca.ca.publishUrl}/v1/crl/feed`;
const pki = { dir: ca.dir, serverCertFile: join(ca.dir, 'server.pem'), serverKeyFile: join(ca.dir, 'server.key'), caBundleFile: ca.caBundleFiles } as unknown as TestPki;

async function enroll(deviceId: string): Promise<DeviceEnrollment & { cert: string; key: string }> {
  const code = await ca.code(deviceId);
  const d = await enrollDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, deviceId, code, keyAlgorithm: 'p256', outDir: join(ca.dir, deviceId) });
  return { ...d, cert: readFileSync(d.certFile, 'utf8'), key: readFileSync(d.keyFile, 'utf8') };
}

/** A sidecar that learns revocations from `url` only: polling once an hour, no OCSP. */
function sidecarOn(url: string) {
  return startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: ca.caBundleFiles, failureMode: 'http' },
    revocation: {
      mode: 'crl',
      crl: { urls: [`${ca.ca.publishUrl}/crl`], fetchDistributionPoints: false, refreshIntervalSeconds: 3600 },
      feed: { url, reconnectMinMs: 100, reconnectMaxMs: 500, idleTimeoutSeconds: 3 },
    },
  });
}

const metric = async (adminUrl: string, name: string) => {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
};
const readyz = async (adminUrl: string) => (await fetch(`${adminUrl}/readyz`)).json() as Promise<{ ready: boolean; degraded?: Record<string, string> }>;

async function until(cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(20);
  }
  return false;
}

t.test('a revocation closes the open connection and refuses new ones within a second', async (t) => {
  const sc = await sidecarOn(feedUrl);
  t.teardown(() => sc.close());
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_connected')) === 1, 5_000), 'the feed connects');
  t.equal((await readyz(sc.adminUrl!)).degraded, undefined, '/readyz notes nothing while the feed is up');
  const phone = await enroll('feed-phone');
  const conn = await openKeepAlive({ port: sc.port, ca: ca.rootPem, cert: phone.cert, key: phone.key });
  t.equal((await conn.get('/')).status, 200, 'the device is served');

  // Keep the connection busy, as an app would, while the CA revokes the device.
  let closedAt = 0;
  let answeredAfterClose = 0;
  conn.socket.once('close', () => (closedAt = performance.now()));
  const hammering = (async () => {
    for (;;) {
      const r = await conn.get('/');
      if (r.status === undefined) return;
      if (closedAt) answeredAfterClose++;
    }
  })();
  await sleep(100);
  const revokedAt = performance.now();
  const revoke = await ca.admin('POST', '/v1/admin/revoke', { deviceId: 'feed-phone', reason: 'keyCompromise' });
  t.equal(revoke.status, 200);
  t.ok(await until(() => closedAt > 0, 5_000), 'the open connection is closed');
  await hammering;
  const hitsAtClose = echo.requests();
  const ms = Math.round(closedAt - revokedAt);
  t.ok(ms < 1_000, `closed ${ms} ms after the revoke call (polling is hourly: only the feed is this fast)`);
  t.equal(answeredAfterClose, 0, 'nothing answered on it after the close');
  const again = await call({ port: sc.port, ca: ca.rootPem, cert: phone.cert, key: phone.key });
  t.equal(again.status, 403);
  t.equal(again.json?.reason, 'revoked', 'a new connection is refused as revoked');
  t.equal(echo.requests(), hitsAtClose, 'the upstream saw no request of the device after the close');
  t.ok((await metric(sc.adminUrl!, 'mtls_revocation_feed_events_total{outcome="applied"}')) >= 2, 'the start-up CRL and the revocation were applied from the feed');
});

/** A feed server of our own, to inject faults: it serves whatever events the test gives it. */
async function fakeFeed(events: () => string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(events());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/feed`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

t.test('a CRL on the feed signed by a look-alike of the CA is refused; the device keeps passing', async (t) => {
  const tablet = await enroll('feed-tablet');
  const issuingName = new x509.X509Certificate(readFileSync(ca.issuingFile, 'utf8')).subject;
  const lookAlike = await mint({ subject: issuingName, ca: true });
  const forged = await issueCrl({ issuer: lookAlike, nextUpdate: new Date(Date.now() + 3_600_000), crlNumber: 999_999n, revoked: [{ serialHex: tablet.serial }] });
  const fake = await fakeFeed(() => `id: 999999\nevent: crl\ndata: ${forged.der.toString('base64')}\n\n`);
  t.teardown(() => fake.close());
  const sc = await sidecarOn(fake.url);
  t.teardown(() => sc.close());
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_events_total{outcome="refused"}')) >= 1, 5_000), 'counted as refused');
  const r = await call({ port: sc.port, ca: ca.rootPem, cert: tablet.cert, key: tablet.key });
  t.equal(r.status, 200, 'the device the forged CRL lists still passes');
  t.ok(sc.logs.some((l) => l.event === 'revocation_feed_refused'), 'logged');
});

t.test('a revocation made while the stream is cut arrives on reconnect (cursor resume); /readyz says the feed was down', async (t) => {
  // A relay between the sidecar and the CA that the test can cut.
  let open = true;
  const upstreams = new Set<http.ClientRequest>();
  const relay = http.createServer((req, res) => {
    if (!open) return void res.socket?.destroy();
    const up = http.get(feedUrl, { headers: { 'last-event-id': req.headers['last-event-id'] ?? '' } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    upstreams.add(up);
    res.once('close', () => up.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => (relay.closeAllConnections(), relay.close(() => r()))));
  const sc = await sidecarOn(`http://127.0.0.1:${(relay.address() as AddressInfo).port}/feed`);
  t.teardown(() => sc.close());
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_connected')) === 1, 5_000), 'connected through the relay');
  const watch = await enroll('feed-watch');
  t.equal((await call({ port: sc.port, ca: ca.rootPem, cert: watch.cert, key: watch.key })).status, 200);

  open = false;
  relay.closeAllConnections();
  for (const up of upstreams) up.destroy();
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_connected')) === 0, 5_000), 'the metric says the feed is down');
  const notes = await readyz(sc.adminUrl!);
  t.equal(notes.ready, true, 'still ready: polling goes on');
  t.match(notes.degraded?.revocationFeed, /revocation feed down since/, '/readyz says the feed is down');
  t.equal((await ca.admin('POST', '/v1/admin/revoke', { deviceId: 'feed-watch' })).status, 200, 'revoked while the stream is cut');
  await sleep(300);
  t.equal((await call({ port: sc.port, ca: ca.rootPem, cert: watch.cert, key: watch.key })).status, 200, 'not known yet: the event was missed');

  open = true;
  t.ok(
    await until(async () => (await call({ port: sc.port, ca: ca.rootPem, cert: watch.cert, key: watch.key })).status === 403, 5_000),
    'after the reconnect the missed revocation is applied (the CA sends the current CRL past the cursor)',
  );
  t.ok(await until(async () => (await readyz(sc.adminUrl!)).degraded === undefined, 5_000), '/readyz clears once reconnected');
});

t.test('the sidecar follows the CA across a restart', async (t) => {
  const sc = await sidecarOn(feedUrl);
  t.teardown(() => sc.close());
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_connected')) === 1, 5_000));
  const laptop = await enroll('feed-laptop');
  await ca.ca.close();
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_connected')) === 0, 5_000), 'sees the CA go');
  // The same store and publish port: what a restarted pod is.
  ca.ca = await runCa(loadCaConfigFile(ca.configFile), { logger: pino({ level: 'silent' }) });
  t.ok(await until(async () => (await metric(sc.adminUrl!, 'mtls_revocation_feed_connected')) === 1, 10_000), 'reconnects to the restarted CA');
  const revokedAt = performance.now();
  t.equal((await ca.admin('POST', '/v1/admin/revoke', { deviceId: 'feed-laptop' })).status, 200);
  t.ok(
    await until(async () => (await call({ port: sc.port, ca: ca.rootPem, cert: laptop.cert, key: laptop.key })).status === 403, 5_000),
    `refused ${Math.round(performance.now() - revokedAt)} ms after a revocation made on the restarted CA`,
  );
});
