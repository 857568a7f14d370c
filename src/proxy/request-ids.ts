/**
 * The ids a request carries upstream and into the access log: an `X-Request-Id`, and a W3C Trace
 * Context `traceparent` (https://www.w3.org/TR/trace-context/, version 00).
 *
 * A client's `X-Request-Id` is kept when well-formed: it lets a device's own logs meet the
 * sidecar's and the upstream's. It is a correlation label, not an authority — the access line ties
 * it to the verified device, so a device that reuses or copies ids only blurs its own requests —
 * but it is attacker-chosen and goes into logs and upstream, hence the bound and the alphabet.
 *
 * A valid `traceparent` is passed through unchanged rather than given a new parent-id: the sidecar
 * reports no spans, so a parent-id of its own would name a span no tracing backend ever receives
 * and cut the link between the client's span and the upstream's. Its record of the hop is the
 * access line, which carries the trace id. Checked per request, these are plain loops over a
 * string: no regular expression, no allocation but the ids generated.
 */
import { randomFillSync, randomUUID } from 'node:crypto';

/** The longest client `X-Request-Id` kept; longer ones are replaced. */
export const MAX_REQUEST_ID_LENGTH = 128;

/** RFC 9110 `tchar`: visible ASCII except delimiters. No space, quote, backslash, comma or `;`. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

/** True for 1–128 token characters. Pure. */
export function isWellFormedRequestId(value: string): boolean {
  const n = value.length;
  if (n === 0 || n > MAX_REQUEST_ID_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** Length of a version-00 traceparent: `00-` + 32 + `-` + 16 + `-` + 2. */
const TRACEPARENT_LENGTH = 55;

/**
 * The traceparent to forward for a client's value, or undefined when it must be replaced
 * (a new trace started). Version 00 must be exactly 55 characters and is returned as is. A later
 * version (the spec's forward compatibility) is read by its version-00 prefix, which must be
 * followed by the end or a `-`, and downgraded to version 00 with only the sampled flag kept,
 * as the spec requires of a vendor that knows version 00 only. Version `ff`, upper-case hex and
 * an all-zero trace-id or parent-id are invalid. Pure.
 */
export function forwardableTraceparent(value: string): string | undefined {
  const n = value.length;
  if (n < TRACEPARENT_LENGTH || !isLowerHex(value, 0, 2) || value.charCodeAt(2) !== DASH) return undefined;
  const v00 = value.charCodeAt(0) === ZERO && value.charCodeAt(1) === ZERO;
  if (v00) {
    if (n !== TRACEPARENT_LENGTH) return undefined;
  } else if (value.startsWith('ff') || (n > TRACEPARENT_LENGTH && value.charCodeAt(TRACEPARENT_LENGTH) !== DASH)) {
    return undefined;
  }
  if (value.charCodeAt(35) !== DASH || value.charCodeAt(52) !== DASH) return undefined;
  if (!isLowerHex(value, 3, 35) || isZeros(value, 3, 35)) return undefined;
  if (!isLowerHex(value, 36, 52) || isZeros(value, 36, 52)) return undefined;
  if (!isLowerHex(value, 53, 55)) return undefined;
  if (v00) return value;
  const sampled = parseInt(value.slice(53, 55), 16) & 1;
  return `00${value.slice(2, 53)}0${sampled}`;
}

/** The trace id of a traceparent as {@link forwardableTraceparent} or {@link IdSource} return it. */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

const DASH = 0x2d;
const ZERO = 0x30;

function isLowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function isZeros(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) !== ZERO) return false;
  return true;
}

/** Where new ids come from; injectable so tests can pin them. */
export interface IdSource {
  /** A fresh `X-Request-Id` (a random UUID). */
  requestId(): string;
  /** A fresh version-00 traceparent: random trace-id and parent-id, sampled flag set. */
  traceparent(): string;
}

/** Random bytes for 256 traceparents, refilled when used up: one system call per 256 requests. */
const POOL_TRACES = 256;
const TRACE_BYTES = 24; // 16 for the trace-id, 8 for the parent-id

/**
 * The random id source. The sampled flag of a new trace is set: the sidecar records every request
 * (its access line) and makes no sampling decision, and an upstream whose sampler follows its
 * parent (OpenTelemetry's default) would otherwise drop every trace of a client that sends none.
 * An all-zero id (the spec's invalid value, one chance in 2^64 or less) is drawn again.
 */
export function createIdSource(): IdSource {
  const pool = Buffer.allocUnsafe(POOL_TRACES * TRACE_BYTES);
  let next = pool.length;
  return {
    requestId: () => randomUUID(),
    traceparent() {
      for (;;) {
        if (next === pool.length) {
          randomFillSync(pool);
          next = 0;
        }
        const at = next;
        next += TRACE_BYTES;
        if (isZeroBytes(pool, at, at + 16) || isZeroBytes(pool, at + 16, at + TRACE_BYTES)) continue;
        // One hex conversion for both ids; the slices share its characters.
        const hex = pool.toString('hex', at, at + TRACE_BYTES);
        return `00-${hex.slice(0, 32)}-${hex.slice(32)}-01`;
      }
    },
  };
}

function isZeroBytes(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}
