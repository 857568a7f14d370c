// X-Request-Id and W3C traceparent through the proxy, over real TLS to a real upstream: an id is
// generated when absent, a well-formed one kept, anything else replaced; the same id reaches the
// upstream, comes back to the client and is in the access line. A valid traceparent goes on
// unchanged with its tracestate; an absent or invalid one is replaced by a new trace, without it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { EchoReply } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { logLine, startSidecarWithEcho, startTestSidecar } from '../fixtures/sidecar.js';

const { pki, sc } = await startSidecarWithEcho(t);
const client = await pki.client({ deviceId: 'ids-1' });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const NEW_TRACE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

let n = 0;
/** One GET with `headers`, on a path of its own so its access line can be found. */
async function exchange(headers: Record<string, string | string[]>) {
  const path = `/ids/${++n}`;
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, path, headers });
  const seen = res.json as EchoReply;
  const access = await logLine(sc, (l) => l.event === 'access' && l.path === path);
  return { res, seen, access };
}

/** The values of `name` the upstream received, one per header line. */
const linesOf = (seen: EchoReply, name: string) => seen.rawHeaders.filter((_v, i) => i % 2 === 1 && seen.rawHeaders[i - 1]!.toLowerCase() === name);

t.test('no X-Request-Id: one is generated, sent upstream, returned to the client and logged', async (t) => {
  const { res, seen, access } = await exchange({});
  const id = res.headers!['x-request-id'] as string;
  t.match(id, UUID, 'a random UUID');
  t.same(linesOf(seen, 'x-request-id'), [id], 'the upstream got exactly that one');
  t.equal(access?.requestId, id, 'and the access line has it');
  const second = await exchange({});
  t.not(second.res.headers!['x-request-id'], id, 'a new one for every request');
});

t.test('a well-formed client X-Request-Id is kept end to end', async (t) => {
  for (const id of ['app-7f3a.42', '6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f', 'x'.repeat(128)]) {
    const { res, seen, access } = await exchange({ 'X-Request-Id': id });
    t.equal(res.headers!['x-request-id'], id, 'returned to the client');
    t.same(linesOf(seen, 'x-request-id'), [id], 'sent upstream once');
    t.equal(access?.requestId, id, 'logged');
  }
});

t.test('a malformed, oversized or repeated X-Request-Id is replaced', async (t) => {
  const bad: Array<[string, Record<string, string | string[]>]> = [
    ['129 characters', { 'X-Request-Id': 'x'.repeat(129) }],
    ['a space and a quote', { 'X-Request-Id': 'a "b' }],
    ['a JSON-breaking value', { 'X-Request-Id': '","level":60,"x":"' }],
    ['two lines', { 'X-Request-Id': ['one', 'two'] }],
  ];
  for (const [name, headers] of bad) {
    const { res, seen, access } = await exchange(headers);
    const id = res.headers!['x-request-id'] as string;
    t.match(id, UUID, `${name}: a generated id comes back`);
    t.same(linesOf(seen, 'x-request-id'), [id], `${name}: only that one reaches the upstream`);
    t.equal(access?.requestId, id, `${name}: and is logged`);
  }
});

t.test('X_Request_Id (underscore) is not forwarded: a WSGI upstream would read it as a second id', async (t) => {
  const text = await rawExchange(
    { port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem },
    'GET /ids/raw HTTP/1.1\r\nHost: localhost\r\nX_Request_Id: smuggled\r\nConnection: close\r\n\r\n',
  );
  const seen = JSON.parse(splitResponse(text).body) as EchoReply;
  t.notMatch(JSON.stringify(seen.rawHeaders), /smuggled/);
  t.match(linesOf(seen, 'x-request-id')[0], UUID);
});

t.test('a valid traceparent goes on unchanged, with its tracestate, and its trace id is logged', async (t) => {
  const { seen, access } = await exchange({ traceparent: TRACE, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
  t.same(linesOf(seen, 'traceparent'), [TRACE]);
  t.same(linesOf(seen, 'tracestate'), ['congo=t61rcWkgMzE,rojo=00f067aa0ba902b7']);
  t.equal(access?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
});

t.test('a later traceparent version is sent on as version 00', async (t) => {
  const { seen } = await exchange({ traceparent: '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future', tracestate: 'congo=1' });
  t.same(linesOf(seen, 'traceparent'), [TRACE]);
  t.same(linesOf(seen, 'tracestate'), ['congo=1'], 'tracestate kept: the trace continues');
});

t.test('no traceparent: a new trace, logged', async (t) => {
  const { seen, access } = await exchange({ tracestate: 'congo=orphan' });
  const [tp] = linesOf(seen, 'traceparent');
  const m = NEW_TRACE.exec(tp ?? '');
  t.ok(m, `a version-00 traceparent, sampled (${tp})`);
  t.equal(access?.traceId, m?.[1], 'the access line has its trace id');
  t.same(linesOf(seen, 'tracestate'), [], 'a tracestate without its traceparent is dropped');
});

t.test('an invalid traceparent is replaced and its tracestate dropped', async (t) => {
  const invalid = [
    TRACE.toUpperCase(),
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    `${TRACE}-extra`,
    'garbage',
  ];
  for (const value of invalid) {
    const { seen, access } = await exchange({ traceparent: value, tracestate: 'congo=t61rcWkgMzE' });
    const [tp] = linesOf(seen, 'traceparent');
    t.match(tp, NEW_TRACE, `${value}: replaced`);
    t.not(tp!.slice(3, 35), '4bf92f3577b34da6a3ce929d0e0e4736', `${value}: a new trace id`);
    t.same(linesOf(seen, 'tracestate'), [], `${value}: tracestate dropped`);
    t.equal(access?.traceId, tp!.slice(3, 35), `${value}: the new trace id is logged`);
  }
  const twice = await exchange({ traceparent: [TRACE, TRACE] });
  t.match(linesOf(twice.seen, 'traceparent'), [NEW_TRACE], 'two traceparent lines: a new trace, one line');
});

t.test("the upstream's own X-Request-Id on the response gives way to the sidecar's", async (t) => {
  const upstream = http.createServer((_req, res) => {
    res.writeHead(200, { 'X-Request-Id': 'upstream-made-this', 'Content-Length': '2' });
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const other = await startTestSidecar(pki, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
  t.teardown(async () => {
    await other.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });
  const text = await rawExchange(
    { port: other.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem },
    'GET / HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-42\r\nConnection: close\r\n\r\n',
  );
  const lines = splitResponse(text).head.split('\r\n').filter((l) => /^x-request-id:/i.test(l));
  t.same(lines, ['x-request-id: client-42'], 'exactly one, the one the sidecar logged');
});

t.test("the sidecar's own answers carry the request id too", async (t) => {
  const text = await rawExchange(
    { port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem },
    'GET /a/../b HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: refused-1\r\nConnection: close\r\n\r\n',
  );
  const { status, head } = splitResponse(text);
  t.equal(status, 400);
  t.match(head, /^x-request-id: refused-1$/im);
});
