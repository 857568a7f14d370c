// Upgrade requests through the proxy (issue 13): an upstream that declines with a normal response
// reaches a real curl correctly framed, whatever the upstream's own framing was; and the client's
// Connection list neither reaches the upstream nor keeps the headers it names.
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { createTestPki } from '../fixtures/pki.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const BODY = 'hello, declined upgrade\n';
/** What the upstream writes for each path, byte for byte (it never accepts an upgrade except /accept). */
const DECLINE: Record<string, string> = {
  '/chunked': `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n6\r\nhello,\r\n${(BODY.length - 6).toString(16)}\r\n${BODY.slice(6)}\r\n0\r\n\r\n`,
  '/length': `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nConnection: keep-alive\r\n\r\n${BODY}`,
  '/close': `HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\nUpgrade: h2c\r\nConnection: close\r\n\r\n${BODY}`,
  '/listed': `HTTP/1.1 403 Forbidden\r\nConnection: close, X-Upstream-Hop\r\nX-Upstream-Hop: private to the hop\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
};
let upgradeHeaders: http.IncomingHttpHeaders | undefined;
const upstream = http.createServer((_req, res) => res.end('not an upgrade'));
upstream.on('upgrade', (req, socket) => {
  if (req.url === '/accept') {
    upgradeHeaders = req.headers;
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    return;
  }
  socket.end(DECLINE[req.url ?? ''] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const sc = await startTestSidecar(pki, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
const client = await pki.client({ deviceId: 'ws-hop' });
const caFile = pki.write('ws-ca.pem', pki.rootPem);
const me = { port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem };
t.teardown(async () => {
  await sc.close();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  pki.cleanup();
});

function curl(path: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['--http1.1', '-sS', '--max-time', '10', '--cacert', caFile, '--cert', client.certFile, '--key', client.keyFile];
  args.push('-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-w', '\n%{http_code}', `https://localhost:${sc.port}${path}`);
  return new Promise((resolve) => {
    execFile('curl', args, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

for (const [path, status] of [['/chunked', '200'], ['/length', '200'], ['/close', '426']] as const) {
  t.test(`declined upgrade, ${path.slice(1)} framing: curl gets the exact body`, async (t) => {
    const r = await curl(path);
    t.equal(r.code, 0, r.stderr || 'curl exit code');
    t.equal(r.stdout, `${BODY}\n${status}`);
  });
}

t.test('the declined head carries no upstream framing, and says Connection: close', async (t) => {
  const text = await rawExchange(me, 'GET /chunked HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  const { head, body } = splitResponse(text);
  t.notMatch(head, /transfer-encoding|keep-alive|^upgrade:/im);
  t.match(head, /^connection: close$/im);
  t.equal(body, BODY, 'the body as the upstream meant it, delimited by the close');
});

t.test("a declined upgrade does not relay the headers the upstream's Connection lists", async (t) => {
  const { status, head, body } = splitResponse(await rawExchange(me, 'GET /listed HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
  t.equal(status, 403);
  t.notMatch(head, /x-upstream-hop/i);
  t.equal(body, BODY);
});

t.test('Connection-listed headers are dropped on the websocket path too', async (t) => {
  upgradeHeaders = undefined;
  const request = [
    'GET /accept HTTP/1.1',
    'Host: localhost',
    'Connection: keep-alive, Upgrade, Authorization, X_Device_Id',
    'Connection: Cookie',
    'Authorization: Bearer secret',
    'Cookie: session=1',
    'X-Device-Id: EVIL',
    'X_Device_Id: EVIL',
    'Upgrade: websocket',
    'Accept: */*',
    '',
    '',
  ].join('\r\n');
  const { status } = splitResponse(await rawExchange(me, request));
  t.equal(status, 101);
  t.ok(upgradeHeaders, 'the upgrade reached the upstream');
  t.equal(upgradeHeaders!.connection, 'upgrade', 'Connection is exactly upgrade');
  t.equal(upgradeHeaders!.upgrade, 'websocket');
  t.equal(upgradeHeaders!.authorization, undefined, 'listed Authorization dropped');
  t.equal(upgradeHeaders!.cookie, undefined, 'listed Cookie (second Connection header) dropped');
  t.equal(upgradeHeaders!['x-device-id'], 'ws-hop', 'only the verified device id');
  t.equal(upgradeHeaders!.accept, '*/*', 'unlisted headers kept');
});
