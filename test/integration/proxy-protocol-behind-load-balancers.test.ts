// Behind a TCP load balancer: the PROXY protocol (v1 from curl `--haproxy-protocol`, v2 and v1 from
// a real HAProxy `send-proxy-v2`/`send-proxy`, and hand-made headers for what neither sends) names
// the client that the access log and X-Forwarded-For see; untrusted sources, missing, malformed,
// slow and oversized headers are refused without harming anyone else; disabled means no belief.
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { promisify } from 'node:util';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import type { Metrics } from '../../src/metrics.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { startHaproxy } from '../fixtures/haproxy.js';
import { freePort } from '../fixtures/net.js';
import { createTestPki } from '../fixtures/pki.js';
import { logLine, startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';

const run = promisify(execFile);
const pki = await createTestPki();
const echo = await startEchoUpstream();
const client = await pki.client({ deviceId: 'behind-lb' });
const caFile = pki.write('pp-ca.pem', pki.rootPem);
const hasIpv6 = await new Promise<boolean>((resolve) => {
  const probe = net.createServer().once('error', () => resolve(false));
  probe.listen(0, '::1', () => probe.close(() => resolve(true)));
});
// Trusts only 127.0.0.1: a client on 127.0.0.9 (another loopback address) is an untrusted source.
const sc = await startTestSidecar(pki, echo.url, { listen: { proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1/32'], headerTimeoutMs: 800 } } });
const haproxy = await startHaproxy([
  { send: 'send-proxy-v2', targetHost: '127.0.0.1', targetPort: sc.port },
  { send: 'send-proxy', targetHost: '127.0.0.1', targetPort: sc.port },
]);
// Waiting for haproxy's ports made it connect to the sidecar once per route, each with a header.
for (let i = 0; i < 100 && (await count(sc.sidecar.metrics.proxyProtocolAccepted, { source: 'client' })) < 2; i++) await new Promise((r) => setTimeout(r, 20));
t.teardown(async () => {
  await haproxy.close();
  await sc.close();
  await echo.close();
  pki.cleanup();
});

async function curl(port: number, args: string[], host = 'localhost') {
  try {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--cacert', caFile, '--cert', client.certFile, '--key', client.keyFile, ...args, `https://${host}:${port}/pp`]);
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function count(counter: Metrics['proxyProtocolRefused'] | Metrics['proxyProtocolAccepted'], labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k as keyof typeof v.labels] === x)).reduce((n, v) => n + v.value, 0);
}

/** A duplex over `raw` whose first write (the ClientHello) goes out in one write with `header`. */
function headerInFirstWrite(raw: net.Socket, header: Buffer): Duplex {
  let first = true;
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      raw.write(first ? Buffer.concat([header, chunk]) : chunk, cb);
      first = false;
    },
    read() {
      raw.resume();
    },
    final(cb) {
      raw.end();
      cb();
    },
    destroy(err, cb) {
      raw.destroy();
      cb(err);
    },
  });
  raw.on('data', (c: Buffer) => void (d.push(c) || raw.pause()));
  raw.on('end', () => d.push(null));
  raw.on('error', (err) => d.destroy(err));
  return d;
}

interface Exchange {
  /** Byte-at-a-time delay for the header; undefined: the header and the ClientHello in one segment. */
  byteDelayMs?: number;
  localAddress?: string;
  target?: TestSidecar;
}

/** Sends `header`, then a TLS GET on the same connection; resolves with the echo's JSON or the failure. */
async function exchange(header: Buffer, opts: Exchange = {}): Promise<{ json?: any; error?: string }> {
  const raw = net.connect({ host: '127.0.0.1', port: (opts.target ?? sc).port, localAddress: opts.localAddress });
  await new Promise((resolve, reject) => raw.once('connect', resolve).once('error', reject));
  let carrier: Duplex = raw;
  if (opts.byteDelayMs === undefined) carrier = headerInFirstWrite(raw, header);
  else
    for (const byte of header) {
      raw.write(Buffer.from([byte]));
      await new Promise((r) => setTimeout(r, opts.byteDelayMs));
    }
  return new Promise((resolve) => {
    const socket = tls.connect({ socket: carrier, servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem }, () => {
      socket.write('GET /pp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    let text = '';
    socket.setEncoding('utf8');
    // Done at the end of the body: over a JS duplex the TLS socket's close can lag behind.
    socket.on('data', (c: string) => {
      text += c;
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text.slice(0, end));
      if (end < 0 || !length || Buffer.byteLength(text.slice(end + 4)) < Number(length[1])) return;
      socket.destroy();
      resolve(text.startsWith('HTTP/1.1 200') ? { json: JSON.parse(text.slice(end + 4)) } : { error: text });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    socket.on('close', () => resolve({ error: text || 'closed' }));
  });
}

function v2Inet(command: 0x20 | 0x21, src: number[], sport: number): Buffer {
  const h = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(h);
  h[12] = command;
  h[13] = 0x11;
  h.writeUInt16BE(12, 14);
  h.set(src, 16);
  h.set([127, 0, 0, 1], 20);
  h.writeUInt16BE(sport, 24);
  h.writeUInt16BE(sc.port, 26);
  return h;
}

/** Resolves once the server closed `socket` (or after `ms`, with false). */
function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.on('error', () => {});
    socket.once('close', () => (clearTimeout(timer), resolve(true)));
  });
}

t.test('curl --haproxy-protocol (v1) from a trusted source: served, the header believed', async (t) => {
  const before = await count(sc.sidecar.metrics.proxyProtocolAccepted, { version: '1', source: 'client' });
  const r = await curl(sc.port, ['--haproxy-protocol']);
  t.equal(r.code, 0, r.stderr);
  const reply = JSON.parse(r.stdout);
  t.equal(reply.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(reply.headers['x-device-id'], 'behind-lb');
  t.equal(await count(sc.sidecar.metrics.proxyProtocolAccepted, { version: '1', source: 'client' }), before + 1);
  // Two requests on one keep-alive connection: one header, both answered.
  const twice = await curl(sc.port, ['--haproxy-protocol', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n', `https://localhost:${sc.port}/again`]);
  t.equal(twice.stdout, '200 1\n200 0\n', twice.stderr);
  t.equal(await count(sc.sidecar.metrics.proxyProtocolAccepted, { version: '1', source: 'client' }), before + 2);
});

t.test('HAProxy send-proxy-v2 and send-proxy: upstream and access log see the client behind it', async (t) => {
  for (const [i, version] of [[0, '2'], [1, '1']] as const) {
    const before = await count(sc.sidecar.metrics.proxyProtocolAccepted, { version, source: 'client' });
    // curl on 127.0.0.9 → haproxy on 127.0.0.1 → sidecar: the TCP peer is haproxy, the client is 127.0.0.9.
    const r = await curl(haproxy.ports[i]!, ['--interface', '127.0.0.9', '-H', `X-Marker: haproxy-${version}`]);
    t.equal(r.code, 0, `${r.stderr} ${haproxy.output()}`);
    t.equal(JSON.parse(r.stdout).headers['x-forwarded-for'], '127.0.0.9', `v${version}: X-Forwarded-For is the client, not haproxy`);
    t.equal(await count(sc.sidecar.metrics.proxyProtocolAccepted, { version, source: 'client' }), before + 1);
  }
  const access = await logLine(sc, (l) => l.event === 'access' && l.remote === '127.0.0.9');
  t.ok(access, 'the access line names the client behind haproxy');
  t.equal(access?.deviceId, 'behind-lb');
});

t.test('hand-made headers: v1 and v2, IPv4 and IPv6, split byte by byte or sharing a segment with the ClientHello', async (t) => {
  const v1 = Buffer.from(`PROXY TCP4 203.0.113.50 127.0.0.1 40001 ${sc.port}\r\n`);
  t.equal((await exchange(v1)).json?.headers['x-forwarded-for'], '203.0.113.50', 'v1 + ClientHello in one segment');
  t.equal((await exchange(v1, { byteDelayMs: 2 })).json?.headers['x-forwarded-for'], '203.0.113.50', 'v1 one byte at a time');
  const v2 = v2Inet(0x21, [198, 51, 100, 7], 40002);
  t.equal((await exchange(v2)).json?.headers['x-forwarded-for'], '198.51.100.7', 'v2 + ClientHello in one segment');
  t.equal((await exchange(v2, { byteDelayMs: 2 })).json?.headers['x-forwarded-for'], '198.51.100.7', 'v2 one byte at a time');
  const v6 = Buffer.from(`PROXY TCP6 2001:db8::77 ::1 40003 ${sc.port}\r\n`);
  t.equal((await exchange(v6)).json?.headers['x-forwarded-for'], '2001:db8::77', 'v1 TCP6');
  t.ok(await logLine(sc, (l) => l.event === 'access' && l.remote === '2001:db8::77'), 'the access line too');
});

t.test('v2 LOCAL (a health check) and v1 UNKNOWN: served with the socket address', async (t) => {
  const before = await count(sc.sidecar.metrics.proxyProtocolAccepted, { version: '2', source: 'socket' });
  const local = await exchange(v2Inet(0x20, [192, 0, 2, 66], 1));
  t.equal(local.json?.headers['x-forwarded-for'], '127.0.0.1', 'LOCAL ignores the addresses it carries');
  t.equal(await count(sc.sidecar.metrics.proxyProtocolAccepted, { version: '2', source: 'socket' }), before + 1);
  t.equal((await exchange(Buffer.from('PROXY UNKNOWN\r\n'))).json?.headers['x-forwarded-for'], '127.0.0.1');
});

t.test('an untrusted source: plain TLS is served as itself, a PROXY header is refused', async (t) => {
  const plain = await curl(sc.port, ['--interface', '127.0.0.9'], '127.0.0.1');
  t.equal(plain.code, 0, plain.stderr);
  t.equal(JSON.parse(plain.stdout).headers['x-forwarded-for'], '127.0.0.9');
  const before = await count(sc.sidecar.metrics.proxyProtocolRefused, { reason: 'untrusted_source' });
  const spoof = await curl(sc.port, ['--interface', '127.0.0.9', '--haproxy-protocol'], '127.0.0.1');
  t.not(spoof.code, 0, 'curl could not get through');
  const forged = await exchange(Buffer.from(`PROXY TCP4 10.9.9.9 127.0.0.1 1 ${sc.port}\r\n`), { localAddress: '127.0.0.9' });
  t.ok(forged.error, 'a forged header from 127.0.0.9 is not believed');
  t.equal(await count(sc.sidecar.metrics.proxyProtocolRefused, { reason: 'untrusted_source' }), before + 2);
  const line = await logLine(sc, (l) => l.event === 'proxy_protocol_refused' && l.reason === 'untrusted_source');
  t.equal(line?.remote, '127.0.0.9', 'logged with the TCP peer');
});

t.test('a trusted source without a header is refused', async (t) => {
  const before = await count(sc.sidecar.metrics.proxyProtocolRefused, { reason: 'missing_header' });
  const r = await curl(sc.port, []);
  t.not(r.code, 0);
  t.equal(await count(sc.sidecar.metrics.proxyProtocolRefused, { reason: 'missing_header' }), before + 1);
});

t.test('hostile input: garbage, malformed, oversized, truncated and slowloris headers close only their own connection', async (t) => {
  const refused = (reason: string) => count(sc.sidecar.metrics.proxyProtocolRefused, { reason });
  const send = async (bytes: Buffer, waitMs = 2_000) => {
    const s = net.connect(sc.port, '127.0.0.1');
    s.write(bytes);
    return closedWithin(s, waitMs);
  };
  const invalid = await refused('invalid_header');
  t.ok(await send(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n')), 'bad port: closed');
  t.ok(await send(Buffer.from(`PROXY TCP4 ${'9'.repeat(200)}`)), 'v1 past 107 bytes without CRLF: closed at once');
  const huge = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  t.ok(await send(huge), 'v2 announcing 64 KiB: closed without waiting for it');
  t.ok(await send(Buffer.concat([huge.subarray(0, 12), Buffer.from([0x31, 0x11, 0, 12])])), 'v2 version 3: closed');
  t.equal(await refused('invalid_header'), invalid + 4);

  const missing = await refused('missing_header');
  t.ok(await send(Buffer.from('GET / HTTP/1.1\r\n\r\n')), 'plain HTTP from a trusted source: closed');
  t.equal(await refused('missing_header'), missing + 1);

  const truncated = await refused('truncated');
  const partial = net.connect(sc.port, '127.0.0.1');
  partial.write('PROXY TCP4 1.2.');
  await new Promise((r) => setTimeout(r, 50));
  partial.end();
  await closedWithin(partial, 2_000);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await refused('truncated'), truncated + 1, 'a peer that leaves mid-header is counted');

  const timeouts = await refused('timeout');
  const slow = net.connect(sc.port, '127.0.0.1');
  const started = Date.now();
  const dripped = Buffer.from('PROXY TCP4 203.0.113.1 127.0.0.1 1 2\r\n');
  let next = 0;
  const drip = setInterval(() => slow.writable && next < dripped.length && slow.write(dripped.subarray(next, ++next)), 100);
  const closed = await closedWithin(slow, 3_000);
  clearInterval(drip);
  t.ok(closed, 'a header dripped byte by byte is cut at headerTimeoutMs');
  t.ok(Date.now() - started < 2_000, `cut after ${Date.now() - started} ms (headerTimeoutMs 800)`);
  t.equal(await refused('timeout'), timeouts + 1);
  const silent = net.connect(sc.port, '127.0.0.1');
  t.ok(await closedWithin(silent, 3_000), 'a trusted peer that sends nothing is cut too');

  // A good header followed by bytes that are not TLS: a failed handshake, logged with the header's client.
  t.ok(await send(Buffer.from(`PROXY TCP4 203.0.113.77 127.0.0.1 1 ${sc.port}\r\nnot a ClientHello\r\n\r\n`)), 'not TLS after the header: closed');
  const failed = await logLine(sc, (l) => l.event === 'handshake_failed' && l.remote === '203.0.113.77');
  t.ok(failed, 'the failed handshake is logged with the client the header named');

  const r = await curl(sc.port, ['--haproxy-protocol']);
  t.equal(r.code, 0, 'and the sidecar still serves everyone else');
});

t.test('disabled (the default): a client sending a PROXY header fails its TLS handshake, nothing believed', async (t) => {
  const plain = await startTestSidecar(pki, echo.url);
  t.teardown(() => plain.close());
  const before = echo.requests();
  const r = await curl(plain.port, ['--haproxy-protocol']);
  t.equal(r.code, 35, `curl: TLS handshake failed (${r.stderr.trim()})`);
  const forged = await exchange(Buffer.from(`PROXY TCP4 10.9.9.9 127.0.0.1 1 ${plain.port}\r\n`), { target: plain });
  t.ok(forged.error, 'a forged header makes the handshake fail');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(await logLine(plain, (l) => l.event === 'handshake_failed'), 'counted and logged as a failed handshake, as before');
  const ok = await curl(plain.port, []);
  t.equal(JSON.parse(ok.stdout).headers['x-forwarded-for'], '127.0.0.1');
});


t.test('IPv6 loopback: curl --haproxy-protocol sends TCP6', { skip: hasIpv6 ? false : 'no ::1 on this machine' }, async (t) => {
  const v6 = await startTestSidecar(pki, echo.url, { listen: { host: '::1', proxyProtocol: { enabled: true, trustedSources: ['::1'] } } });
  t.teardown(() => v6.close());
  const r = await curl(v6.port, ['--haproxy-protocol'], '[::1]');
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).headers['x-forwarded-for'], '::1');
  t.equal(await count(v6.sidecar.metrics.proxyProtocolAccepted, { version: '1', source: 'client' }), 1);
});

t.test('dual stack ("::"): an IPv4 balancer, seen as ::ffff:127.0.0.1, matches its IPv4 CIDR', { skip: hasIpv6 ? false : 'no IPv6 on this machine' }, async (t) => {
  const dual = await startTestSidecar(pki, echo.url, { listen: { host: '::', proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1/32'] } } });
  t.teardown(() => dual.close());
  const r = await exchange(Buffer.from(`PROXY TCP4 192.0.2.200 127.0.0.1 1 ${dual.port}\r\n`), { target: dual });
  t.equal(r.json?.headers['x-forwarded-for'], '192.0.2.200', r.error ?? 'believed');
  const untrusted = await exchange(Buffer.from(`PROXY TCP4 192.0.2.201 127.0.0.1 1 ${dual.port}\r\n`), { target: dual, localAddress: '127.0.0.9' });
  t.ok(untrusted.error, 'and ::ffff:127.0.0.9 does not');
  t.equal(await count(dual.sidecar.metrics.proxyProtocolRefused, { reason: 'untrusted_source' }), 1);
});

t.test('draining cuts connections still waiting for their header at once, and lets an in-flight request finish', async (t) => {
  const slow = http.createServer((_req, res) => void setTimeout(() => res.end('{"slow":true}'), 400));
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => slow.close(r)));
  const own = await startTestSidecar(pki, `http://127.0.0.1:${(slow.address() as net.AddressInfo).port}`, {
    listen: { proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1'], headerTimeoutMs: 30_000 } },
  });
  t.teardown(() => own.close());
  const waiting = net.connect(own.port, '127.0.0.1');
  waiting.write('PROXY TCP4 ');
  const cut = closedWithin(waiting, 5_000);
  const inFlight = exchange(Buffer.from(`PROXY TCP4 192.0.2.44 127.0.0.1 1 ${own.port}\r\n`), { target: own });
  await new Promise((r) => setTimeout(r, 150));
  const started = Date.now();
  const closing = own.sidecar.close(5_000);
  t.ok(await cut, 'the half-sent header was cut');
  t.ok(Date.now() - started < 200, `at once (${Date.now() - started} ms)`);
  t.notOk(own.sidecar.readiness.listening!(), 'no longer listening');
  t.same((await inFlight).json, { slow: true }, 'the in-flight request completed');
  await closing;
  t.ok(Date.now() - started < 2_000, `drained in ${Date.now() - started} ms, long before the 5 s deadline`);
});

t.test('with two workers (node:cluster): the workers read the headers, the primary sums their counts', async (t) => {
  const port = await freePort();
  const cli = await startCliSidecar(pki, echo.url, {
    workers: 2,
    listen: { host: '127.0.0.1', port, proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1'] } },
  });
  t.teardown(() => void cli.child.kill('SIGKILL'));
  for (let i = 0; i < 4; i++) {
    const r = await exchange(Buffer.from(`PROXY TCP4 192.0.2.${10 + i} 127.0.0.1 1 ${port}\r\n`), { target: { port } as TestSidecar });
    t.equal(r.json?.headers['x-forwarded-for'], `192.0.2.${10 + i}`, r.error ?? 'forwarded');
  }
  // The primary asks every worker; on a loaded machine that can time out ("metrics unavailable"): ask again.
  let metrics = '';
  for (let i = 0; i < 20 && !metrics.includes('# TYPE'); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 250));
    metrics = await fetch(`${cli.adminUrl}/metrics`).then((r) => r.text(), () => '');
  }
  t.match(metrics, /mtls_proxy_protocol_accepted_total\{version="1",source="client"\} 4/, 'counted across workers');
});
