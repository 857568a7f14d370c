/**
 * One-time enrollment codes. A code is short enough to type from an SMS, so its safety comes from
 * three limits, not from its length: it is bound to one device id, it dies after a few wrong
 * guesses (the store counts them) and it expires within minutes. It is stored only as an
 * HMAC-SHA-256 under the CA's pepper, so a copy of the database alone does not reveal live codes
 * (a plain hash of an 8-digit code is reversed in a second).
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';

/** A new code of `length` decimal digits from the CSPRNG (uniform: randomInt has no modulo bias). */
export function generateCode(length: number): string {
  let code = '';
  for (let i = 0; i < length; i++) code += String(randomInt(10));
  return code;
}

/** The stored form of a code: hex HMAC over the device id and the code, so a code is useless for another device. */
export function hashCode(pepper: Buffer, deviceId: string, code: string): string {
  return createHmac('sha256', pepper).update(deviceId).update('\0').update(code).digest('hex');
}

/** Compares a presented code with the stored hash in constant time (the HMAC evens out lengths). */
export function codeMatches(pepper: Buffer, deviceId: string, presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashCode(pepper, deviceId, presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
