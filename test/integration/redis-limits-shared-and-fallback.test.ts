// store: redis. Two sidecars sharing one real redis-server enforce one bucket per device; Redis
// keys carry a hash, never the device id. Redis killed: both fall back to local buckets at once
// (requests keep being answered), say so once in the log, in mtls_limits_store_up and under
// /readyz's degraded, still ready; Redis back: shared limits again. A frozen Redis costs a
// request at most the command timeout.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { sleep } from '../fixtures/keep-alive.js';
import { sampleValue, scrapeMetrics } from '../fixtures/metrics-text.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestRedis } from '../fixtures/redis-server.js';
import { startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
const redis = await startTestRedis();
const limits = { store: 'redis', redis: { url: redis.url, commandTimeoutMs: 50 }, perDevice: { requestsPerSecond: 1, burst: 4 } };
const a = await startTestSidecar(pki, echo.url, { limits });
const b = await startTestSidecar(pki, echo.url, { limits });
t.teardown(async () => {
  await a.close();
  await b.close();
  await redis.stop();
  await echo.close();
  pki.cleanup();
});

const get = (sc: TestSidecar, c: { chainPem: string; keyPem: string }) => call({ port: sc.port, ca: pki.rootPem, cert: c.chainPem, key: c.keyPem });
const storeUp = async (sc: TestSidecar) => sampleValue(await scrapeMetrics(sc.adminUrl), 'mtls_limits_store_up');
async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not reached in ${ms} ms: ${what}`);
    await sleep(50);
  }
}
const storeLines = (sc: TestSidecar, state: string) => sc.logs.filter((l) => l.event === 'limits_store' && l.state === state).length;

t.test('two sidecars, one Redis: one limit per device', async (t) => {
  await until('both stores up', async () => (await storeUp(a)) === 1 && (await storeUp(b)) === 1);
  const device = await pki.client({ deviceId: 'shared-bucket-device' });
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await get(i % 2 === 0 ? a : b, device)).status ?? 0);
  // Each sidecar alone would allow a burst of 4 (8 in all); together the device has 4.
  t.ok(statuses.slice(0, 4).every((s) => s === 200), `the burst passes across both: ${statuses}`);
  t.ok(statuses.slice(5).every((s) => s === 429), `then both refuse: ${statuses}`);
  const keys = execFileSync('redis-cli', ['-p', String(redis.port), '--scan']).toString().trim().split('\n');
  t.ok(keys.length >= 1 && keys.every((k) => k.startsWith('mtls:rl:d:')), `keys under the prefix: ${keys}`);
  t.notMatch(keys.join(' '), /shared-bucket-device/, 'no device id in Redis');
  const ttl = Number(execFileSync('redis-cli', ['-p', String(redis.port), 'pttl', keys[0]!]).toString());
  t.ok(ttl > 0 && ttl <= 5_000, `keys expire once the bucket would be full again (pttl ${ttl})`);
});

t.test('Redis gone: local buckets at once, said once; Redis back: shared again', async (t) => {
  await redis.stop();
  const device = await pki.client({ deviceId: 'fallback-device' });
  const started = Date.now();
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await get(a, device)).status ?? 0);
  t.same(statuses, [200, 200, 200, 200, 429, 429], 'sidecar a limits the device on its own bucket');
  t.ok(Date.now() - started < 3_000, 'no request waited for Redis');
  await until('a says the store is down', async () => storeLines(a, 'down') >= 1);
  t.equal(storeLines(a, 'down'), 1, 'one line for the transition, not one per request');
  const text = await scrapeMetrics(a.adminUrl);
  t.equal(sampleValue(text, 'mtls_limits_store_up'), 0);
  t.ok(sampleValue(text, 'mtls_limits_store_fallback_total') >= 6, 'every check answered locally is counted');
  const ready = await fetch(`${a.adminUrl}/readyz`);
  t.equal(ready.status, 200, 'still ready: limits work, only weaker');
  t.match(await ready.json(), { ready: true, degraded: { limitsStore: /Redis unreachable/ } });

  await redis.start();
  await until('both stores up again', async () => (await storeUp(a)) === 1 && (await storeUp(b)) === 1);
  t.equal(storeLines(a, 'up'), 2, 'the return is logged once too (after the first connection)');
  t.notMatch(await (await fetch(`${a.adminUrl}/readyz`)).json(), { degraded: {} }, 'no longer degraded');
  const again = await pki.client({ deviceId: 'after-restart-device' });
  const after: number[] = [];
  for (let i = 0; i < 6; i++) after.push((await get(i % 2 === 0 ? a : b, again)).status ?? 0);
  t.same(after, [200, 200, 200, 200, 429, 429], 'one bucket across both again');
});

t.test('a frozen Redis costs a request at most the command timeout, then nothing', async (t) => {
  const device = await pki.client({ deviceId: 'frozen-redis-device' });
  redis.pause();
  t.teardown(() => redis.resume());
  const started = Date.now();
  t.equal((await get(a, device)).status, 200, 'answered from the local bucket');
  const first = Date.now() - started;
  t.ok(first < 1_500, `the first request waited ${first} ms (TLS handshake plus at most 50 ms for Redis)`);
  await until('a says the store is down', async () => storeLines(a, 'down') >= 2);
  redis.resume();
  await until('a store up again', async () => (await storeUp(a)) === 1);
});
