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

function build(raw: string[], upgrade: boolean, forwarded: ForwardedMode = 'replace'): string[] {
  return compileUpstreamHeaders({ strip: plan.strip, forwarded })(['Host', 'h.example', ...raw], SOCKET, IDENTITY, upgrade).headers;
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
