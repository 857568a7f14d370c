// Quarantine without revocation: a device named in quarantine.file or added through the admin API
// loses its open connections at once (a keep-alive socket sees the close, an upgraded one too),
// and every new request gets 403 quarantined; other devices are untouched. The admin endpoints
// are off without admin.tokenFile and need the token with it.
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import WebSocket from 'ws';
import { call } from '../fixtures/client.js';
import { openKeepAlive, sleep } from '../fixtures/keep-alive.js';
import { createTestPki } from '../fixtures/pki.js';
import { startRecordingUpstream } from '../fixtures/recording-upstream.js';
import { logLine, startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const upstream = await startRecordingUpstream();
const upstreamUrl = upstream.url;
const TOKEN = 'q'.repeat(40);
const tokenFile = pki.write('admin-token', `${TOKEN}\n`);
const quarantineFile = pki.write('quarantine.txt', '# nobody yet\n');
const sc = await startTestSidecar(pki, upstreamUrl, {
  admin: { tokenFile },
  quarantine: { file: quarantineFile },
  reload: { intervalSeconds: 1 },
});
const bad = await pki.client({ deviceId: 'abusive-1' });
const good = await pki.client({ deviceId: 'fine-1' });
t.teardown(async () => {
  await sc.close();
  await upstream.close();
  pki.cleanup();
});

const keepAlive = (who: { chainPem: string; keyPem: string }) => openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: who.chainPem, key: who.keyPem });
const closed = (socket: import('node:tls').TLSSocket) => new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
/** An admin call; `token` null sends none. */
const admin = (method: string, path: string, token: string | null = TOKEN) =>
  fetch(`${sc.adminUrl}${path}`, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` } });

t.test('a line in quarantine.file closes the device\'s open connections and refuses it', async (t) => {
  const badConn = await keepAlive(bad);
  const goodConn = await keepAlive(good);
  t.teardown(() => {
    badConn.close();
    goodConn.close();
  });
  t.equal((await badConn.get('/')).status, 200);
  const started = Date.now();
  writeFileSync(quarantineFile, `device:${bad.deviceId}\n`);
  await closed(badConn.socket);
  t.ok(Date.now() - started < 3_000, 'closed within the poll interval');
  t.equal((await goodConn.get('/')).status, 200, 'another device keeps its connection');
  const refused = await call({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem });
  t.equal(refused.status, 403);
  t.same(refused.json, { error: 'quarantined', reason: 'this device is quarantined' });
  t.equal(refused.headers?.connection, 'close');
  t.match(await logLine(sc, (l) => l.event === 'quarantine_added'), { connectionsClosed: 1 });
  t.match(await logLine(sc, (l) => l.event === 'access' && l.flags === 'QD'), { status: 403, deviceId: 'abusive-1' });
  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  t.match(metrics, /mtls_connections_closed_total\{reason="quarantined"\} 1/);
  t.match(metrics, /mtls_authorization_denied_total\{route="default",reason="quarantined"\} [1-9]/);
  t.match(metrics, /mtls_quarantine_entries\{source="file"\} 1/);

  writeFileSync(quarantineFile, 'device:abusive-1\nnot an entry\n');
  await sleep(2_200);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem })).status, 403, 'a broken file keeps the previous entries');
  t.match(await logLine(sc, (l) => l.event === 'quarantine_loaded' && l.result === 'failure'), { error: /line 2/ });

  writeFileSync(quarantineFile, '');
  await sleep(2_200);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem })).status, 200, 'lifted when the file drops it');
});

t.test('the admin API needs the token', async (t) => {
  t.equal((await admin('GET', '/quarantine', null)).status, 401);
  t.equal((await admin('PUT', `/quarantine/device/${bad.deviceId}`, 'wrong'.repeat(10))).status, 401);
  t.equal((await admin('PUT', `/quarantine/device/${bad.deviceId}`, `${TOKEN}x`)).status, 401);
  t.equal((await admin('GET', '/quarantine')).status, 200);
  t.equal((await admin('PUT', '/quarantine/host/x')).status, 400, 'an unknown kind names the kinds');
  t.equal((await admin('POST', '/quarantine')).status, 405);
  t.equal((await admin('POST', '/metrics', null)).status, 405, 'the rest of the listener stays read-only');
});

t.test('an API entry closes open connections (an upgraded one too) at once; removing it lifts it', async (t) => {
  const badConn = await keepAlive(bad);
  const ws = new WebSocket(`wss://127.0.0.1:${sc.port}/ws`, { ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem });
  await new Promise((r) => ws.once('message', r));
  const wsClosed = new Promise((r) => ws.once('close', r));
  t.equal((await badConn.get('/')).status, 200);
  const put = await admin('PUT', `/quarantine/device/${encodeURIComponent(bad.deviceId)}`);
  t.equal(put.status, 200);
  t.same(await put.json(), { entry: { kind: 'device', value: 'abusive-1' }, changed: true });
  await closed(badConn.socket);
  await wsClosed;
  t.pass('the keep-alive socket and the WebSocket saw the close');
  t.same(await (await admin('GET', '/quarantine')).json(), { file: [], api: [{ kind: 'device', value: 'abusive-1' }] });
  const ws2 = new WebSocket(`wss://127.0.0.1:${sc.port}/ws`, { ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem });
  t.equal(await new Promise((r) => ws2.once('unexpected-response', (_q, res) => r(res.statusCode))), 403, 'a new upgrade is refused');
  t.equal((await admin('DELETE', '/quarantine/device/abusive-1')).status, 200);
  t.equal((await admin('DELETE', '/quarantine/device/abusive-1')).status, 404, 'already gone');
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem })).status, 200);
});

t.test('fingerprint and serial entries', async (t) => {
  const fp = new X509Certificate(bad.certPem).fingerprint256;
  t.equal((await admin('PUT', `/quarantine/fingerprint/${encodeURIComponent(fp)}`)).status, 200);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem })).status, 403);
  t.equal((await admin('DELETE', `/quarantine/fingerprint/${fp.replace(/:/g, '').toLowerCase()}`)).status, 200, 'any spelling of the same fingerprint');
  const serial = new X509Certificate(good.certPem).serialNumber;
  t.equal((await admin('PUT', `/quarantine/serial/${serial.toLowerCase()}`)).status, 200);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: good.chainPem, key: good.keyPem })).status, 403);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem })).status, 200);
  t.equal((await admin('DELETE', `/quarantine/serial/${serial}`)).status, 200);
});

t.test('without admin.tokenFile the endpoints are off', async (t) => {
  const plain = await startTestSidecar(pki, upstreamUrl);
  t.teardown(() => plain.close());
  const r = await fetch(`${plain.adminUrl}/quarantine/device/x`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(r.status, 404);
  t.match(await r.json(), { reason: /admin\.tokenFile/ });
});
