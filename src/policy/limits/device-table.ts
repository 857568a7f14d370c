/**
 * What the sidecar remembers per device for its limits: the local rate buckets and the counts an
 * SRE reads on the admin endpoint. An LRU bounded by `trackedDevices`, so a fleet of a million
 * ids (or an attacker with many certificates) cannot grow memory without bound; a device
 * forgotten is remembered again with a full bucket, which is what a device idle long enough would
 * have anyway. Device ids stay in this process: the admin endpoint shows them, metrics never.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { BucketState } from './token-bucket.js';

/** The window of the request-rate estimate shown to SREs. */
const WINDOW_MS = 10_000;

/** One tracked device (or certificate, with `perDevice.key: fingerprint`). Mutated in place. */
export interface DeviceEntry {
  /** The device id as the verifier read it (shown on the admin endpoint only). */
  deviceId: string;
  /** Its bucket under `perDevice.requestsPerSecond`; created on first use. */
  bucket: BucketState | undefined;
  /** Its buckets under `limits.routes.<name>`; created on first use. */
  routeBuckets: Map<string, BucketState> | undefined;
  /** The Redis key part: a hash of the bucket key (see {@link storeKeyOf}); computed once. */
  storeKey: string | undefined;
  requests: number;
  limited: number;
  windowStartMs: number;
  windowCount: number;
  previousCount: number;
}

/** One row of the top consumers. */
export interface TopDevice {
  readonly deviceId: string;
  /** Requests per second over about the last 10 s (a sliding-window estimate). */
  readonly requestsPerSecond: number;
  /** Requests seen since this process started tracking the device. */
  readonly requests: number;
  /** Of those, refused 429 by a limit. */
  readonly limited: number;
  /** Connections it holds open now (on this process). */
  readonly connections: number;
}

export type TopOrder = 'rate' | 'requests' | 'connections';

/** The LRU of tracked devices. */
export class DeviceTable {
  private readonly entries: LRUCache<string, DeviceEntry>;

  constructor(max: number) {
    this.entries = new LRUCache<string, DeviceEntry>({ max });
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry for bucket key `key`, made on first sight; counts the request in its window. */
  touch(key: string, deviceId: string, nowMs: number): DeviceEntry {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { deviceId, bucket: undefined, routeBuckets: undefined, storeKey: undefined, requests: 0, limited: 0, windowStartMs: nowMs - (nowMs % WINDOW_MS), windowCount: 0, previousCount: 0 };
      this.entries.set(key, entry);
    }
    roll(entry, nowMs);
    entry.requests++;
    entry.windowCount++;
    return entry;
  }

  /** A row per entry (several per device with `key: fingerprint`), windows rolled to `nowMs`; connections 0. */
  *rows(nowMs: number): Generator<TopDevice> {
    for (const entry of this.entries.values()) {
      roll(entry, nowMs);
      yield {
        deviceId: entry.deviceId,
        requestsPerSecond: round((entry.previousCount * (1 - (nowMs - entry.windowStartMs) / WINDOW_MS) + entry.windowCount) / (WINDOW_MS / 1000)),
        requests: entry.requests,
        limited: entry.limited,
        connections: 0,
      };
    }
  }
}

/**
 * The Redis key part of a bucket key: a SHA-256 prefix (132 bits), never the raw id. Redis is
 * often shared infrastructure (other teams' `KEYS`, `MONITOR`, RDB dumps): the hash keeps a list
 * of the fleet's device ids out of it and bounds the key length whatever an id is. It is a
 * pseudonym, not a secret: whoever guesses an id can compute its key. Pure.
 */
export function storeKeyOf(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

/** Moves the entry's windows forward to `nowMs`. */
function roll(entry: DeviceEntry, nowMs: number): void {
  const elapsed = nowMs - entry.windowStartMs;
  if (elapsed < WINDOW_MS) return;
  entry.previousCount = elapsed < 2 * WINDOW_MS ? entry.windowCount : 0;
  entry.windowCount = 0;
  entry.windowStartMs = nowMs - (nowMs % WINDOW_MS);
}

/** Adds two rows of one device (several buckets, or several workers). Pure. */
export function addRows(a: TopDevice, b: TopDevice): TopDevice {
  return {
    deviceId: a.deviceId,
    requestsPerSecond: round(a.requestsPerSecond + b.requestsPerSecond),
    requests: a.requests + b.requests,
    limited: a.limited + b.limited,
    connections: a.connections + b.connections,
  };
}

/** Inserts `row` into `best` (sorted, highest first) if it ranks in the first `n`. */
function keepBest(best: TopDevice[], row: TopDevice, n: number, score: (d: TopDevice) => number): void {
  const s = score(row);
  if (best.length >= n && s <= score(best[best.length - 1]!)) return;
  let i = best.length;
  while (i > 0 && score(best[i - 1]!) < s) i--;
  best.splice(i, 0, row);
  if (best.length > n) best.pop();
}

/**
 * Merges rows into the top `n` by `order`: a device's rows (several buckets, several workers)
 * are added first. Pure.
 */
export function mergeTopDevices(lists: Iterable<Iterable<TopDevice>>, n: number, order: TopOrder): TopDevice[] {
  const byId = new Map<string, TopDevice>();
  for (const list of lists) for (const row of list) byId.set(row.deviceId, byId.has(row.deviceId) ? addRows(byId.get(row.deviceId)!, row) : row);
  const best: TopDevice[] = [];
  const score = (d: TopDevice) => (order === 'rate' ? d.requestsPerSecond : order === 'requests' ? d.requests : d.connections);
  for (const row of byId.values()) keepBest(best, row, n, score);
  return best;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
