/**
 * The one DER reader: strict, bounds-checked, for hostile input (CRLs, certificates, OCSP
 * requests at the CA's responder, OCSP responses' serials).
 *
 * Why not a generic ASN.1 library: a CRL can hold a million entries, and building an object graph
 * per entry costs seconds and hundreds of MB; decoding one small OCSPRequest through asn1js/pkijs
 * measured ~750 µs against ~30 µs for the responder's ECDSA signature. Walking the bytes and
 * slicing out what is needed is linear and allocation-light.
 *
 * Limits, all explicit:
 * - length: at most {@link MAX_LENGTH_OCTETS} length octets; every TLV must end within its parent
 *   (`limit`), so a truncated or over-long input throws instead of reading past its end; indefinite
 *   lengths (BER) and multi-octet tags (unused by PKIX) throw.
 * - count: {@link childrenOf} takes the most children the caller accepts (unbounded by default;
 *   the OCSP responder bounds every list, since a request is anonymous).
 * - depth: nothing here recurses. Callers walk a fixed schema one level at a time, so nesting
 *   depth is bounded by the code, never by the input.
 */
import { SidecarError } from '../../errors.js';

/** One TLV: `tag` is the identifier octet; content is `buf[contentStart, end)`, the whole `buf[start, end)`. */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** Identifier octets used in X.509 / CRL / OCSP structures. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Most length octets a TLV may use: 4 (up to 4 GiB - 1), since a million-entry CRL exceeds 16 MiB. */
export const MAX_LENGTH_OCTETS = 4;

/** Context-specific tag `[n]`, constructed (0xa0 | n) or primitive (0x80 | n). */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/**
 * The error every reader here throws for malformed input: `SidecarError` ERR_PKI, fault 'der',
 * a message that says where. It carries no stack: the message locates the fault, and the CA's
 * OCSP responder refuses anonymous hostile requests, where capturing a stack would be the
 * costliest part of refusing one.
 */
export function derError(message: string): SidecarError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new SidecarError('ERR_PKI', 'der', `malformed DER: ${message}`);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Reads the TLV starting at `pos`, which must end at or before `limit`. Sync; throws
 * {@link derError} on a truncated input, an indefinite or over-long length, or a multi-octet tag.
 */
export function readTlv(buf: Uint8Array, pos: number, limit: number = buf.length): Tlv {
  if (pos + 2 > limit) throw derError(`truncated header at ${pos}`);
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw derError(`multi-byte tag at ${pos}`);
  let len = buf[pos + 1] as number;
  let contentStart = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw derError(`indefinite length at ${pos}`);
    if (n > MAX_LENGTH_OCTETS) throw derError(`length too long at ${pos}`);
    if (contentStart + n > limit) throw derError(`truncated length at ${pos}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[contentStart + i] as number);
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw derError(`content overruns its parent at ${pos}`);
  return { tag, start: pos, contentStart, end };
}

/** Reads a TLV and checks its tag. Sync; throws {@link derError} on mismatch. */
export function expectTlv(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  return expectTag(readTlv(buf, pos, limit), tag, what);
}

/** `tlv` if it is present with this tag. Sync; throws {@link derError} naming `what` otherwise. */
export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv === undefined) throw derError(`${what} missing`);
  if (tlv.tag !== tag) throw derError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  return tlv;
}

/**
 * How many children {@link childrenOf} lists unless told otherwise: more than any certificate,
 * CRL or OCSP structure walked this way has (a CRL's revoked list is read by its own fast path),
 * few enough that 64 MiB of hostile two-byte elements cannot become millions of objects.
 */
export const MAX_CHILDREN = 256;

/**
 * The direct children of a constructed TLV. Sync; throws {@link derError} on malformed content or
 * more than `max` children (which bounds the work an anonymous input can cause).
 */
export function childrenOf(buf: Uint8Array, parent: Tlv, max: number = MAX_CHILDREN): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.contentStart; pos < parent.end; ) {
    if (out.length === max) throw derError(`more than ${max} elements at ${parent.start}`);
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** The content octets of a TLV (a view, not a copy). */
export function contentOf(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.contentStart, tlv.end);
}

/** The whole encoding (header + content) of a TLV (a view, not a copy). */
export function encodingOf(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.start, tlv.end);
}

/** Dotted-decimal form of an OBJECT IDENTIFIER's content. Sync; throws on a truncated arc. */
export function decodeOid(content: Uint8Array): string {
  const arcs: number[] = [];
  let value = 0;
  let inArc = false;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    inArc = (byte & 0x80) !== 0;
    if (!inArc) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  if (inArc || arcs.length === 0) throw derError('truncated OID');
  return arcs.join('.');
}

/** Dotted OID of an OID TLV. Sync; throws {@link derError} if `tlv` is not an OID. */
export function readOid(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== TAG.OID) throw derError('expected an OID');
  return decodeOid(contentOf(buf, tlv));
}

/** Whether the TLV after an extension's OID is critical=TRUE (DER omits the FALSE default). */
export function isCriticalFlag(buf: Uint8Array, afterOid: Tlv): boolean {
  return afterOid.tag === TAG.BOOLEAN && buf[afterOid.contentStart] !== 0;
}
