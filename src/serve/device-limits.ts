/**
 * Wires the limits of policy/limits into this process: the connection cap's share, the
 * per-device limits with their Redis store reported through metrics, one log line per store
 * transition and a `/readyz` degraded note, and the top consumers for the admin endpoint.
 */
import type { LimitsOptions } from '../config/index.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import { createDeviceLimits, resolveConnectionCap, type ConnectionCap, type DeviceLimits, type TopDevice, type TopOrder } from '../policy/index.js';

/** How often the tracked-devices gauge is refreshed. */
const GAUGE_INTERVAL_MS = 5_000;

export interface LimitsWiring {
  readonly cap: ConnectionCap;
  /** Undefined when no per-device limit is configured. */
  readonly deviceLimits: DeviceLimits | undefined;
  /** The store's degraded note, or undefined. */
  degraded(): string | undefined;
  /** The busiest devices of this process, or undefined when nothing is tracked. */
  topDevices(n: number, order: TopOrder): TopDevice[] | undefined;
  close(): Promise<void>;
}

/** Builds the limits of one process of `workers`. Sync; never waits for Redis. */
export function wireLimits(limits: LimitsOptions, workers: number, metrics: Metrics, logger: Logger): LimitsWiring {
  const cap = resolveConnectionCap(limits, workers);
  metrics.connectionsMax.set(cap.perProcess);
  if (limits.store === 'redis') {
    metrics.registry.registerMetric(metrics.limitsStoreUp);
    metrics.limitsStoreUp.set(0);
  }
  const deviceLimits = createDeviceLimits(limits, {
    onStoreStateChange(up, error) {
      metrics.limitsStoreUp.set(up ? 1 : 0);
      if (up) logger.info({ event: 'limits_store', state: 'up' }, 'Redis answers: request rates are limited across replicas');
      else logger.warn({ event: 'limits_store', state: 'down', error: error?.message }, 'Redis unreachable: request rates fall back to per-process limits');
    },
    onStoreFallback: () => metrics.limitsStoreFallbacks.inc(),
  });
  logger.info(
    { event: 'limits', maxConnections: cap.total, perProcess: cap.perProcess, sizedFrom: cap.source, budgetMiB: cap.budgetBytes === undefined ? undefined : Math.round(cap.budgetBytes / 2 ** 20), perDevice: deviceLimits !== undefined, store: limits.store },
    'connection cap and per-device limits',
  );
  const gauge = setInterval(() => metrics.limitsTrackedDevices.set(deviceLimits?.trackedDevices ?? 0), GAUGE_INTERVAL_MS);
  gauge.unref();
  return {
    cap,
    deviceLimits,
    degraded: () => deviceLimits?.degraded(),
    topDevices: (n, order) => deviceLimits?.topDevices(n, order),
    async close() {
      clearInterval(gauge);
      await deviceLimits?.close();
    },
  };
}
