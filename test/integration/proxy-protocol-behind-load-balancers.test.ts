// Behind a TCP load balancer: the PROXY protocol (v1 from curl `--haproxy-protocol`, v2 and v1 from
// a real HAProxy `send-proxy-v2`/`send-proxy`, and hand-made headers for what neither sends) names
// the client that the access log and X-Forwarded-For see, with one or two workers, over IPv4 and
// IPv6, and through a drain. Refusals: proxy-protocol-refuses-untrusted-and-malformed.test.ts.
import net from 'node:net';
import t from 'tap';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { startHaproxy } from '../fixtures/haproxy.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { freePort } from '../fixtures/net.js';
import { closedWithin, counterValue as count, proxyProtocolClients, v2InetHeader } from '../fixtures/proxy-protocol-client.js';
import { logLine, startSidecarWithEcho, startTestSidecar } from '../fixtures/sidecar.js';

const hasIpv6 = await new Promise<boolean>((resolve) => {
  const probe = net.createServer().once('error', () => resolve(false));
  probe.listen(0, '::1', () => probe.close(() => resolve(true)));
});
const { pki, echo, sc } = await startSidecarWithEcho(t, { listen: { proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1/32'] } } });
const client = await pki.client({ deviceId: 'behind-lb' });
const haproxy = await startHaproxy([
  { send: 'send-proxy-v2', targetHost: '127.0.0.1', targetPort: sc.port },
  { send: 'send-proxy', targetHost: '127.0.0.1', targetPort: sc.port },
]);
// Waiting for haproxy's ports made it connect to the sidecar once per route, each with a header.
for (let i = 0; i < 100 && (await count(sc.sidecar.metrics.proxyProtocolAccepted, { source: 'client' })) < 2; i++) await new Promise((r) => setTimeout(r, 20));
t.teardown(() => haproxy.close());

const { curl, exchange } = proxyProtocolClients(pki, client, sc.port);
const v2Inet = (command: 0x20 | 0x21, src: number[], sport: number) => v2InetHeader(command, src, sport, sc.port);

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
  const r = await exchange(Buffer.from(`PROXY TCP4 192.0.2.200 127.0.0.1 1 ${dual.port}\r\n`), { port: dual.port });
  t.equal(r.json?.headers['x-forwarded-for'], '192.0.2.200', r.error ?? 'believed');
  const untrusted = await exchange(Buffer.from(`PROXY TCP4 192.0.2.201 127.0.0.1 1 ${dual.port}\r\n`), { port: dual.port, localAddress: '127.0.0.9' });
  t.ok(untrusted.error, 'and ::ffff:127.0.0.9 does not');
  t.equal(await count(dual.sidecar.metrics.proxyProtocolRefused, { reason: 'untrusted_source' }), 1);
});

t.test('draining cuts connections still waiting for their header at once, and lets an in-flight request finish', async (t) => {
  const slow = await startHttpServer((_req, _body, res) => void setTimeout(() => res.end('{"slow":true}'), 400));
  t.teardown(() => slow.close());
  const own = await startTestSidecar(pki, slow.url, {
    listen: { proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1'], headerTimeoutMs: 30_000 } },
  });
  t.teardown(() => own.close());
  const waiting = net.connect(own.port, '127.0.0.1');
  waiting.write('PROXY TCP4 ');
  const cut = closedWithin(waiting, 5_000);
  const inFlight = exchange(Buffer.from(`PROXY TCP4 192.0.2.44 127.0.0.1 1 ${own.port}\r\n`), { port: own.port });
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
    const r = await exchange(Buffer.from(`PROXY TCP4 192.0.2.${10 + i} 127.0.0.1 1 ${port}\r\n`), { port });
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
