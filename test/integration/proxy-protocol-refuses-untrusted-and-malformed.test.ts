// The PROXY protocol refuses what it must not believe: a header from an untrusted source, none from
// a trusted one, and garbage, malformed, oversized, truncated or slowloris headers, each closing only
// its own connection; and with it disabled (the default) a header is never read.
import net from 'node:net';
import t from 'tap';
import { closedWithin, counterValue as count, proxyProtocolClients, v2InetHeader } from '../fixtures/proxy-protocol-client.js';
import { logLine, startSidecarWithEcho, startTestSidecar } from '../fixtures/sidecar.js';

// Trusts only 127.0.0.1: a client on 127.0.0.9 (another loopback address) is an untrusted source.
const { pki, echo, sc } = await startSidecarWithEcho(t, { listen: { proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1/32'], headerTimeoutMs: 800 } } });
const client = await pki.client({ deviceId: 'behind-lb' });
const { curl, exchange } = proxyProtocolClients(pki, client, sc.port);

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

t.test("only the first header is read: a second one (a client's, relayed by a balancer that prepends its own) is never believed", async (t) => {
  const before = echo.requests();
  const balancer = v2InetHeader(0x21, [198, 51, 100, 20], 40000, sc.port);
  const forged = Buffer.from(`PROXY TCP4 10.0.0.1 127.0.0.1 1 ${sc.port}\r\n`);
  const r = await exchange(Buffer.concat([balancer, forged]));
  t.ok(r.error, 'the forged header is where the ClientHello should be: the handshake fails');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(await logLine(sc, (l) => l.event === 'handshake_failed' && l.remote === '198.51.100.20'), "logged with the balancer's client, not the forged one");
  t.notOk(sc.logs.some((l) => l.remote === '10.0.0.1'), 'the forged address appears nowhere');
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
  const forged = await exchange(Buffer.from(`PROXY TCP4 10.9.9.9 127.0.0.1 1 ${plain.port}\r\n`), { port: plain.port });
  t.ok(forged.error, 'a forged header makes the handshake fail');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(await logLine(plain, (l) => l.event === 'handshake_failed'), 'counted and logged as a failed handshake, as before');
  const ok = await curl(plain.port, []);
  t.equal(JSON.parse(ok.stdout).headers['x-forwarded-for'], '127.0.0.1');
});


