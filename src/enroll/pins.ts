/**
 * The server's key pins and the signed pin set that lets apps learn new pins without a release.
 *
 * A pin is the base64 SHA-256 of a DER SubjectPublicKeyInfo (RFC 7469 §2.4; the same value as
 * Android's `<pin digest="SHA-256">`, iOS's `SPKI-SHA256-BASE64` and OkHttp's `sha256/…`). The
 * set names three roles: `current` (the keys serving now), `next` (keys staged for the next
 * rotation, so apps trust them before they go live) and `backup` (offline keys for an emergency,
 * without which a lost key bricks every app that pins).
 *
 * The set travels as a compact JWS (ES256, header `typ: "pinset+jwt"`). The apps verify it (the
 * tests check what is signed here with test/fixtures/pin-set-verifier.ts, which does what an app
 * must): the explicit `typ` (RFC 8725 §3.11) is required, so no other JWT signed by the same key
 * (an access token, say) can be replayed as a pin set, and the algorithm list is pinned to ES256
 * so a header cannot pick a weaker one. `iat`/`exp` are NumericDates (seconds). `version` only grows:
 * a device keeps the highest version it has accepted and passes it as `minVersion`, so an older,
 * still-unexpired set (one that pins a since-compromised key) cannot be replayed to it.
 */
import { createPrivateKey, createPublicKey, createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, type JWK } from 'jose';
import { pemBlocks } from '../pki/index.js';

/** The JWS `typ` header of a signed pin set (explicit typing, RFC 8725 §3.11). */
export const PIN_SET_JWS_TYPE = 'pinset+jwt';

/** The role of a pin in a set; see the module comment. */
export type PinRole = 'current' | 'next' | 'backup';

/** What a pin set says; `validatePinSet` states the rules it must follow. */
export interface PinSet {
  version: number;
  domains: string[];
  includeSubdomains: boolean;
  pins: { current: string[]; next: string[]; backup: string[] };
  issuedAt: Date;
  expiresAt: Date;
}

/** The JWS payload of a signed pin set. */
export interface PinSetClaims {
  readonly version: number;
  readonly domains: readonly string[];
  readonly includeSubdomains: boolean;
  /** Every pin once, in the order current, next, backup. */
  readonly pins: ReadonlyArray<{ readonly sha256: string; readonly role: PinRole }>;
  /** Seconds since the epoch. */
  readonly iat: number;
  /** Seconds since the epoch; the set is void from this second on. */
  readonly exp: number;
}

const ROLES: readonly PinRole[] = ['current', 'next', 'backup'];
const PIN = /^[A-Za-z0-9+/]{43}=$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_VERSION = 2_147_483_647; // a Java/Kotlin Int on the device

/**
 * The pin of one key: base64 (standard, padded) SHA-256 of its DER SubjectPublicKeyInfo. Takes a
 * PEM holding exactly one CERTIFICATE, PUBLIC KEY, RSA PUBLIC KEY, PRIVATE KEY, EC PRIVATE KEY or
 * RSA PRIVATE KEY block (an `EC PARAMETERS` block beside it is ignored); of a private key the
 * public half is pinned. Synchronous, pure. Throws a TypeError naming the problem for anything
 * else: no PEM, several blocks (a chain is ambiguous: use {@link spkiPinsOfBundle}), an encrypted
 * key, another block type, or a block that does not parse.
 *
 * The SPKI is Node's (OpenSSL's) canonical re-encoding of the key, the bytes that
 * `openssl x509 -pubkey | openssl pkey -pubin -outform der` hashes; for every ordinary
 * certificate (a named curve, an uncompressed point) it is the certificate's own SPKI byte for byte.
 */
export function spkiPin(pem: string): string {
  if (typeof pem !== 'string') throw new TypeError('spkiPin: expected PEM text');
  const labels = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]!).filter((l) => l !== 'EC PARAMETERS');
  if (labels.length === 0) throw new TypeError('spkiPin: no PEM block found');
  if (labels.length > 1) {
    throw new TypeError(`spkiPin: expected one PEM block, found ${labels.length} (${labels.join(', ')}); pin a chain with spkiPinsOfBundle`);
  }
  const label = labels[0]!;
  if (label === 'ENCRYPTED PRIVATE KEY') throw new TypeError('spkiPin: the private key is encrypted; pin its certificate or public key instead');
  let key: KeyObject;
  try {
    if (label === 'CERTIFICATE') key = new X509Certificate(pem).publicKey;
    else if (label === 'PUBLIC KEY' || label === 'RSA PUBLIC KEY') key = createPublicKey(pem);
    else if (label === 'PRIVATE KEY' || label === 'EC PRIVATE KEY' || label === 'RSA PRIVATE KEY') key = createPublicKey(createPrivateKey(pem));
    else throw new TypeError(`spkiPin: a "${label}" PEM block holds no key to pin`);
  } catch (cause) {
    if (cause instanceof TypeError && cause.message.startsWith('spkiPin:')) throw cause;
    throw new TypeError(`spkiPin: the ${label} block does not parse: ${(cause as Error).message}`, { cause });
  }
  return spkiPinOfKey(key);
}

/**
 * The pins of every CERTIFICATE block in a PEM bundle, one per certificate in file order (leaf
 * first in a usual chain file); other blocks (the key of a combined file) are then ignored. A PEM
 * with no certificate is read as a single key, `[spkiPin(pem)]`, so a "certificate or key file"
 * setting can be read with this one call. Synchronous, pure. Throws a TypeError if a certificate
 * does not parse (naming its position) or, without certificates, as {@link spkiPin} does.
 */
export function spkiPinsOfBundle(pem: string): string[] {
  if (typeof pem !== 'string') throw new TypeError('spkiPinsOfBundle: expected PEM text');
  const blocks = pemBlocks(pem, 'CERTIFICATE');
  if (blocks.length === 0) return [spkiPin(pem)];
  return blocks.map((block, i) => {
    try {
      return spkiPinOfKey(new X509Certificate(block).publicKey);
    } catch (cause) {
      throw new TypeError(`spkiPinsOfBundle: certificate #${i + 1} does not parse: ${(cause as Error).message}`, { cause });
    }
  });
}

function spkiPinOfKey(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('base64');
}

/**
 * Checks a pin set and returns a normalized copy (domains lower-cased, arrays copied, frozen).
 * Synchronous; throws a TypeError naming the first problem. The rules: `version` an integer in
 * 1..2^31-1; `domains` non-empty, each an ASCII host name (IDNs as punycode; no wildcard, IP
 * address or trailing dot) and no duplicates (Android refuses to parse a repeated domain);
 * `current` non-empty; every pin a base64 SHA-256 (44 characters) and none listed twice, in any
 * role; `issuedAt` and `expiresAt` valid Dates with `expiresAt` at least a second later.
 */
export function validatePinSet(set: PinSet): PinSet {
  const fail = (what: string): never => {
    throw new TypeError(`pin set: ${what}`);
  };
  if (typeof set !== 'object' || set === null) fail('expected an object');
  if (!Number.isInteger(set.version) || set.version < 1 || set.version > MAX_VERSION) fail(`version must be an integer in 1..${MAX_VERSION}`);
  if (!Array.isArray(set.domains) || set.domains.length === 0) fail('domains must be a non-empty array');
  const domains = set.domains.map((d) => (typeof d === 'string' ? d.toLowerCase() : fail('every domain must be a string')));
  for (const d of domains) {
    const labels = d.split('.');
    const hostName = d.length <= 253 && labels.every((l) => LABEL.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1]!);
    if (!hostName) fail(`${JSON.stringify(d)} is not a host name (no wildcards, IP addresses or trailing dot; IDNs as punycode)`);
  }
  const dup = domains.find((d, i) => domains.indexOf(d) !== i);
  if (dup !== undefined) fail(`domain ${dup} is listed twice`);
  if (typeof set.includeSubdomains !== 'boolean') fail('includeSubdomains must be a boolean');
  if (typeof set.pins !== 'object' || set.pins === null) fail('pins must be an object');
  const seen = new Map<string, PinRole>();
  for (const role of ROLES) {
    const list = set.pins[role];
    if (!Array.isArray(list)) fail(`pins.${role} must be an array`);
    for (const pin of list) {
      if (typeof pin !== 'string' || !PIN.test(pin)) fail(`pins.${role}: ${JSON.stringify(pin)} is not a base64 SHA-256 pin`);
      const earlier = seen.get(pin);
      if (earlier) fail(`pin ${pin} is listed in ${earlier} and again in ${role}`);
      seen.set(pin, role);
    }
  }
  if (set.pins.current.length === 0) fail('pins.current must not be empty');
  const isDate = (d: unknown): d is Date => d instanceof Date && !Number.isNaN(d.getTime());
  if (!isDate(set.issuedAt) || !isDate(set.expiresAt)) fail('issuedAt and expiresAt must be valid Dates');
  if (seconds(set.expiresAt) <= seconds(set.issuedAt)) fail('expiresAt must be at least a second after issuedAt');
  return Object.freeze({
    version: set.version,
    domains: Object.freeze(domains) as string[],
    includeSubdomains: set.includeSubdomains,
    pins: Object.freeze({
      current: Object.freeze([...set.pins.current]) as string[],
      next: Object.freeze([...set.pins.next]) as string[],
      backup: Object.freeze([...set.pins.backup]) as string[],
    }),
    issuedAt: new Date(set.issuedAt.getTime()),
    expiresAt: new Date(set.expiresAt.getTime()),
  });
}

const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * Signs a pin set as a compact JWS: header `{alg: "ES256", typ: "pinset+jwt", kid}`, payload
 * {@link PinSetClaims}. `kid` defaults to {@link pinSetKeyId} of the signing key. Async; throws
 * (rejects with) a TypeError if the set is invalid (see {@link validatePinSet}), the key is not
 * a readable unencrypted private key PEM, or it is not an EC P-256 key. Never signs a malformed
 * set. It does not read the clock: the caller's `issuedAt`/`expiresAt` are signed as given.
 */
export async function signPinSet(set: PinSet, signingKeyPem: string, keyId?: string): Promise<string> {
  const valid = validatePinSet(set);
  const key = p256Key(signingKeyPem, 'private');
  if (keyId !== undefined && (typeof keyId !== 'string' || keyId === '')) throw new TypeError('pin set: keyId must be a non-empty string');
  const kid = keyId ?? (await thumbprint(key));
  return new SignJWT({ ...claimsOfSet(valid) }).setProtectedHeader({ alg: 'ES256', typ: PIN_SET_JWS_TYPE, kid }).sign(key);
}

function claimsOfSet(set: PinSet): PinSetClaims {
  return {
    version: set.version,
    domains: set.domains,
    includeSubdomains: set.includeSubdomains,
    pins: ROLES.flatMap((role) => set.pins[role].map((sha256) => ({ sha256, role }))),
    iat: seconds(set.issuedAt),
    exp: seconds(set.expiresAt),
  };
}

/**
 * The key id of a pin-set signing key: its RFC 7638 JWK SHA-256 thumbprint (base64url), the
 * default `kid` of {@link signPinSet}. Takes a public key, certificate or private key PEM (the
 * same id either way). Async; rejects with a TypeError if the key is unreadable or not P-256.
 */
export async function pinSetKeyId(publicKeyPem: string): Promise<string> {
  return thumbprint(p256Key(publicKeyPem, 'public'));
}

async function thumbprint(key: KeyObject): Promise<string> {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK, 'sha256');
}

/** Reads a key for ES256. A private key PEM also serves where a public key is wanted. */
function p256Key(pem: string, want: 'private' | 'public'): KeyObject {
  let key: KeyObject;
  try {
    key = want === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
  } catch (cause) {
    const what = want === 'private' ? 'an unencrypted private key PEM' : 'a public key, certificate or private key PEM';
    throw new TypeError(`pin set: the ${want === 'private' ? 'signing' : 'verification'} key is not ${what}`, { cause });
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType !== 'ec' || d.namedCurve !== 'prime256v1') {
    const has = [key.asymmetricKeyType, d.namedCurve, d.modulusLength ? `${d.modulusLength}-bit` : undefined].filter(Boolean).join(' ');
    throw new TypeError(`pin set: ES256 needs an EC P-256 key, not ${has}`);
  }
  return key;
}
