// The CA's revocation feed over real HTTP: the current CRL at subscribe time unless the cursor
// holds it, every newer one pushed, a cursor from the future not believed, heartbeats, 503 at
// capacity, and a subscriber that stops reading cut off instead of buffered without bound.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import t from 'tap';
import { createRevocationFeed, type RevocationFeedOptions } from '../../src/enroll/revocation-feed.js';

const crl = (n: bigint, size = 8) => ({ der: Buffer.alloc(size, Number(n % 250n)), crlNumber: n });

async function serve(options: Partial<RevocationFeedOptions>, current: () => ReturnType<typeof crl>) {
  const feed = createRevocationFeed({ heartbeatMs: 60_000, maxSubscribers: 10, maxSubscribersPerAddress: 100, maxBufferedBytes: 1 << 20, ...options });
  const server = http.createServer((req, res) => feed.subscribe(req, res, current()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/crl/feed`;
  return {
    feed,
    url,
    close: () => new Promise<void>((r) => (feed.close(), server.closeAllConnections(), server.close(() => r()))),
  };
}

/** Reads the stream into `text` as it arrives. */
function listen(url: string, headers: Record<string, string> = {}) {
  const got = { status: 0, text: '', req: undefined as unknown as http.ClientRequest };
  got.req = http.get(url, { headers }, (res) => {
    got.status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (d: string) => (got.text += d));
    res.on('error', () => undefined);
  });
  got.req.on('error', () => undefined);
  return got;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1]);

t.test('current CRL on subscribe, newer ones pushed, older or held ones not', async (t) => {
  let current = crl(5n);
  const s = await serve({}, () => current);
  t.teardown(s.close);
  const fresh = listen(s.url);
  const holding = listen(s.url, { 'last-event-id': '5' });
  const future = listen(`${s.url}?after=900`);
  await sleep(100);
  t.equal(fresh.status, 200);
  t.same(ids(fresh.text), ['5'], 'a new subscriber gets the current CRL at once');
  t.same(ids(holding.text), [], 'one holding it gets nothing yet');
  t.same(ids(future.text), ['5'], 'a cursor past the current CRL is not believed');
  current = crl(6n);
  s.feed.publish(current);
  s.feed.publish(crl(4n));
  await sleep(100);
  t.same(ids(fresh.text), ['5', '6']);
  t.same(ids(holding.text), ['6'], 'an older CRL is never sent after a newer one');
  t.match(fresh.text, /event: crl\ndata: BgYGBgYGBgY=\n\n/, 'the data is the CRL, base64');
  t.equal(s.feed.size(), 3);
});

t.test('heartbeats; 503 with Retry-After past maxSubscribers', async (t) => {
  const s = await serve({ heartbeatMs: 50, maxSubscribers: 1 }, () => crl(1n));
  t.teardown(s.close);
  const one = listen(s.url);
  await sleep(30);
  const two = listen(s.url);
  await sleep(200);
  t.match(one.text, /: heartbeat\n\n/);
  t.equal(two.status, 503, 'the second is refused');
});

t.test('a subscriber that does not read is cut off, the others keep receiving', async (t) => {
  const dropped: string[] = [];
  const s = await serve({ maxBufferedBytes: 64 * 1024, onDropped: (why) => dropped.push(why) }, () => crl(1n));
  t.teardown(s.close);
  const reader = listen(s.url);
  // A raw socket that sends the request and never reads a byte.
  const { connect } = await import('node:net');
  const stalled = connect(Number(new URL(s.url).port), '127.0.0.1', () => stalled.write('GET /v1/crl/feed HTTP/1.1\r\nHost: x\r\n\r\n'));
  stalled.pause();
  stalled.on('error', () => undefined);
  await sleep(100);
  t.equal(s.feed.size(), 2);
  for (let n = 2n; n < 200n && dropped.length === 0; n++) {
    s.feed.publish(crl(n, 256 * 1024));
    await sleep(5);
  }
  t.same(dropped, ['slow'], 'the stalled subscriber was cut off');
  t.equal(s.feed.size(), 1, 'the reader is still subscribed');
  t.ok(ids(reader.text).length > 2, 'and still receiving');
  stalled.destroy();
});

// Found by review: each stalled subscriber was cut off only past maxBufferedBytes (8 MiB), with
// its own copy of every CRL queued meanwhile: 40 readers that never read pinned ~300 MiB.
t.test("stalled subscribers are cut off once a whole CRL behind, and share one copy of each event", async (t) => {
  const dropped: string[] = [];
  const s = await serve({ maxSubscribers: 100, maxBufferedBytes: 8 * 1024 * 1024, onDropped: (why) => dropped.push(why) }, () => crl(1n));
  t.teardown(s.close);
  const { connect } = await import('node:net');
  const stalled = Array.from({ length: 20 }, () => {
    const c = connect(Number(new URL(s.url).port), '127.0.0.1', () => c.write('GET /v1/crl/feed HTTP/1.1\r\nHost: x\r\n\r\n'));
    c.pause();
    c.on('error', () => undefined);
    return c;
  });
  t.teardown(() => stalled.forEach((c) => c.destroy()));
  const reader = listen(s.url);
  for (let i = 0; i < 300 && s.feed.size() < 21; i++) await sleep(10);
  t.equal(s.feed.size(), 21, "all subscribed");
  for (let n = 2n; n <= 6n; n++) {
    s.feed.publish(crl(n, 1024 * 1024)); // 1.3 MiB events: more than a socket buffer takes
    await sleep(50);
  }
  t.equal(s.feed.size(), 1, 'only the reader is left');
  t.equal(dropped.length, 20, 'each stalled subscriber was cut off as slow');
  t.same(ids(reader.text).slice(-2), ['5', '6'], 'the reader got every CRL');
});

// Found by review: one client could hold every slot (10,000 idle streams) and keep real sidecars
// out of the feed.
t.test('one address cannot take more than maxSubscribersPerAddress streams', async (t) => {
  const s = await serve({ maxSubscribers: 100, maxSubscribersPerAddress: 3 }, () => crl(1n));
  t.teardown(s.close);
  const streams = Array.from({ length: 5 }, () => listen(s.url));
  await sleep(150);
  t.same(streams.map((x) => x.status).sort(), [200, 200, 200, 503, 503]);
  t.equal(s.feed.size(), 3);
  streams.filter((x) => x.status === 200)[0]!.req.destroy();
  await sleep(100);
  const again = listen(s.url);
  await sleep(100);
  t.equal(again.status, 200, 'a freed slot can be taken again');
});

// Found by review: cutting on 64 KiB unsent alone dropped a healthy reader on a slow link whenever
// the CRL was large, a reconnect storm during revocation bursts; only a reader that drained
// nothing since the last CRL is cut off.
t.test('a reader draining steadily is not cut off by the next publish', async (t) => {
  const drops: string[] = [];
  const feed = createRevocationFeed({ heartbeatMs: 60_000, maxSubscribers: 10, maxSubscribersPerAddress: 10, maxBufferedBytes: 64 * 1024 * 1024, onDropped: (w) => drops.push(w) });
  const server = http.createServer((req, res) => feed.subscribe(req, res, undefined));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { feed.close(); server.close(); });
  const port = (server.address() as net.AddressInfo).port;
  const sock = net.connect(port, '127.0.0.1');
  let received = 0;
  let closed = false;
  sock.on('close', () => void (closed = true));
  // A steady reader: one socket read (<=64 KiB) every 50 ms, ~1.3 MB/s (a ~10 Mbit/s link).
  sock.on("data", (b: Buffer) => { received += b.length; sock.pause(); setTimeout(() => sock.resume(), 50); });
  sock.write('GET /feed HTTP/1.1\r\nhost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 100));
  const der = Buffer.alloc(6 * 1024 * 1024, 0x41); // ~8 MB base64 event: a CRL of ~150k entries (loopback kernel buffers absorb several MB)
  feed.publish({ der, crlNumber: 1n });
  await new Promise((r) => setTimeout(r, 150));
  feed.publish({ der, crlNumber: 2n }); // the next revocation of a burst
  await new Promise((r) => setTimeout(r, 100));
  t.same(drops, [], `cut off as slow after reading ${received} bytes in 250 ms`);
  t.notOk(closed);
  sock.destroy();
});
