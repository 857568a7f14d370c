/**
 * A minimal, strict DER reader: just what CRLs, certificates and OCSP fields need.
 *
 * Why not a generic ASN.1 library here: a CRL can hold a million entries, and building an object
 * graph per entry costs seconds and hundreds of MB. Walking the bytes and slicing out what we need
 * is linear and allocation-light. Every read is bounds-checked against its parent, so a truncated
 * or hostile input raises a `SidecarError` instead of reading past its end.
 */
import { SidecarError } from '../errors.js';

/** One TLV: `tag` is the identifier octet; content is `buf[contentStart, end)`. */
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

/** Context-specific tag `[n]`, constructed (0xa0 | n) or primitive (0x80 | n). */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/** The error every reader here throws for malformed input (ERR_REVOCATION_SOURCE, fault 'der'). */
export function derError(message: string): SidecarError {
  return new SidecarError('ERR_REVOCATION_SOURCE', 'der', `malformed DER: ${message}`);
}

/**
 * Reads the TLV starting at `pos`, which must end at or before `limit`. Sync; throws
 * `SidecarError` on a truncated input, an indefinite or over-long length, or a multi-byte tag
 * (none of which DER-encoded PKIX structures use).
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
    if (n > 4) throw derError(`length too long at ${pos}`);
    if (contentStart + n > limit) throw derError(`truncated length at ${pos}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[contentStart + i] as number);
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw derError(`content overruns its parent at ${pos}`);
  return { tag, start: pos, contentStart, end };
}

/** Reads a TLV and checks its tag. Sync; throws `SidecarError` on mismatch. */
export function expectTlv(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const tlv = readTlv(buf, pos, limit);
  if (tlv.tag !== tag) {
    throw derError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  }
  return tlv;
}

/** All direct children of a constructed TLV. Sync; throws on malformed content. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.contentStart;
  while (pos < parent.end) {
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

/** Dotted OID of an OID TLV. Sync; throws `SidecarError` if `tlv` is not an OID. */
export function readOid(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== TAG.OID) throw derError('expected an OID');
  return decodeOid(contentOf(buf, tlv));
}

function digits(s: string, from: number, count: number): number {
  let v = 0;
  for (let i = from; i < from + count; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) throw derError(`bad time digit in "${s}"`);
    v = v * 10 + c;
  }
  return v;
}

/**
 * UTCTime or GeneralizedTime → milliseconds since the epoch. Only the `Z` forms PKIX mandates are
 * accepted (fractional seconds tolerated in GeneralizedTime). Sync; throws `SidecarError`.
 */
export function decodeTime(buf: Uint8Array, tlv: Tlv): number {
  const s = Buffer.from(contentOf(buf, tlv)).toString('latin1');
  let year: number;
  let rest: number;
  if (tlv.tag === TAG.UTC_TIME) {
    if (s.length !== 13) throw derError(`bad UTCTime "${s}"`);
    const yy = digits(s, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
    rest = 2;
  } else if (tlv.tag === TAG.GENERALIZED_TIME) {
    if (s.length < 15) throw derError(`bad GeneralizedTime "${s}"`);
    year = digits(s, 0, 4);
    rest = 4;
  } else {
    throw derError('expected a time');
  }
  if (!s.endsWith('Z')) throw derError(`time without Z: "${s}"`);
  let ms = 0;
  const fraction = s.slice(rest + 10, -1);
  if (fraction.length > 0) {
    if (tlv.tag !== TAG.GENERALIZED_TIME || !/^\.\d+$/.test(fraction)) throw derError(`bad time "${s}"`);
    ms = Math.floor(Number(`0${fraction}`) * 1000);
  }
  return Date.UTC(
    year,
    digits(s, rest, 2) - 1,
    digits(s, rest + 2, 2),
    digits(s, rest + 4, 2),
    digits(s, rest + 6, 2),
    digits(s, rest + 8, 2),
    ms,
  );
}

/**
 * Canonical key of an INTEGER serial: its magnitude bytes without leading zero octets, as a latin1
 * string (one char per byte). Negative serials (non-conforming but seen in the wild) get a NUL
 * prefix: a positive key never starts with a zero byte, so the two can never collide.
 */
export function serialKeyOf(content: Uint8Array): string {
  if (content.length === 0) throw derError('empty INTEGER');
  if ((content[0] as number) & 0x80) {
    const magnitude = Buffer.from(content);
    // Two's complement negate: invert, then add one.
    for (let i = 0; i < magnitude.length; i++) magnitude[i] = ~(magnitude[i] as number) & 0xff;
    for (let i = magnitude.length - 1; i >= 0; i--) {
      magnitude[i] = ((magnitude[i] as number) + 1) & 0xff;
      if (magnitude[i] !== 0) break;
    }
    return `${NEGATIVE}${stripLeadingZeros(magnitude).toString('latin1')}`;
  }
  return stripLeadingZeros(Buffer.from(content.buffer, content.byteOffset, content.length)).toString('latin1');
}

/** Prefix of a negative serial's key (see `serialKeyOf`). */
export const NEGATIVE = '\u0000';

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * Serial key → the hex form Node's `X509Certificate.serialNumber` uses (OpenSSL's BN_bn2hex):
 * upper-case, two digits per byte, no leading zero *bytes* (so 10 is "0A"), "0" for zero.
 */
export function serialHexOf(key: string): string {
  const negative = key.startsWith(NEGATIVE);
  const hex = Buffer.from(negative ? key.slice(1) : key, 'latin1').toString('hex').toUpperCase();
  return `${negative ? '-' : ''}${hex === '' ? '0' : hex}`;
}

/** Inverse of `serialHexOf` (accepts any case and odd lengths). Sync; throws on non-hex input. */
export function serialKeyFromHex(hex: string): string {
  const negative = hex.startsWith('-');
  let digitsOnly = negative ? hex.slice(1) : hex;
  if (!/^[0-9a-fA-F]+$/.test(digitsOnly)) throw derError(`bad serial hex "${hex}"`);
  if (digitsOnly.length % 2 === 1) digitsOnly = `0${digitsOnly}`;
  const key = stripLeadingZeros(Buffer.from(digitsOnly, 'hex')).toString('latin1');
  return negative ? `${NEGATIVE}${key}` : key;
}
