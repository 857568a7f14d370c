/**
 * The certificates allowed to sign CRLs (and to delegate OCSP signing): the trusted CA bundle, plus
 * issuers learned from `check()` calls.
 *
 * Why learn issuers: a client may send its intermediate in the handshake. `check()` is only given
 * issuers from a path the verifier built with checked signatures up to a configured root, so the
 * intermediate is as trustworthy as the bundle, and a CRL signed by it (typically found via a
 * leaf's distribution point) must be verifiable. Learned issuers are bounded (LRU) so a flood of
 * chains cannot grow memory. They are kept when the bundle changes: a CRL they sign answers only
 * for certificates whose verified path runs through them, and such a path must end at a root that
 * is still configured, so one hanging off a removed root can speak for nobody. Forgetting them
 * would instead leave their CRL sources unable to load a newer CRL until a client re-teaches them.
 *
 * Learning cannot be abused to forge revocation state for someone else: CRLs are stored under the
 * key hash of the issuer whose key verified them, and lookups use the key of the issuer passed to
 * `check()`. A look-alike issuer (same name, other key) only ever speaks for its own certificates.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { parseCertificate, type CertFields } from '../pki/index.js';
import { computeIssuerKeyHash } from './issuer-key-hash.js';

/** An issuer with what verification needs precomputed. */
export interface IssuerInfo {
  readonly cert: X509Certificate;
  readonly fields: CertFields;
  /** `computeIssuerKeyHash` of this issuer. */
  readonly keyHash: string;
  readonly publicKey: KeyObject;
}

/** Lookup of issuers by subject Name and by key hash. */
export interface IssuerRegistry {
  /**
   * Returns the issuer record for `cert`, adding it if unseen (`isNew`). Sync; throws
   * `SidecarError` only if `cert` cannot be parsed.
   */
  learn(cert: X509Certificate): { info: IssuerInfo; isNew: boolean };
  /** Issuers whose subject Name has exactly these DER bytes (several during a key rollover). */
  byName(name: Uint8Array): IssuerInfo[];
  /** True while an issuer with this key hash is configured or learned. */
  knows(keyHash: string): boolean;
  /**
   * Replaces the configured CAs (a reload changed the bundle); learned issuers stay. Returns the
   * key hashes that were configured before and are neither configured nor learned now. Sync;
   * throws `SidecarError` if a new certificate cannot be parsed, before changing anything.
   */
  replaceTrusted(trusted: readonly X509Certificate[]): Set<string>;
}

function identityOf(info: IssuerInfo): string {
  return `${info.keyHash}:${Buffer.from(info.fields.subjectName).toString('hex')}`;
}

function describe(cert: X509Certificate): IssuerInfo {
  const fields = parseCertificate(cert.raw);
  return { cert, fields, keyHash: computeIssuerKeyHash(fields), publicKey: cert.publicKey };
}

function identityOfCert(cert: X509Certificate): string {
  const fields = parseCertificate(cert.raw);
  return `${computeIssuerKeyHash(fields)}:${Buffer.from(fields.subjectName).toString('hex')}`;
}

/**
 * Creates a registry seeded with `trusted` (never evicted) and at most `maxLearned` learned
 * issuers. Sync; throws `SidecarError` if a trusted certificate cannot be parsed.
 */
export function createIssuerRegistry(trusted: readonly X509Certificate[], maxLearned: number): IssuerRegistry {
  let byNameIndex = new Map<string, Map<string, IssuerInfo>>();
  const index = (info: IssuerInfo): void => {
    const name = Buffer.from(info.fields.subjectName).toString('latin1');
    let bucket = byNameIndex.get(name);
    if (bucket === undefined) byNameIndex.set(name, (bucket = new Map()));
    bucket.set(identityOf(info), info);
  };
  let pinned = new Map<string, IssuerInfo>();
  const pin = (certs: readonly X509Certificate[]): void => {
    const next = new Map(certs.map((cert) => describe(cert)).map((info) => [identityOf(info), info] as const));
    pinned = next;
    byNameIndex = new Map();
    for (const info of next.values()) index(info);
  };
  pin(trusted);
  const learned = new LRUCache<string, IssuerInfo>({
    max: Math.max(1, maxLearned),
    dispose: (info, id) => {
      if (pinned.has(id)) return;
      const name = Buffer.from(info.fields.subjectName).toString('latin1');
      byNameIndex.get(name)?.delete(id);
      if (byNameIndex.get(name)?.size === 0) byNameIndex.delete(name);
    },
  });
  // The per-handshake path hands over the same issuer objects again and again: identify each once.
  const ids = new WeakMap<X509Certificate, string>();
  return {
    learn(cert) {
      // Identify first, build the KeyObject only for a new issuer.
      let id = ids.get(cert);
      if (id === undefined) ids.set(cert, (id = identityOfCert(cert)));
      const known = pinned.get(id) ?? learned.get(id);
      if (known !== undefined) return { info: known, isNew: false };
      const info = describe(cert);
      learned.set(id, info);
      index(info);
      return { info, isNew: true };
    },
    byName(name) {
      return [...(byNameIndex.get(Buffer.from(name).toString('latin1'))?.values() ?? [])];
    },
    knows(keyHash) {
      for (const info of pinned.values()) if (info.keyHash === keyHash) return true;
      for (const info of learned.values()) if (info.keyHash === keyHash) return true;
      return false;
    },
    replaceTrusted(next) {
      const before = new Set([...pinned.values()].map((i) => i.keyHash));
      pin(next); // parses everything before assigning, so a bad certificate changes nothing
      for (const [id, info] of learned.entries()) {
        if (pinned.has(id)) learned.delete(id); // now configured: one record is enough
        else index(info);
      }
      for (const info of pinned.values()) before.delete(info.keyHash);
      for (const info of learned.values()) before.delete(info.keyHash);
      return before;
    },
  };
}
