/**
 * Heap per tracked device of the per-device limits, in a fresh process (run by limits.mjs
 * --memory): N devices through createDeviceLimits (dist/), with the ids built (flat) and a
 * warm-up done before the first reading, so neither code nor string representations are counted.
 * The id strings themselves are not counted (the verifier holds them too).
 *
 *   node --expose-gc test/bench/limits-memory.mjs deviceId|fingerprint N    # prints one JSON line
 */
import { join } from 'node:path';

const [key, n] = [process.argv[2] ?? 'deviceId', Number(process.argv[3] ?? 100_000)];
const { createDeviceLimits } = await import(join(import.meta.dirname, '../../dist/policy/index.js'));
const options = (trackedDevices) => ({ perDevice: { requestsPerSecond: 10, key, maxConnections: 0, maxConnectionsPerCertificate: 0, trackedDevices }, routes: {}, store: 'local' });
// JSON round trip: flat strings, so a Map key flattening a rope is not counted as negative growth.
const ids = JSON.parse(JSON.stringify(Array.from({ length: n }, (_, i) => `urn-style-device-${String(i).padStart(7, '0')}`)));
const fps = JSON.parse(JSON.stringify(Array.from({ length: n }, (_, i) => `${i.toString(16).padStart(8, '0')}${'ab'.repeat(28)}`)));
const warm = createDeviceLimits(options(1_000));
for (let i = 0; i < 3_000; i++) warm.checkRequest(ids[i], fps[i], 'default');
const settle = async () => {
  await new Promise((r) => setTimeout(r, 100));
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const before = await settle();
const limits = createDeviceLimits(options(n));
for (let i = 0; i < n; i++) limits.checkRequest(ids[i], fps[i], 'default');
const after = await settle();
console.log(JSON.stringify({ key, devices: limits.trackedDevices, bytesPerDevice: Math.round((after - before) / n) }));
