/** UTCTime and GeneralizedTime, read and written as RFC 5280 §4.1.2.5 wants them. */
import { TAG, contentOf, derError, type Tlv } from './reader.js';
import { tlv } from './writer.js';

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
 * accepted (fractional seconds tolerated in GeneralizedTime). Sync; throws `derError`.
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

/** `YYYYMMDDHHMMSSZ` of whole seconds (DER forbids a fraction; it is cut off). Throws RangeError for an invalid time. */
function generalizedDigits(ms: number): string {
  const s = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ; throws RangeError if invalid
  return `${s.slice(0, 4)}${s.slice(5, 7)}${s.slice(8, 10)}${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)}Z`;
}

/** DER GeneralizedTime of whole seconds (what OCSP always uses). Sync; throws RangeError for an invalid time. */
export function encodeGeneralizedTime(ms: number): Buffer {
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(generalizedDigits(ms), 'latin1'));
}

/**
 * DER time of whole seconds as certificates and CRLs must carry it (RFC 5280 §4.1.2.5): UTCTime
 * from 1950 through 2049, GeneralizedTime otherwise. Sync; throws RangeError for an invalid time.
 */
export function encodeCertificateTime(ms: number): Buffer {
  const text = generalizedDigits(ms);
  const year = new Date(ms).getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(text.slice(2), 'latin1')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(text, 'latin1'));
}
