/**
 * Per-device limits: a request rate (token bucket per device, or per route and device) and open
 * connections per device id and per certificate. Buckets are local, or in Redis with
 * `store: redis` (one limit across replicas); when Redis fails a check is answered from the local
 * bucket at once, and the store says so (`onStoreStateChange`, `degraded()`).
 *
 * Open-connection counts are per process (each worker, each replica its own): a device may hold
 * `maxConnections` on each. They are exact counts of live sockets, never evicted.
 */
import { DeviceTable, mergeTopDevices, storeKeyOf, type DeviceEntry, type TopDevice, type TopOrder } from './device-table.js';
import { createRedisBuckets, type RedisBuckets } from './redis-buckets.js';
import { fullBucket, retryAfterSeconds, takeToken, type BucketState, type Rate } from './token-bucket.js';

/** Which limit refused: the metric label value and the access line's flag derive from it. */
export type LimitName = 'rate' | 'device_connections';

/** A refusal: answered 429 with `Retry-After: retryAfterSeconds`. */
export interface LimitRefusal {
  readonly limit: LimitName;
  readonly retryAfterSeconds: number;
}

export interface RouteRate {
  readonly requestsPerSecond: number;
  readonly burst?: number | undefined;
}

/** `config.limits`' per-device slice (the schema's shape). */
export interface DeviceLimitsOptions {
  readonly perDevice: {
    readonly requestsPerSecond: number;
    readonly burst?: number | undefined;
    readonly key: 'deviceId' | 'fingerprint';
    readonly maxConnections: number;
    readonly maxConnectionsPerCertificate: number;
    readonly trackedDevices: number;
  };
  readonly routes: Readonly<Record<string, RouteRate>>;
  readonly store: 'local' | 'redis';
  readonly redis?: { readonly url: string; readonly commandTimeoutMs: number; readonly keyPrefix: string } | undefined;
}

export interface DeviceLimitsHooks {
  /** Redis answers again (`up`) or stopped answering (with the error). Once per transition. */
  readonly onStoreStateChange?: (up: boolean, error?: Error) => void;
  /** A check answered from the local bucket because Redis is down or failed it. */
  readonly onStoreFallback?: () => void;
  readonly now?: () => number;
  /** How often a down Redis store is probed (ms). */
  readonly redisProbeIntervalMs?: number;
}

/** The limits the pipeline asks. */
export interface DeviceLimits {
  /**
   * A verified connection of `deviceId` with certificate `fingerprint` opened: counts it, or
   * refuses it (not counted) when the device or certificate already holds its maximum. Sync.
   * Every admitted connection must be given back through {@link releaseConnection} when it closes.
   */
  admitConnection(deviceId: string, fingerprint: string): LimitRefusal | undefined;
  releaseConnection(deviceId: string, fingerprint: string): void;
  /**
   * Takes a token for one request on `route`: undefined when allowed, else the refusal. Sync with
   * local buckets; a promise with Redis (resolving within the command timeout, never rejecting).
   */
  checkRequest(deviceId: string, fingerprint: string, route: string): LimitRefusal | undefined | Promise<LimitRefusal | undefined>;
  /** The `n` busiest devices of this process. Sync; an SRE's tool, never metrics. */
  topDevices(n: number, order: TopOrder): TopDevice[];
  /** Devices tracked now (bounded by `trackedDevices`). */
  readonly trackedDevices: number;
  /** Why the limits are weaker than configured now (Redis unreachable), or undefined. */
  degraded(): string | undefined;
  close(): Promise<void>;
}

const CONNECTION_REFUSAL: LimitRefusal = Object.freeze({ limit: 'device_connections', retryAfterSeconds: 1 });

/**
 * Builds the limits, or returns undefined when none is configured (the pipeline then pays
 * nothing). Sync: a Redis store connects in the background, answering locally until it is up.
 */
export function createDeviceLimits(options: DeviceLimitsOptions, hooks: DeviceLimitsHooks = {}): DeviceLimits | undefined {
  const { perDevice } = options;
  const defaultRate: Rate | undefined = perDevice.requestsPerSecond > 0 ? { perSecond: perDevice.requestsPerSecond, burst: perDevice.burst ?? perDevice.requestsPerSecond } : undefined;
  const routeRates = new Map<string, Rate>(Object.entries(options.routes).map(([name, r]) => [name, { perSecond: r.requestsPerSecond, burst: r.burst ?? r.requestsPerSecond }]));
  if (defaultRate === undefined && routeRates.size === 0 && perDevice.maxConnections === 0 && perDevice.maxConnectionsPerCertificate === 0) return undefined;

  const now = hooks.now ?? Date.now;
  const table = new DeviceTable(perDevice.trackedDevices);
  const byDevice = new Map<string, number>();
  const byCertificate = new Map<string, number>();
  const redis: RedisBuckets | undefined =
    options.store === 'redis' && options.redis
      ? createRedisBuckets({ url: options.redis.url, commandTimeoutMs: options.redis.commandTimeoutMs, probeIntervalMs: hooks.redisProbeIntervalMs, onStateChange: hooks.onStoreStateChange })
      : undefined;
  const keyPrefix = options.redis?.keyPrefix ?? '';

  const refuse = (entry: DeviceEntry, waitMs: number): LimitRefusal => {
    entry.limited++;
    return { limit: 'rate', retryAfterSeconds: retryAfterSeconds(waitMs) };
  };
  const takeLocal = (entry: DeviceEntry, route: string | undefined, rate: Rate, nowMs: number): LimitRefusal | undefined => {
    let bucket: BucketState | undefined;
    if (route === undefined) bucket = entry.bucket ??= fullBucket(rate, nowMs);
    else {
      entry.routeBuckets ??= new Map();
      bucket = entry.routeBuckets.get(route);
      if (bucket === undefined) entry.routeBuckets.set(route, (bucket = fullBucket(rate, nowMs)));
    }
    const wait = takeToken(bucket, rate, nowMs);
    return wait === 0 ? undefined : refuse(entry, wait);
  };

  return {
    admitConnection(deviceId, fingerprint) {
      const d = byDevice.get(deviceId) ?? 0;
      const c = byCertificate.get(fingerprint) ?? 0;
      if ((perDevice.maxConnections > 0 && d >= perDevice.maxConnections) || (perDevice.maxConnectionsPerCertificate > 0 && c >= perDevice.maxConnectionsPerCertificate)) {
        return CONNECTION_REFUSAL;
      }
      byDevice.set(deviceId, d + 1);
      byCertificate.set(fingerprint, c + 1);
      return undefined;
    },
    releaseConnection(deviceId, fingerprint) {
      decrement(byDevice, deviceId);
      decrement(byCertificate, fingerprint);
    },
    checkRequest(deviceId, fingerprint, route) {
      const nowMs = now();
      const key = perDevice.key === 'deviceId' ? deviceId : fingerprint;
      const entry = table.touch(key, deviceId, nowMs);
      const routeRate = routeRates.get(route);
      const rate = routeRate ?? defaultRate;
      if (rate === undefined) return undefined;
      const bucketRoute = routeRate === undefined ? undefined : route;
      if (redis === undefined) return takeLocal(entry, bucketRoute, rate, nowMs);
      if (!redis.up) {
        hooks.onStoreFallback?.();
        return takeLocal(entry, bucketRoute, rate, nowMs);
      }
      entry.storeKey ??= storeKeyOf(key);
      const redisKey = bucketRoute === undefined ? `${keyPrefix}d:${entry.storeKey}` : `${keyPrefix}r:${bucketRoute}:${entry.storeKey}`;
      return redis.take(redisKey, rate.perSecond, rate.burst).then(
        (wait) => (wait === 0 ? undefined : refuse(entry, wait)),
        () => {
          hooks.onStoreFallback?.();
          return takeLocal(entry, bucketRoute, rate, now());
        },
      );
    },
    topDevices(n, order) {
      const rows = [...table.rows(now())];
      const connectionRows = [...byDevice].map(([deviceId, connections]) => ({ deviceId, requestsPerSecond: 0, requests: 0, limited: 0, connections }));
      return mergeTopDevices([rows, connectionRows], n, order);
    },
    get trackedDevices() {
      return table.size;
    },
    degraded() {
      if (redis === undefined || redis.up) return undefined;
      return `Redis unreachable (${redis.lastError ?? 'unknown error'}): request rates are limited per process`;
    },
    close: async () => redis?.close(),
  };
}

function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
