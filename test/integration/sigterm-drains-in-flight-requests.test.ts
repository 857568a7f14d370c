// SIGTERM to the real process: readiness turns false at once, no new connection is accepted,
// the in-flight requests (a slow one, a streaming upload) complete, and the process exits 0.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { call } from '../fixtures/client.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { createTestPki } from '../fixtures/pki.js';

const pki = await createTestPki();
const client = await pki.client();
const upstream = http.createServer((req, res) => {
  let bytes = 0;
  req.on('data', (d: Buffer) => (bytes += d.length));
  req.on('end', () => setTimeout(() => res.end(JSON.stringify({ url: req.url, bytes })), req.url === '/slow' ? 1_500 : 0));
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
t.teardown(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  pki.cleanup();
});

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}`, async (t) => {
    const sc = await startCliSidecar(pki, upstreamUrl, { workers, shutdown: { timeoutSeconds: 10 }, log: { level: 'info' } });
    t.teardown(() => sc.child.kill('SIGKILL'));
    await waitReady(sc.adminUrl);
    const opts = { port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem };
    const slow = call({ ...opts, path: '/slow' });
    // An upload still streaming its body when the signal arrives.
    const upload = new Promise<number | undefined>((resolve) => {
      const req = https.request({ host: '127.0.0.1', port: sc.port, servername: 'localhost', method: 'PUT', path: '/upload', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, agent: false, headers: { 'content-length': 4 * 65536 } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', () => resolve(undefined));
      let sent = 0;
      const tick = setInterval(() => {
        req.write(Buffer.alloc(65536));
        if (++sent === 4) {
          clearInterval(tick);
          req.end();
        }
      }, 200);
    });
    await new Promise((r) => setTimeout(r, 300));
    sc.child.kill('SIGTERM');
    await sc.waitForLog((l) => l.event === 'draining');
    const ready = await fetch(`${sc.adminUrl}/readyz`).then((r) => r.status, () => 'closed');
    t.ok(ready === 503 || ready === 'closed', `readiness is false while draining (${ready})`);
    const late = await call({ ...opts, path: '/late' });
    t.ok(late.error, `a new connection after SIGTERM is refused (${late.error?.code})`);
    const slowRes = await slow;
    t.equal(slowRes.status, 200, 'the in-flight slow request completed');
    t.equal(slowRes.json?.url, '/slow');
    t.equal(await upload, 200, 'the in-flight upload completed');
    t.equal(await sc.exited, 0, 'exit code 0');
  });
}

async function waitReady(adminUrl: string) {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${adminUrl}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('never ready');
}
