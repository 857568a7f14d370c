/**
 * Certificate serial numbers: one canonical key, one text form.
 *
 * The convention: a serial's text is the hex of its magnitude, two digits per octet, without
 * leading zero octets ("0A", not "A" nor "000A"; "0" for zero; "-" before a negative one). That is
 * OpenSSL's BN_bn2hex and Node's `X509Certificate.serialNumber`. The case is the one thing the two
 * programs print differently, and both are public, so both stay: the sidecar prints upper-case
 * like Node and OpenSSL (identity headers, logs, revocation events), the CA lower-case (its store,
 * API, audit lines and OCSP lookups, as `randomSerialHex` issued them). Compare serials by key
 * (`serialKeyOf`, `serialKeyFromHex`), never by text.
 */
import { derError } from './reader.js';

/** Prefix of a negative serial's key (see {@link serialKeyOf}). */
export const NEGATIVE = '\u0000';

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * Canonical key of an INTEGER serial's content octets: its magnitude without leading zero octets,
 * as a latin1 string (one char per byte). Negative serials (non-conforming but seen in the wild)
 * get a NUL prefix: a positive key never starts with a zero byte, so the two never collide.
 * Sync; throws `derError` for empty content.
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

/** Serial key → the sidecar's text form: upper-case, as Node's `X509Certificate.serialNumber` prints it. */
export function serialHexOf(key: string): string {
  const negative = key.startsWith(NEGATIVE);
  const hex = Buffer.from(negative ? key.slice(1) : key, 'latin1').toString('hex').toUpperCase();
  return `${negative ? '-' : ''}${hex === '' ? '0' : hex}`;
}

/** Inverse of {@link serialHexOf} (accepts any case and odd lengths). Sync; throws `derError` on non-hex input. */
export function serialKeyFromHex(hex: string): string {
  const negative = hex.startsWith('-');
  let digitsOnly = negative ? hex.slice(1) : hex;
  if (!/^[0-9a-fA-F]+$/.test(digitsOnly)) throw derError(`bad serial hex "${hex}"`);
  if (digitsOnly.length % 2 === 1) digitsOnly = `0${digitsOnly}`;
  const key = stripLeadingZeros(Buffer.from(digitsOnly, 'hex')).toString('latin1');
  return negative ? `${NEGATIVE}${key}` : key;
}

/**
 * The CA's text form of a serial INTEGER's content octets (lower-case, see above), or undefined
 * for a serial the CA cannot have issued: negative, or over RFC 5280's 20 octets. Sync; pure.
 */
export function caSerialHexOf(content: Uint8Array): string | undefined {
  if (content.length === 0 || content[0]! & 0x80 || content.length > 21) return undefined;
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return Buffer.from(content.buffer, content.byteOffset, content.length).toString('hex', i);
}

/** The sidecar's text form of a Node certificate's serial (see above). */
export function serialHexOfCertificate(cert: { readonly serialNumber: string }): string {
  return cert.serialNumber.toUpperCase();
}

/** The CA's text form of a Node or @peculiar/x509 certificate's serial (see above). */
export function caSerialHexOfCertificate(cert: { readonly serialNumber: string }): string {
  return cert.serialNumber.toLowerCase();
}

/**
 * INTEGER content octets of a hex serial as certificates and CRLs encode it: minimal, positive.
 * Sync; throws TypeError for text that is not hex.
 */
export function serialContentOfHex(hex: string): Buffer {
  if (!/^[0-9a-f]+$/i.test(hex)) throw new TypeError(`not a hex serial: "${hex}"`);
  let bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  bytes = bytes.subarray(i);
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.of(0), bytes]) : bytes;
}
