/**
 * The in-memory CRL state: which verified CRLs each source contributes, indexed by issuer key
 * hash so a lookup is a Map get plus one hash-table probe per CRL of that issuer (O(1) in entries).
 */
import type { LoadedCrl } from './crl-load.js';
import type { RevocationStatus } from './types.js';

/** The certificate facts a CRL's scope is matched against. */
export interface CertScopeFacts {
  readonly cdpUrls: readonly string[];
  readonly isCa: boolean;
}

/** Outcome of applying a source's new CRLs. */
export interface ApplyOutcome {
  /** Issuer key hashes whose CRL set changed (the tracker re-evaluates their certificates). */
  readonly changedIssuers: Set<string>;
  /** New CRLs refused because they are older than the one held in the same slot. */
  readonly rollbacks: LoadedCrl[];
  /** CRLs the source held and no longer provides: kept (see `apply`). */
  readonly omitted: LoadedCrl[];
}

/** CRLs by source and by issuer. Mutations are sync and all-or-nothing per slot. */
export interface CrlStore {
  /**
   * Puts `crls` into `sourceId`'s slots. A CRL older (thisUpdate, then CRL number) than the one it
   * would replace is refused (a replayed old CRL could un-revoke). A slot the source no longer
   * provides is kept and reported in `omitted`: whoever answers a plain-HTTP CRL URL could
   * otherwise make an issuer's revocations vanish by serving another CA's valid CRL. A kept CRL
   * goes stale by itself (then `unknown`); only `dropIssuers` (the CA is no longer trusted)
   * removes one.
   */
  apply(sourceId: string, crls: readonly LoadedCrl[]): ApplyOutcome;
  /** The CRLs `sourceId` currently contributes. */
  crlsOf(sourceId: string): LoadedCrl[];
  /** True if some source holds a CRL of this issuer (current or stale). */
  hasIssuer(issuerKeyHash: string): boolean;
  /** Removes every CRL of these issuers from every source (their CA is no longer trusted). */
  dropIssuers(issuerKeyHashes: ReadonlySet<string>): void;
  /** Sync, O(CRLs of that issuer); never throws. */
  lookup(issuerKeyHash: string, serialKey: string, cert: CertScopeFacts, now: number): { status: RevocationStatus; detail: string };
}

function covers(crl: LoadedCrl, cert: CertScopeFacts): boolean {
  if (crl.scope.onlyUserCerts && cert.isCa) return false;
  if (crl.scope.onlyCaCerts && !cert.isCa) return false;
  const urls = crl.scope.urls;
  return urls === undefined || urls.some((u) => cert.cdpUrls.includes(u));
}

function isOlder(next: LoadedCrl, held: LoadedCrl): boolean {
  if (next.thisUpdate !== held.thisUpdate) return next.thisUpdate < held.thisUpdate;
  if (next.crlNumber === undefined || held.crlNumber === undefined) return false;
  return BigInt(`0x${next.crlNumber}`) < BigInt(`0x${held.crlNumber}`);
}

/** Creates an empty store; `staleGraceMs` is how long past nextUpdate a CRL still answers `good`. */
export function createCrlStore(staleGraceMs: number): CrlStore {
  const bySource = new Map<string, Map<string, LoadedCrl>>();
  const byIssuer = new Map<string, Set<LoadedCrl>>();
  const unindex = (crl: LoadedCrl): void => {
    const set = byIssuer.get(crl.issuerKeyHash);
    set?.delete(crl);
    if (set?.size === 0) byIssuer.delete(crl.issuerKeyHash);
  };
  const index = (crl: LoadedCrl): void => {
    let set = byIssuer.get(crl.issuerKeyHash);
    if (set === undefined) byIssuer.set(crl.issuerKeyHash, (set = new Set()));
    set.add(crl);
  };
  return {
    apply(sourceId, crls) {
      const slots = bySource.get(sourceId) ?? new Map<string, LoadedCrl>();
      const changedIssuers = new Set<string>();
      const rollbacks: LoadedCrl[] = [];
      const provided = new Set<string>();
      for (const crl of crls) {
        provided.add(crl.slot);
        const held = slots.get(crl.slot);
        if (held === crl) continue;
        if (held !== undefined && isOlder(crl, held)) {
          rollbacks.push(crl);
          continue;
        }
        if (held !== undefined) unindex(held);
        slots.set(crl.slot, crl);
        index(crl);
        changedIssuers.add(crl.issuerKeyHash);
      }
      const omitted = [...slots].filter(([slot]) => !provided.has(slot)).map(([, held]) => held);
      if (slots.size > 0) bySource.set(sourceId, slots);
      else bySource.delete(sourceId);
      return { changedIssuers, rollbacks, omitted };
    },
    hasIssuer: (issuerKeyHash) => byIssuer.has(issuerKeyHash),
    dropIssuers(issuerKeyHashes) {
      for (const [sourceId, slots] of bySource) {
        for (const [slot, crl] of slots) {
          if (!issuerKeyHashes.has(crl.issuerKeyHash)) continue;
          slots.delete(slot);
          unindex(crl);
        }
        if (slots.size === 0) bySource.delete(sourceId);
      }
    },
    crlsOf(sourceId) {
      return [...(bySource.get(sourceId)?.values() ?? [])];
    },
    lookup(issuerKeyHash, serialKey, cert, now) {
      const crls = byIssuer.get(issuerKeyHash);
      if (crls === undefined) return { status: 'unknown', detail: 'no CRL loaded for this issuer' };
      let fresh = false;
      let staleSince = 0;
      for (const crl of crls) {
        if (!covers(crl, cert)) continue;
        // Listed means revoked even in a stale CRL: revocation is not undone by time passing.
        if (crl.serials.has(serialKey)) return { status: 'revoked', detail: `listed in the CRL of ${crl.issuer}` };
        if (now <= crl.nextUpdate + staleGraceMs) fresh = true;
        else staleSince = Math.max(staleSince, crl.nextUpdate);
      }
      if (fresh) return { status: 'good', detail: 'not listed in a current CRL' };
      if (staleSince > 0) {
        return { status: 'unknown', detail: `CRL stale: nextUpdate ${new Date(staleSince).toISOString()} plus grace has passed` };
      }
      return { status: 'unknown', detail: 'no loaded CRL covers this certificate' };
    },
  };
}
