/**
 * Builds the pin set from the CA config (pins of the current and next server keys, read from
 * their certificate or key files at start, plus the configured backup pins) and keeps a signed
 * copy, re-signed once half of its validity has passed, so `GET /v1/pins` costs no signature.
 */
import { readFileSync } from 'node:fs';
import type { CaPinsOptions } from '../config/index.js';
import { SidecarError } from '../errors.js';
import type { PinSetSource } from './http/pins-route.js';
import { signPinSet, spkiPinsOfBundle, type PinSet } from './pins.js';

export interface PinSetPublisher extends PinSetSource {
  /** The pin set as it would be signed now (what `ca pins` prints). */
  pinSet(): PinSet;
}

/** Reads the pin files and the signing key. Sync; throws ERR_PKI naming the file at fault. */
export function createPinSetPublisher(options: CaPinsOptions, now: () => Date = () => new Date()): PinSetPublisher {
  // The first block of each file only: the server's own (leaf) key, not its chain's CA keys.
  const pinsOf = (file: string) => {
    try {
      return spkiPinsOfBundle(readFileSync(file, 'utf8')).slice(0, 1);
    } catch (cause) {
      throw new SidecarError('ERR_PKI', file, `pins: cannot read a public key from ${file}: ${(cause as Error).message}`, { cause });
    }
  };
  const current = options.current.flatMap(pinsOf);
  const next = options.next.flatMap(pinsOf);
  let signingKeyPem: string;
  try {
    signingKeyPem = readFileSync(options.signingKey, 'utf8');
  } catch (cause) {
    throw new SidecarError('ERR_PKI', options.signingKey, `pins: cannot read the signing key ${options.signingKey}: ${(cause as Error).message}`, { cause });
  }
  const validityMs = options.validityDays * 86_400_000;
  const pinSet = (): PinSet => {
    const issuedAt = now();
    return {
      version: options.version,
      domains: [...options.domains],
      includeSubdomains: options.includeSubdomains,
      pins: { current, next, backup: [...options.backup] },
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + validityMs),
    };
  };
  let cached: { jws: Promise<string>; signedAt: number } | undefined;
  return {
    maxAgeSeconds: Math.min(86_400, Math.floor(validityMs / 4000)),
    pinSet,
    current() {
      const t = now().getTime();
      if (!cached || t - cached.signedAt > validityMs / 2) {
        const jws = signPinSet(pinSet(), signingKeyPem);
        cached = { jws, signedAt: t };
        jws.catch(() => (cached = undefined)); // a failed signature is retried on the next request
      }
      return cached.jws;
    },
  };
}
