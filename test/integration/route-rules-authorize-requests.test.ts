// Route rules through the real sidecar: "only devices of CA X may call /payments; /admin only for
// OU=ops", a default deny, refusals as 403 not_authorized on a connection that stays usable,
// counted per route and logged; WebSocket upgrades judged like requests; and no spelling of a path
// lets the policy judge one path while the upstream receives another.
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import WebSocket from 'ws';
import { call } from '../fixtures/client.js';
import { openKeepAlive } from '../fixtures/keep-alive.js';
import { createTestPki } from '../fixtures/pki.js';
import { startRecordingUpstream } from '../fixtures/recording-upstream.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { logLine, startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
// The upstream records every path it receives, for plain requests and upgrades.
const upstream = await startRecordingUpstream();
const { seen } = upstream;
const payingCa = new X509Certificate(pki.intermediate.pem).fingerprint256; // devices issued by the intermediate

const sc = await startTestSidecar(pki, upstream.url, {
  authorization: {
    default: 'deny',
    routes: [
      { name: 'payments', path: { prefix: '/payments' }, methods: ['GET', 'POST'], allow: [{ issuer: { fingerprintSha256: payingCa } }] },
      { name: 'admin', path: { prefix: '/admin' }, allow: [{ subject: { ou: 'ops' } }] },
      { name: 'closed', path: { prefix: '/closed' }, allow: [], failureMode: 'reject' },
      { name: 'ws', path: { exact: '/socket' }, allow: [{ subject: { ou: 'ops' } }] },
      { name: 'public', path: { prefix: '/public' }, allow: 'any' },
    ],
  },
});
const ops = await pki.client({ deviceId: 'ops-1', subject: 'CN=ops-1,OU=ops,O=Example' });
const kiosk = await pki.client({ deviceId: 'kiosk-1', subject: 'CN=kiosk-1,OU=retail,O=Example' });
const rootIssued = await pki.client({ deviceId: 'root-1', subject: 'CN=root-1,OU=ops,O=Example', issuer: 'root' });
t.teardown(async () => {
  await sc.close();
  await upstream.close();
  pki.cleanup();
});

const get = (who: { chainPem: string; keyPem: string }, path: string, method = 'GET') => call({ port: sc.port, ca: pki.rootPem, cert: who.chainPem, key: who.keyPem, path, method });

t.test('the README examples: CA X for /payments, OU=ops for /admin, deny by default', async (t) => {
  t.equal((await get(kiosk, '/payments/1')).status, 200, 'issued by the paying CA');
  const refused = await get(rootIssued, '/payments/1');
  t.equal(refused.status, 403, 'another CA of the bundle');
  t.same(refused.json, { error: 'not_authorized', reason: 'this client certificate may not call this method and path' });
  t.match(refused.headers?.['x-request-id'], /.+/, 'with X-Request-Id like every refusal');
  t.equal((await get(kiosk, '/payments/1', 'DELETE')).status, 403, 'a method the rule does not list falls to the default');
  t.equal((await get(ops, '/admin/users')).status, 200);
  t.equal((await get(kiosk, '/admin/users')).status, 403);
  t.equal((await get(kiosk, '/public/x')).status, 200);
  t.equal((await get(ops, '/unlisted')).status, 403, 'default deny');
  t.notOk(seen.includes('/unlisted') || seen.includes('/admin/users?kiosk'), 'refused requests never reach the upstream');
});

t.test('a refusal leaves the keep-alive connection usable for other routes', async (t) => {
  const conn = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: kiosk.chainPem, key: kiosk.keyPem });
  t.teardown(() => conn.close());
  t.equal((await conn.get('/admin/x')).status, 403);
  t.equal((await conn.get('/public/after')).status, 200, 'same connection, next request');
  t.equal(conn.socket.destroyed, false);
});

t.test('failureMode: reject on a route closes the connection without an answer', async (t) => {
  const conn = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: ops.chainPem, key: ops.keyPem });
  t.teardown(() => conn.close());
  t.same(await conn.get('/closed/x'), { error: 'closed' });
});

t.test('refusals are counted per route and logged with the route and flag', async (t) => {
  await get(kiosk, '/admin/counted');
  const line = await logLine(sc, (l) => l.event === 'access' && l.path === '/admin/counted');
  t.match(line, { status: 403, route: 'admin', flags: 'AD', deviceId: 'kiosk-1' });
  t.match(await logLine(sc, (l) => l.event === 'authorization_denied' && l.path === '/admin/counted'), { reason: 'not_authorized', route: 'admin', deviceId: 'kiosk-1' });
  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  t.match(metrics, /mtls_authorization_denied_total\{route="admin",reason="not_authorized"\} [1-9]/);
  t.match(metrics, /mtls_authorization_denied_total\{route="default",reason="not_authorized"\} [1-9]/);
  t.match(metrics, /mtls_requests_total\{route="public",method="GET",status_class="2xx"\} [1-9]/);
  t.notMatch(metrics, /kiosk-1|ops-1/, 'no device id in any label');
});

t.test('WebSocket upgrades are authorized like requests', async (t) => {
  const open = (who: { chainPem: string; keyPem: string }) =>
    new Promise<number | 'open'>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${sc.port}/socket`, { ca: pki.rootPem, cert: who.chainPem, key: who.keyPem, handshakeTimeout: 5_000 });
      ws.once('open', () => {
        ws.close();
        resolve('open');
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(0));
    });
  t.equal(await open(ops), 'open');
  t.equal(await open(kiosk), 403);
  const line = await logLine(sc, (l) => l.event === 'access' && l.path === '/socket' && l.status === 403);
  t.match(line, { route: 'ws', flags: 'AD' });
});

/** Sends one request line as written (HTTP clients would normalise it); returns status and body. */
async function raw(who: { chainPem: string; keyPem: string }, target: string): Promise<{ status: number; body: string }> {
  const request = [`GET ${target} HTTP/1.1`, 'Host: localhost', 'Connection: close', '', ''].join('\r\n');
  return splitResponse(await rawExchange({ port: sc.port, ca: pki.rootPem, cert: who.chainPem, key: who.keyPem }, request));
}

t.test('no spelling of /admin gets past the admin rule, and the upstream gets the path judged', async (t) => {
  // kiosk-1 may call /public/… but not /admin/…: every spelling must be refused (400 or 403) or
  // reach the upstream as exactly the path that was judged.
  const attempts = [
    '/public/../admin/x',
    '/%2e%2e/admin/x',
    '/public/%2e%2e/admin/x',
    '/public/%2E%2E/admin/x',
    '/public/..%2fadmin/x',
    '/public%2f..%2fadmin/x',
    '/admin%2f..',
    '/public/%252e%252e/admin/x',
    '/public/.%2e/admin/x',
    '/public/..;/admin/x',
    '/public\\..\\admin/x',
    '/public/..%5cadmin/x',
    '//admin/x',
    '///admin',
    '/%61dmin/x',
    '/%2561dmin/x',
    '/admin;x',
    '/admin;jsessionid=1/x',
    '/admin/.',
    '/admin/./x',
    '/public/./../admin',
    '/admin%3bx',
    '/admin%00',
    '/admin%c0%ae%c0%ae',
    '/admin%u002e',
    '/admin#x',
    '/public#/../admin',
  ];
  for (const target of attempts) {
    seen.length = 0;
    const r = await raw(kiosk, target);
    t.ok(r.status === 400 || r.status === 403, `${target} refused (${r.status})`);
    t.same(seen, [], `${target}: nothing reached the upstream`);
  }
  // /ADMIN is another path to a case-sensitive rule: it falls to the default (deny here).
  t.equal((await raw(kiosk, '/ADMIN/x')).status, 403);
  // What does reach the upstream is the normalised spelling the rules judged.
  seen.length = 0;
  t.equal((await raw(kiosk, '/public//%7e%61/x?q=%2e%2e')).status, 200);
  t.same(seen, ['/public/~a/x?q=%2e%2e']);
  seen.length = 0;
  t.equal((await raw(ops, '//admin//x')).status, 200);
  t.same(seen, ['/admin/x'], 'an allowed //admin reaches the upstream as the /admin that was judged');
});

// Some upstreams take the path or method from these headers; the rules judged neither.
t.test('headers that rewrite the path or method never reach the upstream when rules are on', async (t) => {
  const overrides = { 'x-original-url': '/admin/x', 'x-rewrite-url': '/admin/x', 'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'DELETE' };
  const r = await call({ port: sc.port, ca: pki.rootPem, cert: kiosk.chainPem, key: kiosk.keyPem, path: '/public/x', headers: overrides });
  t.equal(r.status, 200);
  for (const name of Object.keys(overrides)) t.equal(upstream.lastHeaders()[name], undefined, `${name} stripped`);
});
