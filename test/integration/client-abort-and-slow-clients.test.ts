// Clients that abort mid-body, trickle their headers (slowloris) or send oversized headers: each is
// bounded, never crashes the process, leaks no upstream socket, and others keep being served.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { call } from '../fixtures/client.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const client = await pki.client();
// An upstream that counts open sockets and reads bodies slowly enough for an abort to land mid-way.
const open = new Set<Socket>();
const inFlight = new Set<http.IncomingMessage>();
let aborted = 0;
const abortedSockets = new Set<Socket>();
const upstream = http.createServer((req, res) => {
  inFlight.add(req);
  req.on('close', () => inFlight.delete(req));
  req.on('aborted', () => {
    aborted++;
    abortedSockets.add(req.socket);
  });
  req.on('error', () => undefined);
  req.resume();
  req.on('end', () => res.end('done'));
});
upstream.on('connection', (s) => {
  open.add(s);
  s.on('close', () => open.delete(s));
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const sc = await startTestSidecar(pki, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, {
  limits: { headersTimeoutMs: 1_000, maxHeaderBytes: 8_192 },
  log: { level: 'warn' },
});
t.teardown(async () => {
  await sc.close();
  for (const s of open) s.destroy();
  await new Promise((r) => upstream.close(r));
  pki.cleanup();
});

function connect(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: sc.port, servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem }, () => resolve(s));
    s.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('clients aborting mid-body: no crash, no leaked upstream socket', async (t) => {
  for (let i = 0; i < 20; i++) {
    const s = await connect();
    s.on('error', () => undefined);
    s.write(`PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n`);
    s.write(Buffer.alloc(256 * 1024, 1));
    await sleep(20);
    s.destroy();
  }
  await sleep(500);
  t.equal([...abortedSockets].filter((s) => !s.destroyed).length, 0, 'every upstream socket that carried an aborted request was closed');
  t.equal(inFlight.size, 0, 'no upstream request is left open');
  // (Idle keep-alive connections of the pool may remain; they carried no aborted request.)
  t.ok(aborted > 0, 'the upstream saw the aborts');
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, method: 'POST', body: 'x' });
  t.equal(res.body, 'done', 'still serving');
});

t.test('a client that leaves while waiting for the response cancels the upstream request', async (t) => {
  const s = await connect();
  s.on('error', () => undefined);
  // Content-Length larger than sent: the upstream waits for the rest; the client leaves.
  s.write('POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab');
  await sleep(200);
  t.equal(inFlight.size, 1, 'the upstream request is open');
  s.destroy();
  await sleep(300);
  t.equal(inFlight.size, 0, 'and is closed when the client goes');
});

t.test('slowloris: headers trickled slower than headersTimeoutMs are cut off', async (t) => {
  const s = await connect();
  const closed = new Promise<number>((resolve) => s.on('close', () => resolve(Date.now())));
  s.on('error', () => undefined);
  const started = Date.now();
  s.write('GET / HTTP/1.1\r\nHost: x\r\n');
  const timer = setInterval(() => s.writable && s.write('X-A: b\r\n'), 200);
  const at = await Promise.race([closed, sleep(8_000).then(() => 0)]);
  clearInterval(timer);
  t.ok(at > 0, 'the connection was closed');
  t.ok(at - started < 4_000, `closed after ${at - started} ms (headersTimeoutMs 1000)`);
});

t.test('oversized headers get 431 and never reach the upstream', async (t) => {
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, headers: { 'x-big': 'a'.repeat(10_000) } });
  t.equal(res.status, 431);
});

t.test('garbage after the handshake gets 400, and the process keeps serving', async (t) => {
  const s = await connect();
  const text = await new Promise<string>((resolve) => {
    let buf = '';
    s.on('data', (d: Buffer) => (buf += d));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
    s.write('\x00\x01\x02 NOT HTTP\r\n\r\n');
  });
  t.match(text, /^HTTP\/1\.1 400/);
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  t.equal(res.status, 200);
});
