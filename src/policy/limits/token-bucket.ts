/**
 * The token bucket both stores share: `burst` tokens at most, refilled at `perSecond`, one taken
 * per request. The Redis script (redis-buckets.ts) is this same arithmetic in Lua, so a device
 * sees the same limit whether its bucket is local or shared.
 */

/** A bucket's rate: sustained requests per second and how many may come at once. */
export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

/** A bucket's state: tokens left as of `atMs`. Mutated in place (one object per tracked device). */
export interface BucketState {
  tokens: number;
  atMs: number;
}

/** A full bucket, as a device never seen before gets. */
export function fullBucket(rate: Rate, nowMs: number): BucketState {
  return { tokens: rate.burst, atMs: nowMs };
}

/**
 * Refills the bucket up to `nowMs` and takes one token. Returns 0 when a token was taken, else
 * the milliseconds until one will be there (nothing taken). A clock that steps back refills
 * nothing. Sync; never throws.
 */
export function takeToken(bucket: BucketState, rate: Rate, nowMs: number): number {
  if (nowMs > bucket.atMs) {
    bucket.tokens = Math.min(rate.burst, bucket.tokens + ((nowMs - bucket.atMs) * rate.perSecond) / 1000);
  }
  bucket.atMs = nowMs;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return Math.ceil(((1 - bucket.tokens) * 1000) / rate.perSecond);
}

/** `Retry-After` in whole seconds (at least 1: 0 would invite an immediate retry). Pure. */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}
