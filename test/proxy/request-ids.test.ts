// Request ids and W3C traceparent values: what is kept, what is replaced, and what new ones look like.
import t from 'tap';
import { createIdSource, forwardableTraceparent, isWellFormedRequestId, MAX_REQUEST_ID_LENGTH, traceIdOf } from '../../src/proxy/request-ids.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const V00 = `00-${TRACE_ID}-${PARENT_ID}-01`;

/** A test name that stays on one TAP line whatever the value holds. */
const label = (s: string) => JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('request ids: 1 to 128 RFC 9110 token characters', async (t) => {
  for (const ok of ['a', 'A-z_0.9~', "!#$%&'*+-.^_`|~", '6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f', 'x'.repeat(MAX_REQUEST_ID_LENGTH)]) {
    t.ok(isWellFormedRequestId(ok), label(ok));
  }
  for (const bad of ['', 'x'.repeat(MAX_REQUEST_ID_LENGTH + 1), 'a b', 'a\tb', 'a"b', 'a\\b', 'a,b', 'a;b', 'a=b', 'a/b', 'a:b', '{a}', 'a\x7f', 'caf\u00e9', 'a\u2028b']) {
    t.notOk(isWellFormedRequestId(bad), label(bad));
  }
});

t.test('traceparent version 00: exactly the format, lower-case hex, no zero ids', async (t) => {
  t.equal(forwardableTraceparent(V00), V00, 'valid: returned as is');
  t.equal(forwardableTraceparent(`00-${TRACE_ID}-${PARENT_ID}-00`), `00-${TRACE_ID}-${PARENT_ID}-00`, 'not sampled: as is');
  t.equal(forwardableTraceparent(`00-${TRACE_ID}-${PARENT_ID}-ff`), `00-${TRACE_ID}-${PARENT_ID}-ff`, 'unknown flags of version 00 pass through untouched');
  const invalid: Array<[string, string]> = [
    ['all-zero trace-id', `00-${'0'.repeat(32)}-${PARENT_ID}-01`],
    ['all-zero parent-id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['upper-case trace-id', `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`],
    ['upper-case flags', `00-${TRACE_ID}-${PARENT_ID}-0A`],
    ['non-hex', `00-${TRACE_ID.slice(0, 31)}g-${PARENT_ID}-01`],
    ['version 00 with more after the flags', `${V00}-extra`],
    ['short trace-id', `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`],
    ['missing flags', `00-${TRACE_ID}-${PARENT_ID}`],
    ['wrong separator', `00_${TRACE_ID}-${PARENT_ID}-01`],
    ['surrounding spaces', ` ${V00}`],
    ['version ff', `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ['upper-case version', `0A-${TRACE_ID}-${PARENT_ID}-01`],
    ['empty', ''],
  ];
  for (const [name, value] of invalid) t.equal(forwardableTraceparent(value), undefined, name);
});

t.test('a later version is read by its version-00 prefix and sent on as version 00', async (t) => {
  t.equal(forwardableTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01`), V00, 'same length: downgraded');
  t.equal(forwardableTraceparent(`01-${TRACE_ID}-${PARENT_ID}-09-what-comes-next`), V00, 'extra fields dropped; only the sampled flag kept');
  t.equal(forwardableTraceparent(`01-${TRACE_ID}-${PARENT_ID}-02`), `00-${TRACE_ID}-${PARENT_ID}-00`, 'not sampled stays not sampled');
  t.equal(forwardableTraceparent(`01-${TRACE_ID}-${PARENT_ID}-01x`), undefined, 'the flags must end the value or be followed by a dash');
  t.equal(forwardableTraceparent(`01-${TRACE_ID}-${PARENT_ID}-0`), undefined, 'shorter than 55 characters');
});

t.test('new ids: UUID request ids, random valid version-00 traces, never the same twice', async (t) => {
  const ids = createIdSource();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = ids.requestId();
    t.ok(isWellFormedRequestId(id) && /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id), 'a v4 UUID', { diagnostic: false });
    const tp = ids.traceparent();
    t.equal(forwardableTraceparent(tp), tp, 'a valid version-00 traceparent', { diagnostic: false });
    t.ok(tp.endsWith('-01'), 'sampled', { diagnostic: false });
    seen.add(id).add(traceIdOf(tp)).add(tp.slice(36, 52));
  }
  t.equal(seen.size, 3000, 'request ids, trace-ids and parent-ids all distinct (the random pool is refilled, not reused)');
});
