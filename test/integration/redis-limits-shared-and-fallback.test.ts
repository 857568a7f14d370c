// store: redis. Two sidecars sharing one real redis-server enforce one bucket per device; Redis
// keys carry a hash, never the device id. Redis killed: both fall back to local buckets at once
// (requests keep being answered), say so once in the log, in mtls_limits_store_up and under
// /readyz's degraded, still ready; Redis back: shared limits again. A frozen Redis costs a
// request at most the command timeout.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { openKeepAlive, type KaConn } from '../fixtures/keep-alive.js';
import { sampleValue, scrapeMetrics } from '../fixtures/metrics-text.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestRedis } from '../fixtures/redis-server.js';
import { startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';
import { waitFor } from '../fixtures/wait.js';

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
/**
 * Sends `count` requests for one device, alternating over keep-alive connections to `sidecars`,
 * and returns their statuses and how long they took (the bucket refills 1/s meanwhile).
 */
async function burst(deviceId: string, sidecars: TestSidecar[], count: number): Promise<{ statuses: number[]; seconds: number }> {
  const device = await pki.client({ deviceId });
  const conns: KaConn[] = await Promise.all(sidecars.map((sc) => openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: device.chainPem, key: device.keyPem })));
  const started = Date.now();
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push((await conns[i % conns.length]!.get()).status ?? 0);
  const seconds = (Date.now() - started) / 1000;
  conns.forEach((c) => c.close());
  return { statuses, seconds };
}
/** 200s allowed in `seconds` by one bucket of burst 4 refilled at 1/s. */
const oneBucket = (seconds: number) => 4 + Math.ceil(seconds);
const passed = (statuses: number[]) => statuses.filter((s) => s === 200).length;
const storeLines = (sc: TestSidecar, state: string) => sc.logs.filter((l) => l.event === 'limits_store' && l.state === state).length;

t.test('two sidecars, one Redis: one limit per device', async (t) => {
  t.ok(await waitFor(() => storeLines(a, 'up') === 1 && storeLines(b, 'up') === 1, 10_000), 'both stores connected');
  t.equal(await storeUp(a), 1);
  const { statuses, seconds } = await burst('shared-bucket-device', [a, b], 12);
  // Each sidecar alone would allow a burst of 4 (8 at once); together the device has 4.
  t.same(statuses.slice(0, 4), [200, 200, 200, 200], `the burst passes across both: ${statuses}`);
  t.ok(passed(statuses) <= oneBucket(seconds) && passed(statuses) < 8, `then one bucket refuses on both: ${statuses} in ${seconds} s`);
  t.ok(statuses.every((s) => s === 200 || s === 429));
  const keys = execFileSync('redis-cli', ['-p', String(redis.port), '--scan']).toString().trim().split('\n');
  t.ok(keys.length >= 1 && keys.every((k) => k.startsWith('mtls:rl:d:')), `keys under the prefix: ${keys}`);
  t.notMatch(keys.join(' '), /shared-bucket-device/, 'no device id in Redis');
  const ttl = Number(execFileSync('redis-cli', ['-p', String(redis.port), 'pttl', keys[0]!]).toString());
  t.ok(ttl > 0 && ttl <= 5_000, `keys expire once the bucket would be full again (pttl ${ttl})`);
});

t.test('Redis gone: local buckets at once, said once; Redis back: shared again', async (t) => {
  await redis.stop();
  const { statuses, seconds } = await burst('fallback-device', [a], 8);
  t.same(statuses.slice(0, 4), [200, 200, 200, 200], 'sidecar a serves the device from its own bucket');
  t.ok(passed(statuses) <= oneBucket(seconds) && statuses.includes(429), `and limits it there: ${statuses} in ${seconds} s`);
  t.ok(seconds < 3, 'no request waited for Redis');
  t.ok(await waitFor(() => storeLines(a, 'down') >= 1, 10_000), 'a says the store is down');
  t.equal(storeLines(a, 'down'), 1, 'one line for the transition, not one per request');
  const text = await scrapeMetrics(a.adminUrl);
  t.equal(sampleValue(text, 'mtls_limits_store_up'), 0);
  t.ok(sampleValue(text, 'mtls_limits_store_fallback_total') >= 6, 'every check answered locally is counted');
  const ready = await fetch(`${a.adminUrl}/readyz`);
  t.equal(ready.status, 200, 'still ready: limits work, only weaker');
  t.match(await ready.json(), { ready: true, degraded: { limitsStore: /Redis unreachable/ } });

  await redis.start();
  t.ok(await waitFor(() => storeLines(a, 'up') === 2 && storeLines(b, 'up') === 2, 10_000), 'both stores up again');
  t.equal(await storeUp(a), 1);
  t.equal(storeLines(a, 'up'), 2, 'the return is logged once too (after the first connection)');
  t.notMatch(await (await fetch(`${a.adminUrl}/readyz`)).json(), { degraded: {} }, 'no longer degraded');
  const again = await burst('after-restart-device', [a, b], 12);
  t.ok(passed(again.statuses) <= oneBucket(again.seconds) && passed(again.statuses) < 8, `one bucket across both again: ${again.statuses}`);
  t.ok(Number(execFileSync('redis-cli', ['-p', String(redis.port), 'dbsize']).toString()) >= 1, 'the bucket is in the new Redis');
});

t.test('a frozen Redis costs a request at most the command timeout, then nothing', async (t) => {
  const device = await pki.client({ deviceId: 'frozen-redis-device' });
  redis.pause();
  t.teardown(() => redis.resume());
  const started = Date.now();
  t.equal((await get(a, device)).status, 200, 'answered from the local bucket');
  const first = Date.now() - started;
  t.ok(first < 1_500, `the first request waited ${first} ms (TLS handshake plus at most 50 ms for Redis)`);
  t.ok(await waitFor(() => storeLines(a, 'down') >= 2, 10_000), 'a says the store is down');
  redis.resume();
  t.ok(await waitFor(() => storeLines(a, 'up') >= 3, 10_000), 'and up again once Redis answers');
});
