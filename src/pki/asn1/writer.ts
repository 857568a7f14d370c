/**
 * The one DER writer: each TLV in a single allocation, lengths in minimal form. Sync and pure.
 * Used by the CA's OCSP responder (per request: no object graph, no re-encoding) and the CRL
 * encoder (a list of 100,000+ entries: parts are passed as an array, never spread as arguments).
 */

/** Identifier octets of the writer's own encodings. */
const OID_TAG = 0x06;
const INTEGER_TAG = 0x02;

/** One DER TLV around the concatenated `parts`. Sync; pure. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  return tlvOfList(tag, parts);
}

/** {@link tlv} for a list of parts of any length (spreading 100,000 arguments would overflow the stack). */
export function tlvOfList(tag: number, parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const n = len < 0x80 ? 0 : len < 0x100 ? 1 : len < 0x10000 ? 2 : len < 0x1000000 ? 3 : 4;
  const out = Buffer.allocUnsafe(2 + n + len);
  out[0] = tag;
  out[1] = n === 0 ? len : 0x80 | n;
  for (let i = 0; i < n; i++) out[2 + i] = Math.floor(len / 256 ** (n - 1 - i)) & 0xff;
  let pos = 2 + n;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** The DER OBJECT IDENTIFIER (tag and all) of a dotted OID. Sync; pure. */
export function encodeOid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [a * 40 + b];
  for (const n of rest) {
    const group = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) group.unshift((v & 0x7f) | 0x80);
    bytes.push(...group);
  }
  return tlv(OID_TAG, Buffer.from(bytes));
}

/**
 * The DER INTEGER (tag and all) of non-negative magnitude bytes: leading zero octets dropped, one
 * 00 added when the top bit is set so it stays positive. Sync; pure.
 */
export function encodeUnsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const v = magnitude.length === 0 ? Buffer.of(0) : magnitude.subarray(i);
  return v[0]! & 0x80 ? tlv(INTEGER_TAG, Buffer.of(0), v) : tlv(INTEGER_TAG, v);
}

/** WebCrypto's ECDSA signature (r || s, `size` octets each) as the DER SEQUENCE { r, s } X.509 uses. */
export function ecdsaSignatureToDer(sig: Uint8Array, size: number): Buffer {
  return tlv(0x30, encodeUnsignedInteger(sig.subarray(0, size)), encodeUnsignedInteger(sig.subarray(size)));
}
