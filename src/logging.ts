/**
 * JSON-lines logging (pino) and a rate limiter for the lines a client can cause in bulk, so a
 * bot flood of bad handshakes cannot fill a disk: past the limit, lines are counted instead and a
 * summary line reports what was suppressed. Never given key material: callers log subjects,
 * fingerprints and reasons only.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** Where lines go (tests); default stdout. */
  readonly destination?: DestinationStream;
  /**
   * Write each line to stdout before the call returns. For audit records (the CA's issuance and
   * revocation lines): a line buffered in memory is lost on kill -9 while the client already has
   * its certificate. The cost is a write(2) per line, and a blocked log sink blocks the process
   * instead of dropping records. Default false: the sidecar's access log is buffered (see flushLogs).
   */
  readonly sync?: boolean;
}

/** Every stdout destination created here, so shutdown can flush them all. */
const stdoutDestinations = new Set<ReturnType<typeof pino.destination>>();

/** Creates a process logger. */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const settings = {
    level,
    base: { service: 'mtls-sidecar', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.destination) return pino(settings, options.destination);
  const stdout = pino.destination({ dest: 1, sync: options.sync ?? false });
  stdoutDestinations.add(stdout);
  return pino(settings, stdout);
}

/**
 * Writes out every buffered log line now, synchronously. Called on the way out (after a drain,
 * before process.exit) so the last lines of a stopping process — the drain, the signal, the final
 * access lines — are never lost. Never throws: a closed stdout has nowhere to write to anyway.
 */
export function flushLogs(): void {
  for (const d of stdoutDestinations) {
    try {
      d.flushSync();
    } catch {
      /* stdout closed or not writable: nothing can be saved */
    }
  }
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
