// The limits' parts without a network: the bucket arithmetic, the memory-sized cap, the device
// table's bound and the top-consumer ranking.
import t from 'tap';
import { createDeviceLimits, mergeTopDevices, resolveConnectionCap, takeToken, type DeviceLimitsOptions } from '../../src/policy/index.js';

t.test('a token bucket allows its burst at once, then its rate, and says how long to wait', async (t) => {
  const rate = { perSecond: 2, burst: 3 };
  const bucket = { tokens: 3, atMs: 0 };
  t.same([takeToken(bucket, rate, 0), takeToken(bucket, rate, 0), takeToken(bucket, rate, 0)], [0, 0, 0], 'the burst');
  t.equal(takeToken(bucket, rate, 0), 500, 'empty: one token comes in 500 ms');
  t.equal(takeToken(bucket, rate, 250), 250, 'half way there');
  t.equal(takeToken(bucket, rate, 500), 0, 'refilled');
  t.equal(takeToken(bucket, rate, 100_000), 0, 'a long pause refills to the burst, no more');
  t.equal(bucket.tokens, 2);
  t.equal(takeToken(bucket, rate, 50_000), 0, 'a clock stepping back refills nothing');
  t.equal(bucket.tokens, 1);
});

t.test('the connection cap: a number is split over workers; auto is sized from memory', async (t) => {
  t.same(resolveConnectionCap({ maxConnections: 1000 }, 3), { total: 1000, perProcess: 334, source: 'config' });
  const mib = 2 ** 20;
  const cgroup = resolveConnectionCap({ maxConnections: 'auto' }, 1, () => 256 * mib);
  t.equal(cgroup.source, 'cgroup');
  t.equal(cgroup.total, 1536, '256Mi: (256 - 96) MiB x 0.75 / 80 KiB');
  t.equal(resolveConnectionCap({ maxConnections: 'auto', memoryBudgetMiB: 1024 }, 2, () => 256 * mib).perProcess, 4454, 'the budget wins over the cgroup; each of 2 workers gets half');
  t.equal(resolveConnectionCap({ maxConnections: 'auto', memoryBudgetMiB: 64 }, 1).total, 64, 'a tiny budget still serves a floor');
  t.equal(resolveConnectionCap({ maxConnections: 'auto' }, 1, () => undefined).source, 'machine');
});

const options = (perDevice: Partial<DeviceLimitsOptions['perDevice']>, routes: DeviceLimitsOptions['routes'] = {}): DeviceLimitsOptions => ({
  perDevice: { requestsPerSecond: 0, key: 'deviceId', maxConnections: 0, maxConnectionsPerCertificate: 0, trackedDevices: 100, ...perDevice },
  routes,
  store: 'local',
});

t.test('nothing configured: no limits object, so the pipeline pays nothing', async (t) => {
  t.equal(createDeviceLimits(options({})), undefined);
});

t.test('rates per device, per route, and the device table stays bounded', async (t) => {
  let now = 1_000_000;
  const limits = createDeviceLimits(options({ requestsPerSecond: 1, burst: 2, trackedDevices: 100 }, { upload: { requestsPerSecond: 1 } }), { now: () => now })!;
  t.equal(limits.checkRequest('a', 'fa', 'default'), undefined);
  t.equal(limits.checkRequest('a', 'fa', 'default'), undefined);
  t.same(limits.checkRequest('a', 'fa', 'default'), { limit: 'rate', retryAfterSeconds: 1 }, 'a third at once is refused');
  t.equal(limits.checkRequest('b', 'fb', 'default'), undefined, 'another device has its own bucket');
  t.equal(limits.checkRequest('a', 'fa', 'upload'), undefined, 'a route with its own rate has its own bucket');
  t.same(limits.checkRequest('a', 'fa', 'upload'), { limit: 'rate', retryAfterSeconds: 1 });
  now += 1_000;
  t.equal(limits.checkRequest('a', 'fa', 'default'), undefined, 'a second later one more');
  for (let i = 0; i < 1_000; i++) limits.checkRequest(`flood-${i}`, `f-${i}`, 'default');
  t.equal(limits.trackedDevices, 100, 'a thousand ids, a hundred tracked');
  await limits.close();
});

t.test('connections per device and per certificate; released ones count no more', async (t) => {
  const limits = createDeviceLimits(options({ maxConnections: 2, maxConnectionsPerCertificate: 1 }))!;
  t.equal(limits.admitConnection('a', 'cert-1'), undefined);
  t.same(limits.admitConnection('a', 'cert-1'), { limit: 'device_connections', retryAfterSeconds: 1 }, 'one per certificate');
  t.equal(limits.admitConnection('a', 'cert-2'), undefined, 'a second certificate of the device');
  t.same(limits.admitConnection('a', 'cert-3')?.limit, 'device_connections', 'two per device');
  limits.releaseConnection('a', 'cert-1');
  t.equal(limits.admitConnection('a', 'cert-3'), undefined, 'room again once one closed');
  t.same(limits.topDevices(5, 'connections'), [{ deviceId: 'a', requestsPerSecond: 0, requests: 0, limited: 0, connections: 2 }], 'a device holding connections shows without requests');
});

t.test('top consumers: ranked, bounded, and one row per device across workers', async (t) => {
  const now = 50_000;
  const limits = createDeviceLimits(options({ requestsPerSecond: 1000, key: 'fingerprint' }), { now: () => now })!;
  for (let i = 0; i < 30; i++) limits.checkRequest('busy', 'busy-cert-1', 'default');
  for (let i = 0; i < 20; i++) limits.checkRequest('busy', 'busy-cert-2', 'default');
  for (let i = 0; i < 10; i++) limits.checkRequest('calm', 'calm-cert', 'default');
  limits.checkRequest('idle', 'idle-cert', 'default');
  const top = limits.topDevices(2, 'requests');
  t.same(top.map((d) => [d.deviceId, d.requests]), [['busy', 50], ['calm', 10]], 'two certificates of one device are one row');
  t.equal(top[0]!.requestsPerSecond, 5, '50 requests in the current 10 s window');
  const merged = mergeTopDevices([top, [{ deviceId: 'calm', requestsPerSecond: 9, requests: 90, limited: 3, connections: 1 }]], 1, 'requests');
  t.same(merged, [{ deviceId: 'calm', requestsPerSecond: 10, requests: 100, limited: 3, connections: 1 }], "workers' rows added before ranking");
});
