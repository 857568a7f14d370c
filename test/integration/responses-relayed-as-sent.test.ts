// The upstream's response reaches the client as the upstream wrote it: header names in their own
// case, repeated headers in order, 1xx interim answers not relayed, the upstream hop's own headers
// (Keep-Alive, Proxy-Connection, Trailer, what its Connection lists) dropped. A raw upstream writes
// the exact bytes, since Node's http server would normalise some of them.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { createTestPki } from '../fixtures/pki.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const client = await pki.client({ deviceId: 'relay-1' });

const ANSWERS: Record<string, string> = {
  '/hints': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal',
  '/headers': [
    'HTTP/1.1 201 Created',
    'X-MiXeD-Case: kept',
    'Set-Cookie: a=1',
    'Set-Cookie: b=2',
    'Keep-Alive: timeout=99, max=7',
    'Proxy-Connection: keep-alive',
    'Connection: keep-alive, X-Upstream-Hop',
    'X-Upstream-Hop: private to the hop',
    'Trailer: X-Checksum',
    'Content-Length: 2',
    '',
    'ok',
  ].join('\r\n'),
};

const upstream = net.createServer((socket) => {
  let head = '';
  socket.on('data', (d: Buffer) => {
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    const path = head.split(' ')[1]!;
    head = '';
    socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  socket.on('error', () => undefined);
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const sc = await startTestSidecar(pki, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
t.teardown(async () => {
  await sc.close();
  await new Promise((r) => upstream.close(r));
  pki.cleanup();
});

const fetchRaw = (path: string) =>
  rawExchange({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem }, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);

t.test('a 103 Early Hints is not relayed; the final answer is', async (t) => {
  const text = await fetchRaw('/hints');
  t.notMatch(text, /103|Link:/, 'no interim answer reaches the client');
  const res = splitResponse(text);
  t.equal(res.status, 200);
  t.equal(res.body, 'final');
});

t.test('header names keep their case and repeats their order; hop-by-hop headers of the upstream are dropped', async (t) => {
  const res = splitResponse(await fetchRaw('/headers'));
  t.equal(res.status, 201);
  t.equal(res.body, 'ok');
  const lines = res.head.split('\r\n').slice(1);
  t.ok(lines.includes('X-MiXeD-Case: kept'), 'name as the upstream spelled it');
  t.same(
    lines.filter((l) => /^set-cookie:/i.test(l)),
    ['Set-Cookie: a=1', 'Set-Cookie: b=2'],
    'both cookies, in order',
  );
  t.notMatch(res.head, /max=7|timeout=99/, "the upstream's Keep-Alive is not relayed");
  t.notMatch(res.head, /proxy-connection|trailer:|x-checksum/i, 'Proxy-Connection and Trailer are not relayed');
  t.notMatch(res.head, /x-upstream-hop/i, "a name the upstream's Connection header lists is not relayed");
  const access = sc.logs.find((l) => l.event === 'access' && l.path === '/headers');
  t.equal(access?.bytes, 2, "the access line has the upstream's Content-Length");
});
