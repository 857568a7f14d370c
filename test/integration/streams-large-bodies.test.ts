// Request and response bodies stream through with bounded memory (a 1 GB upload must never be
// buffered); here 256 MiB each way, with the process RSS sampled throughout.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const SIZE = 256 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const pki = await createTestPki();
const client = await pki.client();
const echo = await startEchoUpstream();
// A download upstream that streams SIZE bytes.
const download = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE });
  Readable.from(chunks(SIZE)).pipe(res);
});
await new Promise<void>((r) => download.listen(0, '127.0.0.1', r));
t.teardown(async () => {
  await echo.close();
  download.closeAllConnections();
  await new Promise((r) => download.close(r));
  pki.cleanup();
});

function* chunks(total: number) {
  for (let sent = 0; sent < total; sent += CHUNK.length) yield CHUNK;
}

function sampleRss() {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
  return () => {
    clearInterval(timer);
    return { base, peak, grownMiB: (peak - base) / 1048576 };
  };
}

const expectedHash = (() => {
  const h = createHash('sha256');
  for (const c of chunks(SIZE)) h.update(c);
  return h.digest('hex');
})();

t.test('256 MiB upload streams through', async (t) => {
  const sc = await startTestSidecar(pki, echo.url, { log: { level: 'warn' } });
  t.teardown(() => sc.close());
  global.gc?.();
  const stop = sampleRss();
  const reply = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: sc.port, servername: 'localhost', method: 'PUT', path: '/upload', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, agent: false, headers: { 'content-length': SIZE } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on('error', reject);
    Readable.from(chunks(SIZE)).pipe(req);
  });
  const mem = stop();
  t.equal(reply.status, 200);
  const echoed = JSON.parse(reply.body) as { bodyBytes: number; bodySha256: string };
  t.equal(echoed.bodyBytes, SIZE, 'every byte arrived');
  t.equal(echoed.bodySha256, expectedHash, 'intact');
  t.ok(mem.grownMiB < 128, `RSS grew ${mem.grownMiB.toFixed(1)} MiB for a ${SIZE / 1048576} MiB body`);
});

t.test('256 MiB download streams through', async (t) => {
  const url = `http://127.0.0.1:${(download.address() as AddressInfo).port}`;
  const sc = await startTestSidecar(pki, url, { log: { level: 'warn' } });
  t.teardown(() => sc.close());
  const stop = sampleRss();
  const got = await new Promise<{ bytes: number; hash: string }>((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port: sc.port, servername: 'localhost', path: '/big', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, agent: false }, (res) => {
        const h = createHash('sha256');
        let bytes = 0;
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          h.update(d);
        });
        res.on('end', () => resolve({ bytes, hash: h.digest('hex') }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  const mem = stop();
  t.equal(got.bytes, SIZE);
  t.equal(got.hash, expectedHash);
  t.ok(mem.grownMiB < 128, `RSS grew ${mem.grownMiB.toFixed(1)} MiB`);
});
