/**
 * A compact, immutable set of certificate serials for big CRLs.
 *
 * Why not `Set<string>`: with a million entries, a million strings churn the young generation and
 * the benchmark (test/bench/crl-load.mjs) measured ~20 ms GC pauses while loading, plus ~50 MB of
 * heap. Here the serial bytes live in one Buffer, their ends in a Uint32Array, and an
 * open-addressing hash table (FNV-1a, linear probing, load ≤ 0.5) in an Int32Array: no object per
 * entry, so no GC work, ~28 MB for 1M 16-byte serials, and O(1) lookups.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { NEGATIVE } from './asn1/index.js';

/** Read side: membership by canonical serial key (see asn1/serial.ts `serialKeyOf`). */
export interface SerialSet {
  readonly size: number;
  /** Bytes of serial data, offsets and hash table actually in use (for logs). */
  readonly byteLength: number;
  has(serialKey: string): boolean;
}

/** Write side, used once while parsing a CRL. */
export interface SerialSetBuilder {
  /** Adds `src[start, end)`: canonical magnitude bytes (no leading zero octets, not negative). */
  addBytes(src: Uint8Array, start: number, end: number): void;
  /** Adds a canonical key string (the slow path, for unusual encodings and negative serials). */
  addKey(serialKey: string): void;
  /** Builds the hash table, yielding to the event loop every `sliceMs`. Call once. */
  finish(sliceMs: number): Promise<SerialSet>;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Creates a builder. `maxBytes`/`maxEntries` size the buffers up front (they still grow by
 * doubling if exceeded). Over-sizing is cheap: untouched pages of a large allocation are never
 * resident, whereas growing or trimming copies tens of MB on the event loop.
 */
export function createSerialSetBuilder(maxBytes: number, maxEntries: number): SerialSetBuilder {
  let bytes = Buffer.allocUnsafe(Math.max(256, maxBytes));
  let ends = new Uint32Array(Math.max(16, maxEntries));
  let count = 0;
  let used = 0;
  // Negative serials are non-conforming and rare; a plain Set keeps them apart from positives.
  const negatives = new Set<string>();

  const addBytes = (src: Uint8Array, start: number, end: number): void => {
    const len = end - start;
    if (used + len > bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(bytes.length * 2, used + len));
      bytes.copy(grown, 0, 0, used);
      bytes = grown;
    }
    if (count === ends.length) {
      const grown = new Uint32Array(ends.length * 2);
      grown.set(ends);
      ends = grown;
    }
    for (let k = start; k < end; k++) bytes[used++] = src[k] as number; // serials are ≤ 20 bytes: a loop beats a native call
    ends[count++] = used;
  };

  return {
    addBytes,
    addKey(key) {
      if (key.startsWith(NEGATIVE)) negatives.add(key);
      else {
        const b = Buffer.from(key, 'latin1');
        addBytes(b, 0, b.length);
      }
    },
    async finish(sliceMs) {
      const data = bytes;
      const stops = ends;
      let capacity = 16;
      while (capacity < count * 2) capacity *= 2;
      const mask = capacity - 1;
      const slots = new Int32Array(capacity); // entry index + 1; 0 = empty
      const startOf = (i: number): number => (i === 0 ? 0 : (stops[i - 1] as number));
      let unique = 0;
      let sliceStart = performance.now();
      for (let i = 0; i < count; i++) {
        const s = startOf(i);
        const e = stops[i] as number;
        let h = FNV_OFFSET;
        for (let k = s; k < e; k++) h = Math.imul(h ^ (data[k] as number), FNV_PRIME);
        let p = (h >>> 0) & mask;
        let duplicate = false;
        for (let slot = slots[p] as number; slot !== 0; slot = slots[p] as number) {
          const os = startOf(slot - 1);
          const oe = stops[slot - 1] as number;
          if (oe - os === e - s) {
            // A byte loop, not Buffer#compare: a native call per collision cost 3x the whole build.
            let k = 0;
            while (k < e - s && data[os + k] === data[s + k]) k++;
            if (k === e - s) {
              duplicate = true;
              break;
            }
          }
          p = (p + 1) & mask;
        }
        if (!duplicate) {
          slots[p] = i + 1;
          unique++;
        }
        if ((i & 0xff) === 0xff && performance.now() - sliceStart >= sliceMs) {
          await yieldToEventLoop();
          sliceStart = performance.now();
        }
      }
      const size = unique + negatives.size;
      return {
        size,
        byteLength: used + count * 4 + capacity * 4,
        has(key) {
          if (key.startsWith(NEGATIVE)) return negatives.has(key);
          const len = key.length;
          let h = FNV_OFFSET;
          for (let k = 0; k < len; k++) h = Math.imul(h ^ key.charCodeAt(k), FNV_PRIME);
          let p = (h >>> 0) & mask;
          for (let slot = slots[p] as number; slot !== 0; slot = slots[p] as number) {
            const os = startOf(slot - 1);
            if ((stops[slot - 1] as number) - os === len) {
              let k = 0;
              while (k < len && data[os + k] === key.charCodeAt(k)) k++;
              if (k === len) return true;
            }
            p = (p + 1) & mask;
          }
          return false;
        },
      };
    },
  };
}
