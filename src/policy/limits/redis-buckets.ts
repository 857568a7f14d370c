/**
 * Request-rate buckets in Redis, so N sidecar replicas enforce one limit per device. One atomic
 * Lua script per check (ioredis sends it with EVALSHA and falls back to EVAL when Redis does not
 * hold it yet, e.g. after a restart), using Redis's own clock so replicas whose clocks differ
 * still share one bucket. Keys expire once the bucket would be full again, so an idle device
 * costs Redis nothing.
 *
 * Failure is bounded and local: a check that errors or takes longer than `commandTimeoutMs`
 * rejects, the store marks itself down at once and its caller answers from local buckets; while
 * down no command is sent on the request path (a hung Redis would otherwise add the timeout to
 * every request), and a background PING every `probeIntervalMs` switches it back once Redis
 * answers. Each transition is reported once through `onStateChange`.
 */
import { Redis } from 'ioredis';

/**
 * KEYS[1]: the bucket. ARGV: tokens per second, burst. Returns 0 when a token was taken, else
 * the ms until one will be there. The same arithmetic as token-bucket.ts's `takeToken`.
 */
const TAKE_TOKEN_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'v', 't')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
elseif now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'v', tostring(tokens), 't', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
`;

export interface RedisBucketOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  /** How often a down store tries Redis again. Default 500 ms. */
  readonly probeIntervalMs?: number;
  /** Called once per transition: up (Redis answers) or down (with what failed). Never on the request path's result. */
  readonly onStateChange?: (up: boolean, error?: Error) => void;
}

/** The Redis side of the limits. */
export interface RedisBuckets {
  /** True while Redis answers; false before the first answer and after a failure until a probe succeeds. */
  readonly up: boolean;
  /** What went wrong last, while down. */
  readonly lastError: string | undefined;
  /**
   * Takes a token from bucket `key` (0) or says how many ms until one is there. Async; rejects
   * (and marks the store down) on any error or after `commandTimeoutMs`. Call only while `up`.
   */
  take(key: string, perSecond: number, burst: number): Promise<number>;
  /** Stops probing and closes the connection. */
  close(): Promise<void>;
}

type WithTake = Redis & { mtlsTakeToken(key: string, perSecond: number, burst: number): Promise<number> };

/** Connects in the background (never waits for Redis) and starts down until Redis first answers. Sync. */
export function createRedisBuckets(options: RedisBucketOptions): RedisBuckets {
  const client = new Redis(options.url, {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(1_000, options.commandTimeoutMs),
    // Nothing waits for a connection: a command while disconnected fails at once and the caller
    // answers locally. Reconnecting goes on in the background (ioredis's own backoff, ≤ 2 s).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(times * 100, 2_000),
  }) as WithTake;
  client.defineCommand('mtlsTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN_LUA });

  let up = false;
  let lastError: string | undefined = 'not connected yet';
  let closed = false;
  const setState = (next: boolean, error?: Error) => {
    if (closed) return;
    if (!next) lastError = error?.message ?? 'unknown error';
    if (next === up) return;
    up = next;
    if (next) lastError = undefined;
    options.onStateChange?.(next, error);
  };
  // ioredis emits connection errors here; without a listener they would be unhandled.
  client.on('error', (err: Error) => setState(false, err));
  client.on('close', () => setState(false, new Error('connection to Redis closed')));

  let probing = false;
  const probe = setInterval(() => {
    if (up || probing || client.status !== 'ready') return;
    probing = true;
    client.ping().then(
      () => setState(true),
      (err: Error) => setState(false, err),
    ).finally(() => (probing = false));
  }, options.probeIntervalMs ?? 500);
  probe.unref();
  client.on('ready', () => {
    client.ping().then(() => setState(true), (err: Error) => setState(false, err));
  });

  return {
    get up() {
      return up;
    },
    get lastError() {
      return lastError;
    },
    take(key, perSecond, burst) {
      return client.mtlsTakeToken(key, perSecond, burst).then(Number, (err: Error) => {
        setState(false, err);
        throw err;
      });
    },
    async close() {
      closed = true;
      clearInterval(probe);
      client.disconnect();
    },
  };
}
