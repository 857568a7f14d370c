// Upstream down, slow or resetting: the client gets 502/504 with a JSON body, a log line is
// written, and the sidecar keeps serving.
import { spawn } from 'node:child_process';
import net from 'node:net';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { createTestPki } from '../fixtures/pki.js';
import { logLine, startTestSidecar } from '../fixtures/sidecar.js';
import { freePort } from '../fixtures/net.js';

const pki = await createTestPki();
const client = await pki.client();
t.teardown(() => pki.cleanup());


function get(port: number, path = '/') {
  return call({ port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, path });
}

t.test('refused → 502 upstream_unavailable/refused', async (t) => {
  const sc = await startTestSidecar(pki, `http://127.0.0.1:${await freePort()}`);
  t.teardown(() => sc.close());
  const res = await get(sc.port);
  t.equal(res.status, 502);
  t.same(res.json, { error: 'upstream_unavailable', reason: 'refused' });
  t.ok(sc.logs.some((l) => l.event === 'upstream_error' && l.kind === 'refused'), 'logged');
});

t.test('silent upstream → 504 after responseTimeoutMs; reset → 502; the sidecar keeps serving', async (t) => {
  const upstream = await startHttpServer((req, _body, res) => {
    if (req.url === '/slow') return; // never answers
    if (req.url === '/reset') return void req.socket.destroy();
    if (req.url === '/half') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 50);
      return;
    }
    res.end('fine');
  });
  const sc = await startTestSidecar(pki, upstream.url, { upstream: { responseTimeoutMs: 300 } });
  t.teardown(async () => {
    await sc.close();
    await upstream.close();
  });

  const started = Date.now();
  const slow = await get(sc.port, '/slow');
  t.equal(slow.status, 504);
  t.same(slow.json, { error: 'upstream_timeout', reason: 'timeout' });
  t.ok(Date.now() - started < 5_000, 'answered promptly after the timeout');

  const reset = await get(sc.port, '/reset');
  t.equal(reset.status, 502);
  t.same(reset.json, { error: 'upstream_unavailable', reason: 'reset' });

  const half = await get(sc.port, '/half');
  t.ok(half.error || half.status === 200, 'a response cut mid-body is cut for the client too (no fake success body)');
  if (!half.error) t.not(half.body, 'partial-complete');

  t.equal((await get(sc.port, '/ok')).body, 'fine', 'still serving');
  t.ok(sc.logs.some((l) => l.event === 'upstream_error' && l.kind === 'timeout'));
});

t.test('connect timeout → 504: an upstream whose accept queue is full never completes the TCP handshake', async (t) => {
  // A listening socket that never accepts, with a backlog of 0: once its queue is full, Linux drops
  // further SYNs, so connecting hangs — a real connect timeout, on loopback.
  const py = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.teardown(() => py.kill());
  const port = await new Promise<number>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
  t.teardown(() => fillers.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 200));
  const sc = await startTestSidecar(pki, `http://127.0.0.1:${port}`, { upstream: { connectTimeoutMs: 400, responseTimeoutMs: 30_000 } });
  t.teardown(() => sc.close());
  const started = Date.now();
  const res = await get(sc.port);
  t.equal(res.status, 504);
  t.same(res.json, { error: 'upstream_timeout', reason: 'timeout' });
  t.ok(Date.now() - started < 10_000, 'the connect timeout, not the response timeout, fired');
  t.ok(sc.logs.some((l) => l.event === 'upstream_error' && l.kind === 'timeout' && /connect/i.test(String(l.message))));
  t.match(await logLine(sc, (l) => l.event === 'access'), { status: 504, flags: 'UF' }, 'a connect timeout is a connection failure (UF), not a response timeout (UT)');
});
