// Certificates rotated the way Kubernetes does it (a `..data` symlink swap in a secret volume)
// while a load generator keeps sending requests: zero failed requests, new handshakes see the new
// server certificate, broken material is refused while the old keeps serving, and a CA bundle
// change takes effect for new and resumed connections alike.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { generateKey, issueCertificate } from '../../src/pki/index.js';
import { call } from '../fixtures/client.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
const client = await pki.client({ deviceId: 'under-load' });
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

/** A secret volume as the kubelet lays it out: files are links into `..data`, a link to a dated dir. */
function secretVolume(name: string) {
  const dir = join(pki.dir, name);
  mkdirSync(dir);
  let version = 0;
  const publish = (files: Record<string, string>) => {
    const stamp = `..${Date.now()}_${++version}`;
    mkdirSync(join(dir, stamp));
    for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, stamp, f), text);
    symlinkSync(stamp, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data')); // atomic swap, as the kubelet does
    if (version === 1) for (const f of Object.keys(files)) symlinkSync(join('..data', f), join(dir, f));
  };
  return { dir, publish };
}

async function serverCert(serial: string) {
  const key = await generateKey('p256');
  const cert = await issueCertificate({ subject: 'CN=localhost', key, issuer: pki.root, serialHex: serial, san: { dns: ['localhost'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'] });
  return { 'tls.crt': cert.pem, 'tls.key': key.privateKeyPem };
}

/** The serial of the certificate the server presents on a fresh handshake. */
function presentedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, agent: false }, (res) => {
      resolve(new X509Certificate((res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!.raw).serialNumber.toLowerCase());
      res.resume();
    });
    req.on('error', reject);
  });
}

t.test('rotation under load: zero failed requests, new handshakes get the new certificate', async (t) => {
  const vol = secretVolume('server-tls');
  vol.publish(await serverCert('01aa'));
  const sc = await startTestSidecar(pki, echo.url, {
    tls: { cert: join(vol.dir, 'tls.crt'), key: join(vol.dir, 'tls.key') },
    reload: { intervalSeconds: 1 },
    log: { level: 'info', accessLog: false },
  });
  t.teardown(() => sc.close());
  t.equal(await presentedSerial(sc.port), '01aa');

  let ok = 0;
  const failures: string[] = [];
  let running = true;
  // Half the workers reuse keep-alive connections, half open a new connection per request.
  const worker = async (keepAlive: boolean) => {
    const agent = new https.Agent({ keepAlive, maxSockets: 1, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, servername: 'localhost' });
    while (running) {
      await new Promise<void>((resolve) => {
        const req = https.get({ host: '127.0.0.1', port: sc.port, path: '/load', agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) ok++;
            else failures.push(`status ${res.statusCode}`);
            resolve();
          });
        });
        req.on('error', (e) => {
          failures.push(String(e));
          resolve();
        });
      });
    }
    agent.destroy();
  };
  const load = [true, true, false, false].map((k) => worker(k));
  const serials = ['02bb', '03cc', '04dd'];
  for (const serial of serials) {
    await new Promise((r) => setTimeout(r, 700));
    vol.publish(await serverCert(serial));
    sc.sidecar.reload('test'); // as SIGHUP would; the 1 s poll would find it too
    t.equal(await presentedSerial(sc.port), serial, `a new handshake presents ${serial}`);
  }
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await Promise.all(load);
  t.same(failures, [], 'no request failed');
  t.ok(ok > 50, `${ok} requests succeeded during ${serials.length} rotations`);
  t.equal(sc.logs.filter((l) => l.event === 'reload' && l.result === 'success').length, serials.length, 'each rotation reloaded once');
});

t.test('the poll alone picks up a rotation (no signal)', async (t) => {
  const vol = secretVolume('server-tls-poll');
  vol.publish(await serverCert('0a01'));
  const sc = await startTestSidecar(pki, echo.url, { tls: { cert: join(vol.dir, 'tls.crt'), key: join(vol.dir, 'tls.key') }, reload: { intervalSeconds: 1 } });
  t.teardown(() => sc.close());
  vol.publish(await serverCert('0a02'));
  await new Promise((r) => setTimeout(r, 1_600));
  t.equal(await presentedSerial(sc.port), '0a02');
});

t.test('broken material keeps the old serving, is counted, and a fix is picked up', async (t) => {
  const vol = secretVolume('server-tls-broken');
  const good = await serverCert('0b01');
  vol.publish(good);
  const sc = await startTestSidecar(pki, echo.url, { tls: { cert: join(vol.dir, 'tls.crt'), key: join(vol.dir, 'tls.key') }, reload: { intervalSeconds: 0 } });
  t.teardown(() => sc.close());
  const other = await serverCert('0b02');
  const expiredKey = await generateKey('p256');
  const expired = await issueCertificate({ subject: 'CN=localhost', key: expiredKey, issuer: pki.root, notBefore: new Date(Date.now() - 2e9), notAfter: new Date(Date.now() - 1e9) });
  const broken: Array<[string, Record<string, string>, RegExp, string]> = [
    ['key does not match', { 'tls.crt': other['tls.crt'], 'tls.key': good['tls.key'] }, /does not match/, 'tls.key'],
    ['unparseable certificate', { 'tls.crt': 'garbage', 'tls.key': good['tls.key'] }, /no PEM CERTIFICATE/, 'tls.cert'],
    ['expired certificate', { 'tls.crt': expired.pem, 'tls.key': expiredKey.privateKeyPem }, /expired/, 'tls.cert'],
  ];
  for (const [name, files, why, fault] of broken) {
    vol.publish(files);
    sc.sidecar.reload('test');
    t.equal(await presentedSerial(sc.port), '0b01', `${name}: the old certificate still serves`);
    const line = sc.logs.filter((l) => l.event === 'reload').at(-1)!;
    t.equal(line.result, 'failure', `${name}: logged as a failure`);
    t.match(String(line.error), why, `${name}: says why`);
    t.equal(line.fault, fault, `${name}: names the config field at fault`);
  }
  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  t.match(metrics, /mtls_reloads_total\{result="failure"\} 3/);
  vol.publish(other);
  sc.sidecar.reload('test');
  t.equal(await presentedSerial(sc.port), '0b02', 'the fixed material is used');
  t.match(await (await fetch(`${sc.adminUrl}/metrics`)).text(), /mtls_reloads_total\{result="success"\} 1/);
});

t.test('a CA bundle change: a new root is trusted at once; a removed root is refused, resumed sessions included', async (t) => {
  const vol = secretVolume('client-ca');
  vol.publish({ 'ca.crt': pki.rootPem });
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [join(vol.dir, 'ca.crt')], failureMode: 'http' }, reload: { intervalSeconds: 0 } });
  t.teardown(() => sc.close());
  const foreigner = await pki.client({ issuer: 'foreign', deviceId: 'new-fleet' });
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: foreigner.chainPem, key: foreigner.keyPem })).json?.reason, 'unknown_ca');
  vol.publish({ 'ca.crt': pki.rootPem + pki.foreignRootPem });
  sc.sidecar.reload('test');
  const first = await call({ port: sc.port, ca: pki.rootPem, cert: foreigner.chainPem, key: foreigner.keyPem });
  t.equal(first.json?.headers?.['x-device-id'], 'new-fleet', 'the added root is trusted');
  vol.publish({ 'ca.crt': pki.rootPem });
  sc.sidecar.reload('test');
  const resumed = await call({ port: sc.port, ca: pki.rootPem, session: first.session });
  t.equal(resumed.status, 403, `a session from the removed root is refused (resumed: ${resumed.reused})`);
  t.equal(resumed.json?.reason, 'unknown_ca');
  const fresh = await call({ port: sc.port, ca: pki.rootPem, cert: foreigner.chainPem, key: foreigner.keyPem });
  t.equal(fresh.json?.reason, 'unknown_ca');
});
