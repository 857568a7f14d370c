/**
 * A token bucket per client address: `perMinute` sustained with bursts of `burst`. The set of
 * addresses is an LRU of bounded size, so a scan from many addresses costs bounded memory (an
 * evicted address starts again with a full bucket, which is the price of the bound).
 */
import { LRUCache } from 'lru-cache';

export interface RateLimiter {
  /** True if `address` may make one more request now; false means answer 429. */
  take(address: string): boolean;
  /** Seconds until `address` has a token again (for Retry-After). */
  retryAfterSeconds(address: string): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Creates a limiter. `now` is injectable for tests. */
export function createRateLimiter(o: { perMinute: number; burst: number; trackedAddresses: number; now?: () => number }): RateLimiter {
  const now = o.now ?? Date.now;
  const perMs = o.perMinute / 60_000;
  const buckets = new LRUCache<string, Bucket>({ max: o.trackedAddresses });
  const refill = (address: string): Bucket => {
    const t = now();
    const b = buckets.get(address) ?? { tokens: o.burst, at: t };
    b.tokens = Math.min(o.burst, b.tokens + (t - b.at) * perMs);
    b.at = t;
    buckets.set(address, b);
    return b;
  };
  return {
    take(address) {
      const b = refill(address);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    retryAfterSeconds(address) {
      const b = refill(address);
      return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / perMs / 1000);
    },
  };
}
