/**
 * JSON-lines logging (pino) and a rate limiter for the lines a client can cause in bulk, so a
 * bot flood of bad handshakes cannot fill a disk: past the limit, lines are counted instead and a
 * summary line reports what was suppressed. Never given key material: callers log subjects,
 * fingerprints and reasons only.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Creates the process logger. `destination` defaults to stdout. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'mtls-sidecar', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A token bucket per event name, with a periodic summary of what it dropped. */
export interface LogLimiter {
  /** True if a line for `event` may be written now; otherwise the line is counted as suppressed. */
  allow(event: string, detail?: string): boolean;
  /** Writes the pending summary now (also runs on its own every interval). */
  flush(): void;
  stop(): void;
}

export interface LogLimiterOptions {
  /** Sustained lines per second per event. */
  readonly perSecond: number;
  /** Lines allowed in a burst before the rate applies. */
  readonly burst: number;
  readonly summaryIntervalMs: number;
  readonly logger: Logger;
  readonly onSuppressed?: (event: string) => void;
  readonly now?: () => number;
}

/** Creates the limiter; its summary timer is unref'd so it never holds the process open. */
export function createLogLimiter(options: LogLimiterOptions): LogLimiter {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  const suppressed = new Map<string, { total: number; byDetail: Map<string, number> }>();

  function allow(event: string, detail = ''): boolean {
    const t = now();
    const b = buckets.get(event) ?? { tokens: options.burst, at: t };
    b.tokens = Math.min(options.burst, b.tokens + ((t - b.at) / 1000) * options.perSecond);
    b.at = t;
    buckets.set(event, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    const s = suppressed.get(event) ?? { total: 0, byDetail: new Map<string, number>() };
    s.total++;
    // Details are closed sets (reasons), so this map stays small.
    s.byDetail.set(detail, (s.byDetail.get(detail) ?? 0) + 1);
    suppressed.set(event, s);
    options.onSuppressed?.(event);
    return false;
  }

  function flush(): void {
    for (const [event, s] of suppressed) {
      options.logger.warn(
        { event: 'log_suppressed', suppressedEvent: event, suppressed: s.total, byReason: Object.fromEntries(s.byDetail), intervalMs: options.summaryIntervalMs },
        `suppressed ${s.total} ${event} log lines (rate limit)`,
      );
    }
    suppressed.clear();
  }

  const timer = setInterval(flush, options.summaryIntervalMs);
  timer.unref();
  return {
    allow,
    flush,
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}
