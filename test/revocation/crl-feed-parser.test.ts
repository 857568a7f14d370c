// The revocation feed's Server-Sent Events parser, against the WHATWG rules a CA (or a proxy in
// between) may exercise: any line ending, events split across chunks anywhere (even inside a
// multi-byte character), comments, multi-line data, ids that persist, and a bounded event size.
import t from 'tap';
import { createSseParser } from '../../src/revocation/crl-feed.js';

const bytes = (s: string) => new TextEncoder().encode(s);

t.test('LF, CRLF and CR line endings; comments; multi-line data; default type', async (t) => {
  const p = createSseParser(1024);
  t.same(p.push(bytes(': heartbeat\n\nid: 7\nevent: crl\ndata: QUJD\n\n')), [{ type: 'crl', data: 'QUJD', id: '7' }]);
  t.same(p.push(bytes('data: one\r\ndata:two\r\n\r\n')), [{ type: 'message', data: 'one\ntwo', id: '7' }], 'CRLF; the id persists; one leading space is dropped');
  t.same(p.push(bytes('event: crl\rdata: x\r\r')), [{ type: 'crl', data: 'x', id: '7' }], 'bare CR');
  t.same(p.push(bytes('retry: 1000\n\n')), [], 'an event without data is not dispatched');
});

t.test('an event split across chunks at every position parses the same', async (t) => {
  const text = 'id: 42\r\nevent: crl\r\ndata: MIIBé\r\n\r\n';
  const whole = bytes(text);
  for (let cut = 1; cut < whole.length; cut++) {
    const p = createSseParser(1024);
    const got = [...p.push(whole.subarray(0, cut)), ...p.push(whole.subarray(cut))];
    t.same(got, [{ type: 'crl', data: 'MIIBé', id: '42' }], `cut at ${cut}`);
  }
});

t.test('an id with NUL is ignored; an event over the limit throws a typed error', async (t) => {
  const p = createSseParser(16);
  t.same(p.push(bytes('id: 1\n\nid: a\0b\ndata: z\n\n')), [{ type: 'message', data: 'z', id: '1' }]);
  t.throws(() => p.push(bytes(`data: ${'A'.repeat(40)}\n`)), { code: 'ERR_REVOCATION_SOURCE', fault: 'feed-too-large' });
  const q = createSseParser(16);
  t.throws(() => q.push(bytes('data: '.padEnd(64, 'A'))), { code: 'ERR_REVOCATION_SOURCE', fault: 'feed-too-large' }, 'an unterminated line is bounded too');
});

// Found by review: the pending text was rescanned and re-joined on every chunk, so one long
// `data:` line (a big CRL, or anyone on the plain-HTTP path) cost quadratic CPU on the event loop.
t.test('one long data line costs time linear in its size', async (t) => {
  const cost = (total: number): number => {
    const p = createSseParser(200_000_000);
    const chunk = bytes('A'.repeat(16_384));
    p.push(bytes('id: 1\nevent: crl\ndata: '));
    const started = performance.now();
    for (let n = 0; n < total; n += chunk.length) p.push(chunk);
    const events = p.push(bytes('\n\n'));
    t.equal(events[0]?.data.length, Math.ceil(total / chunk.length) * chunk.length);
    return performance.now() - started;
  };
  cost(1_000_000); // warm up
  const small = cost(2_000_000);
  const big = cost(8_000_000);
  // Linear is ~4x; quadratic was ~16x and more (4 MB took 3 s).
  t.ok(big < Math.max(8 * small, 300), `2 MB ${small.toFixed(0)} ms, 8 MB ${big.toFixed(0)} ms`);
});

// Found by review: an empty chunk (or a partial UTF-8 character decoding to '') between a CR and
// its LF reset the pending CR, so the LF read as a blank line and split the event in two.
t.test('a CRLF split by an empty chunk is one line end', async (t) => {
  const p = createSseParser(1024);
  const got = [...p.push(bytes('event: crl\r\ndata: AAAA\r')), ...p.push(new Uint8Array(0)), ...p.push(bytes('\ndata: BBBB\r\n\r\n'))];
  t.same(got.map((e) => e.data), ['AAAA\nBBBB']);
});
