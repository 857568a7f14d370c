// Anti-spoofing, exhaustively: every identity header a client could send — any case, repeated,
// with `_` for `-`, folded — is gone before forwarding, and only the sidecar's value arrives.
import tls from 'node:tls';
import t from 'tap';
import { startSidecarWithEcho } from '../fixtures/sidecar.js';

const { pki, echo, sc } = await startSidecarWithEcho(t, {
  identity: { xfcc: { enabled: true }, rfc9440: { enabled: true }, stripHeaders: ['X-Internal-Role'] },
});
const client = await pki.client({ deviceId: 'real-device' });

/** Sends raw header lines over one mTLS connection and returns the echo's view (or the status line). */
function rawRequest(headerLines: string[]): Promise<{ status: number; echo?: { rawHeaders: string[]; headers: Record<string, string> } }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: sc.port, servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem }, () => {
      socket.write(['GET /whoami HTTP/1.1', 'Host: localhost', ...headerLines, 'Connection: close', '', ''].join('\r\n'));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(text.slice(9, 12));
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ status, ...(status === 200 ? { echo: JSON.parse(body) } : {}) });
    });
  });
}

const PROTECTED = [
  'X-Client-Verified',
  'X-Device-Id',
  'X-Client-Cert-Subject',
  'X-Client-Cert-Issuer',
  'X-Client-Cert-Serial',
  'X-Client-Cert-Fingerprint-SHA256',
  'X-Client-Cert-Not-After',
  'X-Client-Cert-SAN-URI',
  'X-Client-Cert-SAN-DNS',
  'X-Client-Cert',
  'X-Forwarded-Client-Cert',
  'Client-Cert',
  'Client-Cert-Chain',
  'X-Internal-Role',
  'X-Forwarded-For',
  'X-Forwarded-Proto',
  'X-Forwarded-Host',
  'X-Forwarded-Port',
  'Forwarded',
];

function variants(name: string): string[] {
  const lower = name.toLowerCase();
  const mixed = [...lower].map((ch, i) => (i % 2 ? ch.toUpperCase() : ch)).join('');
  return [name, lower, name.toUpperCase(), mixed, name.replace(/-/g, '_'), lower.replace(/-/g, '_')];
}

const norm = (n: string) => n.toLowerCase().replace(/_/g, '-');

for (const name of PROTECTED) {
  t.test(`${name}: every spelling is stripped`, async (t) => {
    const lines = variants(name).flatMap((v, i) => [`${v}: EVIL-${i}`, `${v}: EVIL-${i}-again`]);
    const res = await rawRequest(lines);
    t.equal(res.status, 200);
    const raw = res.echo!.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      t.notMatch(raw[i + 1]!, /EVIL/, `no spoofed value survives (${raw[i]})`);
    }
    const same = raw.filter((_v, i) => i % 2 === 0 && norm(raw[i]!) === norm(name));
    t.ok(same.length <= 1, `at most one ${name} arrives (ours), got ${same.length}`);
  });
}

t.test('our values arrive once each', async (t) => {
  const res = await rawRequest(PROTECTED.map((n) => `${n}: EVIL`));
  const h = res.echo!.headers;
  t.equal(h['x-client-verified'], 'SUCCESS');
  t.equal(h['x-device-id'], 'real-device');
  t.equal(h['x-forwarded-for'], '127.0.0.1');
  t.match(h['x-forwarded-client-cert'], /^Hash=[0-9a-f]{64};Subject="O=Test Devices,CN=real-device";URI=urn:device:real-device$/);
  t.equal(h['x-internal-role'], undefined, 'configured extra strip header removed');
  t.equal(h.forwarded, undefined);
});

t.test('obsolete line folding cannot smuggle a header', async (t) => {
  const res = await rawRequest(['X-Note: harmless', ' X-Device-Id: EVIL']);
  if (res.status === 200) {
    t.equal(res.echo!.headers['x-device-id'], 'real-device');
    t.notMatch(JSON.stringify(res.echo!.rawHeaders.filter((_v, i) => i % 2 === 0)), /EVIL/);
  } else {
    t.equal(res.status, 400, 'or the request is refused as malformed');
  }
});

t.test('a header name with whitespace before the colon is refused, not forwarded', async (t) => {
  const before = echo.requests();
  const res = await rawRequest(['X-Device-Id : EVIL']);
  t.equal(res.status, 400);
  t.equal(echo.requests(), before);
});

t.test('unrelated headers pass through untouched', async (t) => {
  const res = await rawRequest(['X-Request-Id: abc-123', 'Authorization: Bearer t0ken', 'X-Device-Identifier: app-level']);
  const h = res.echo!.headers;
  t.equal(h['x-request-id'], 'abc-123');
  t.equal(h.authorization, 'Bearer t0ken');
  t.equal(h['x-device-identifier'], 'app-level', 'a longer name that merely starts the same is not ours');
});

t.test('hop-by-hop headers, and those the Connection header lists, stop at the sidecar', async (t) => {
  const res = await rawRequest([
    'Connection: X-Hop-Secret, X-Second',
    'X-Hop-Secret: s',
    'x-second: 2',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Trailer: X-T',
    'Proxy-Connection: keep-alive',
    'Transfer_Encoding: chunked',
    'X-Kept: yes',
  ]);
  const names = res.echo!.rawHeaders.filter((_v, i) => i % 2 === 0).map(norm);
  for (const gone of ['x-hop-secret', 'x-second', 'keep-alive', 'te', 'trailer', 'proxy-connection', 'transfer-encoding']) {
    t.notOk(names.includes(gone), `${gone} not forwarded`);
  }
  t.equal(res.echo!.headers['x-kept'], 'yes');
});

t.test('Connection cannot list away the Host; a second Host never wins', async (t) => {
  const res = await rawRequest(['Connection: host, content-length', 'Host: evil.example']);
  t.equal(res.status, 200);
  const h = res.echo!.headers;
  t.equal(h.host, 'localhost', 'the first Host, as Node itself reads it');
  t.equal(h['x-forwarded-host'], 'localhost');
  t.equal(res.echo!.rawHeaders.filter((_v, i) => i % 2 === 0 && /^host$/i.test(res.echo!.rawHeaders[i]!)).length, 1, 'one Host line upstream');
});

t.test('repeated end-to-end headers arrive as sent, in order', async (t) => {
  const res = await rawRequest(['X-Multi: a', 'Accept: text/plain', 'X-Multi: b']);
  const raw = res.echo!.rawHeaders;
  const multi = raw.filter((_v, i) => i % 2 === 1 && /^x-multi$/i.test(raw[i - 1]!));
  t.same(multi, ['a', 'b']);
});
