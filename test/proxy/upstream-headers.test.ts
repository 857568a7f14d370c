// compileUpstreamHeaders, table-driven: what a client's raw header lines become upstream, for plain
// requests and upgrades. The builder is pure (the socket is only read for two numbers), so these
// tables call it directly; the websocket integration test checks the same through the proxy.
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { compileHeaderPlan, type RenderedHeaders } from '../../src/identity/index.js';
import { compileUpstreamHeaders, type ForwardedMode } from '../../src/proxy/upstream-headers.js';

const plan = compileHeaderPlan({
  headers: {
    verified: 'X-Client-Verified',
    deviceId: 'X-Device-Id',
    subject: 'X-Client-Cert-Subject',
    issuer: 'X-Client-Cert-Issuer',
    serial: 'X-Client-Cert-Serial',
    fingerprint: 'X-Client-Cert-Fingerprint-SHA256',
    notAfter: 'X-Client-Cert-Not-After',
    sanUri: 'X-Client-Cert-SAN-URI',
    sanDns: 'X-Client-Cert-SAN-DNS',
    certPem: 'X-Client-Cert',
  },
  includeCertPem: false,
  xfcc: { enabled: false, includeCert: false },
  rfc9440: { enabled: false, includeChain: false },
  stripHeaders: ['X-Internal-Role'],
});
const IDENTITY: RenderedHeaders = [
  ['x-client-verified', 'SUCCESS'],
  ['x-device-id', 'real-device'],
];
const SOCKET = { remoteAddress: '10.0.0.9', localPort: 8443 } as TLSSocket;
/** What the id source hands out when the client's ids are not kept. */
const NEW_ID = 'new-request-id';
const NEW_TRACE = '00-11111111111111111111111111111111-2222222222222222-01';
const ids = { requestId: () => NEW_ID, traceparent: () => NEW_TRACE };

function head(raw: string[], upgrade = false, forwarded: ForwardedMode = 'replace') {
  return compileUpstreamHeaders({ strip: plan.strip, forwarded, ids })(['Host', 'h.example', ...raw], SOCKET, IDENTITY, upgrade);
}

function build(raw: string[], upgrade: boolean, forwarded: ForwardedMode = 'replace'): string[] {
  return head(raw, upgrade, forwarded).headers;
}

/** What every request ends with in `replace` mode: our Connection (upgrades), X-Forwarded-*, identity. */
function expected(clientPart: string[], upgrade: boolean): string[] {
  return [
    'Host',
    'h.example',
    ...clientPart,
    ...(upgrade ? ['connection', 'upgrade'] : []),
    'x-forwarded-for',
    '10.0.0.9',
    'x-forwarded-proto',
    'https',
    'x-forwarded-host',
    'h.example',
    'x-forwarded-port',
    '8443',
    'x-request-id',
    NEW_ID,
    'traceparent',
    NEW_TRACE,
    ...IDENTITY.flat(),
  ];
}

const WS = ['Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'];

const TABLE: Array<{ name: string; raw: string[]; plain: string[]; upgrade: string[] }> = [
  {
    name: 'Connection-listed authorization is dropped on upgrades too',
    raw: ['Connection', 'Upgrade, Authorization', 'Authorization', 'Bearer secret', ...WS],
    plain: ['Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'],
    upgrade: WS,
  },
  {
    name: 'listed names match any case and _ for -, across repeated Connection headers',
    raw: ['connection', 'keep-alive, upgrade', 'Connection', 'X_Custom, cookie', 'x-custom', '1', 'X_CUSTOM', '2', 'Cookie', 'c=1', 'Accept', '*/*', ...WS],
    plain: ['Accept', '*/*', 'Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'],
    upgrade: ['Accept', '*/*', ...WS],
  },
  {
    name: 'framing names cannot be listed away; Connection itself is never the client’s',
    raw: ['Connection', 'upgrade, host, content-length, connection', 'Content-Length', '0', ...WS],
    plain: ['Content-Length', '0', 'Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'],
    upgrade: ['Content-Length', '0', ...WS],
  },
  {
    name: 'spoofed identity headers in every spelling, repeated, and listed in Connection',
    raw: [
      'Connection', 'upgrade, x-device-id, X_Client_Verified',
      'X-Device-Id', 'EVIL', 'x-device-id', 'EVIL', 'X_DEVICE_ID', 'EVIL', 'x_Device-id', 'EVIL',
      'X-CLIENT-VERIFIED', 'EVIL', 'x_client_verified', 'EVIL', 'X-Internal-Role', 'admin', 'x_internal_role', 'admin',
      'X-Client-Cert-SAN-URI', 'EVIL', 'X_Forwarded_For', '6.6.6.6', 'X-Forwarded-For', '6.6.6.6', 'Forwarded', 'for=6.6.6.6',
      ...WS,
    ],
    plain: ['Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'],
    upgrade: WS,
  },
  {
    name: 'hop-by-hop and their underscore spellings are dropped; duplicates of Host keep the first',
    raw: ['Keep-Alive', '5', 'TE', 'trailers', 'Transfer_Encoding', 'chunked', 'Proxy-Connection', 'x', 'Host', 'second.example', 'Connection', 'Upgrade', ...WS],
    plain: ['Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'],
    upgrade: WS,
  },
];

for (const row of TABLE) {
  t.test(row.name, async (t) => {
    t.same(build(row.raw, false), expected(row.plain, false), 'plain request');
    t.same(build(row.raw, true), expected(row.upgrade, true), 'upgrade');
  });
}

t.test('no spoofed value and exactly one Connection in any row', async (t) => {
  for (const row of TABLE) {
    for (const upgrade of [false, true]) {
      const out = build(row.raw, upgrade);
      const values = out.filter((_v, i) => i % 2 === 1);
      t.notOk(values.some((v) => /EVIL|6\.6\.6\.6|admin|secret/.test(v)), `${row.name} (upgrade=${upgrade})`);
      t.equal(out.filter((v, i) => i % 2 === 0 && v.toLowerCase() === 'connection').length, upgrade ? 1 : 0);
    }
  }
});

t.test('append mode keeps a trusted hop’s X-Forwarded-For unless Connection lists it', async (t) => {
  const kept = build(['X-Forwarded-For', '1.2.3.4', 'Connection', 'upgrade', ...WS], true, 'append');
  t.equal(kept[kept.indexOf('x-forwarded-for') + 1], '1.2.3.4, 10.0.0.9');
  const listed = build(['X-Forwarded-For', '1.2.3.4', 'Connection', 'upgrade, x-forwarded-for', ...WS], true, 'append');
  t.equal(listed[listed.indexOf('x-forwarded-for') + 1], '10.0.0.9');
});

t.test('X-Forwarded-For carries the address clientAddressOf gives (a PROXY protocol client), in both modes', async (t) => {
  const asked: unknown[] = [];
  const clientAddressOf = (socket: unknown) => (asked.push(socket), '203.0.113.5');
  for (const forwarded of ['replace', 'append'] as const) {
    const out = compileUpstreamHeaders({ strip: plan.strip, forwarded, ids, clientAddressOf })(['Host', 'h.example', 'X-Forwarded-For', '1.2.3.4'], SOCKET, IDENTITY, false).headers;
    t.same(valuesOf(out, 'x-forwarded-for'), [forwarded === 'append' ? '1.2.3.4, 203.0.113.5' : '203.0.113.5'], forwarded);
  }
  t.same(asked, [SOCKET, SOCKET], 'asked about the request’s socket');
});

/** The values of one header name (any case) in a built list. */
const valuesOf = (out: string[], name: string) => out.filter((_v, i) => i % 2 === 1 && out[i - 1]!.toLowerCase() === name);

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

t.test('X-Request-Id: exactly one, the client’s when it sent exactly one well-formed line', async (t) => {
  const cases: Array<[string, string[], string]> = [
    ['absent: a new one', [], NEW_ID],
    ['one well-formed line: kept, in any case', ['X-REQUEST-ID', 'app-7f3a.42'], 'app-7f3a.42'],
    ['a UUID: kept', ['x-request-id', '6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f'], '6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f'],
    ['two lines, even equal: neither wins', ['X-Request-Id', 'a', 'X-Request-Id', 'a'], NEW_ID],
    ['empty', ['X-Request-Id', ''], NEW_ID],
    ['a space', ['X-Request-Id', 'a b'], NEW_ID],
    ['a quote', ['X-Request-Id', 'a"b'], NEW_ID],
    ['a comma (two ids folded)', ['X-Request-Id', 'a,b'], NEW_ID],
    ['non-ASCII', ['X-Request-Id', 'caf\u00e9'], NEW_ID],
    ['129 characters', ['X-Request-Id', 'a'.repeat(129)], NEW_ID],
    ['listed in Connection: hop-by-hop, so absent', ['Connection', 'x-request-id', 'X-Request-Id', 'mine'], NEW_ID],
    ['the _ spelling: never forwarded, never read', ['X_Request_Id', 'smuggled'], NEW_ID],
  ];
  for (const [name, raw, want] of cases) {
    const h = head(raw);
    t.same(valuesOf(h.headers, 'x-request-id'), [want], name);
    t.equal(h.requestId, want, `${name}: reported`);
    t.notOk(h.headers.some((v) => v === 'smuggled'), `${name}: no underscore spelling upstream`);
  }
  t.equal(head(['X-Request-Id', 'a'.repeat(128)]).requestId, 'a'.repeat(128), '128 characters is the limit, kept');
});

t.test('traceparent: a valid one goes on as is with its tracestate; otherwise a new one without', async (t) => {
  const cases: Array<[string, string[], string, string[]]> = [
    ['absent: a new trace', ['tracestate', 'congo=t61'], NEW_TRACE, []],
    ['valid: unchanged, tracestate lines kept in order', ['tracestate', 'congo=t61', 'Traceparent', TRACE, 'TraceState', 'rojo=00f'], TRACE, ['congo=t61', 'rojo=00f']],
    ['upper-case hex', ['traceparent', TRACE.toUpperCase(), 'tracestate', 'congo=t61'], NEW_TRACE, []],
    ['two lines: ambiguous, a new trace', ['traceparent', TRACE, 'traceparent', TRACE], NEW_TRACE, []],
    ['listed in Connection', ['Connection', 'traceparent', 'traceparent', TRACE], NEW_TRACE, []],
  ];
  for (const [name, raw, want, state] of cases) {
    const h = head(raw);
    t.same(valuesOf(h.headers, 'traceparent'), [want], name);
    t.equal(h.traceparent, want, `${name}: reported`);
    t.same(valuesOf(h.headers, 'tracestate'), state, `${name}: tracestate`);
  }
});

t.test('Host and User-Agent are reported as the client sent them (the first of each)', async (t) => {
  const h = compileUpstreamHeaders({ strip: plan.strip, forwarded: 'replace', rewriteHostTo: 'up:8080', ids })(
    ['Host', 'api.example', 'User-Agent', 'app/1.0', 'user-agent', 'second', 'User_Agent', 'cgi'],
    SOCKET,
    IDENTITY,
    false,
  );
  t.equal(h.host, 'api.example', 'the client’s Host, though upstream gets up:8080');
  t.equal(h.userAgent, 'app/1.0');
  t.same(valuesOf(h.headers, 'user-agent'), ['app/1.0', 'second'], 'User-Agent lines are forwarded as they were');
  t.same(valuesOf(h.headers, 'user_agent'), ['cgi'], 'User_Agent is an ordinary header, forwarded');
});
