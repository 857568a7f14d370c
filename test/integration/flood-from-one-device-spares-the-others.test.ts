// One device at 20x its request rate alongside 50 well-behaved devices, each on its own
// keep-alive connection: the flooder is held to its rate with 429s, the others get every
// request through (0 errors, 0 refusals). Latency figures: test/bench/limits.mjs --flood.
import t from 'tap';
import { openKeepAlive, sleep, type KaConn } from '../fixtures/keep-alive.js';
import { startSidecarWithEcho } from '../fixtures/sidecar.js';

const RATE = 10; // per device, per second (and the burst)
const SECONDS = 3;
const GOOD = 50;
const GOOD_INTERVAL_MS = 250; // 4 req/s each: under the limit
const FLOOD_CONNECTIONS = 8;
const FLOOD_INTERVAL_MS = (1000 * FLOOD_CONNECTIONS) / (20 * RATE); // 200 req/s in all: 20x

const { pki, sc } = await startSidecarWithEcho(t, { limits: { perDevice: { requestsPerSecond: RATE } }, log: { accessLog: false } });
const flooder = await pki.client({ deviceId: 'flooder' });
const good = await Promise.all(Array.from({ length: GOOD }, (_, i) => pki.client({ deviceId: `calm-${i}` })));

/** Sends on `conn` every `intervalMs` until `end`, one request at a time; tallies statuses. */
async function paced(conn: KaConn, intervalMs: number, end: number, tally: Map<string, number>): Promise<void> {
  let due = Date.now();
  while (Date.now() < end) {
    const r = await conn.get('/flood-test');
    const key = r.status === undefined ? `error:${r.error}` : String(r.status);
    tally.set(key, (tally.get(key) ?? 0) + 1);
    due += intervalMs;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

t.test('the flooder gets 429s; fifty others get every request through', async (t) => {
  const connect = (c: typeof flooder) => openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: c.chainPem, key: c.keyPem });
  const goodConns = await Promise.all(good.map(connect));
  const floodConns = await Promise.all(Array.from({ length: FLOOD_CONNECTIONS }, () => connect(flooder)));
  t.teardown(() => [...goodConns, ...floodConns].forEach((c) => c.close()));
  const goodTally = new Map<string, number>();
  const floodTally = new Map<string, number>();
  const started = Date.now();
  const end = started + SECONDS * 1000;
  await Promise.all([...goodConns.map((c) => paced(c, GOOD_INTERVAL_MS, end, goodTally)), ...floodConns.map((c) => paced(c, FLOOD_INTERVAL_MS, end, floodTally))]);
  const elapsed = (Date.now() - started) / 1000;
  t.comment(`well-behaved: ${JSON.stringify(Object.fromEntries(goodTally))}; flooder: ${JSON.stringify(Object.fromEntries(floodTally))} in ${elapsed.toFixed(1)} s`);

  const goodTotal = [...goodTally.values()].reduce((a, b) => a + b, 0);
  t.equal(goodTally.get('200'), goodTotal, 'every request of the well-behaved devices got 200');
  t.ok(goodTotal >= GOOD * 6, `they kept sending (${goodTotal} requests)`);
  const passed = floodTally.get('200') ?? 0;
  const refused = floodTally.get('429') ?? 0;
  t.ok(refused > passed, `the flooder was mostly refused (${refused} x 429, ${passed} x 200)`);
  t.ok(passed <= RATE + RATE * elapsed + 2, `its 200s stay within burst + rate x time (${passed})`);
  t.equal(passed + refused, [...floodTally.values()].reduce((a, b) => a + b, 0), 'and nothing else: no errors, no closed connections');
});
