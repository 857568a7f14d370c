/**
 * Builds the verified certification path of a client certificate: leaf → issuers → a configured
 * root, every link checked here (issuer name and key identifier, CA flag and keyCertSign, the
 * signature, each certificate's validity now, pathLenConstraint).
 *
 * Why not use the chain Node reports: Node exposes neither OpenSSL's verified chain nor the raw
 * list the client sent. `getPeerX509Certificate().issuerCertificate` is Node's own re-linking of
 * the sent certificates by name and key identifier only, so a look-alike (same subject and SKI as
 * the issuing CA, another key) placed first is reported as the issuer while OpenSSL, which skipped
 * it, verified the real one. Every fact the sidecar uses (issuer, depth, revocation, the chain sent
 * upstream) therefore comes from the path built here, and a client whose path cannot be rebuilt is
 * refused even if OpenSSL accepted it: the two disagree, and we fail closed. The search is
 * depth-first like Go's crypto/x509, configured certificates before client-sent ones, bounded in
 * depth and in signature checks so a flood of candidates costs little.
 */
import type { X509Certificate } from 'node:crypto';
import { readPathLengthConstraint } from '../pki/index.js';
import type { TrustIndex } from './trust.js';

/** A verified path. Immutable. */
export interface CertPath {
  /** The leaf first, then each issuer; the last is the trust anchor (a configured root). */
  readonly certificates: readonly X509Certificate[];
  /** When the whole path is valid: the latest notBefore and the earliest notAfter (ms since epoch). */
  readonly validFromMs: number;
  readonly validUntilMs: number;
}

/** Why no path: a subset of the verifier's reasons. */
export type PathFailureReason = 'unknown_ca' | 'chain_too_long' | 'expired' | 'not_yet_valid';

export type PathOutcome = { readonly ok: true; readonly path: CertPath } | { readonly ok: false; readonly reason: PathFailureReason; readonly detail: string };

export interface PathOptions {
  /** Time to check validity at (ms since epoch). */
  readonly now: number;
  /** Most CA certificates allowed above the leaf, the anchor included (`clientAuth.maxChainDepth`). */
  readonly maxCaCertificates: number;
}

/** Paths longer than this are not searched at all (they are reported as too long). */
const SEARCH_DEPTH = 16;
/** Signature checks one build may spend; a client cannot send more candidates than this makes useful. */
const SIGNATURE_BUDGET = 64;

class BudgetExhausted extends Error {}

const validFrom = (c: X509Certificate) => Date.parse(c.validFrom);
const validTo = (c: X509Certificate) => Date.parse(c.validTo);

/**
 * Builds a path from `leaf` to a trust anchor of `trust`, using configured certificates and the
 * certificates the client presented (`presented`, any order, duplicates and junk allowed). Sync,
 * pure, never throws. The first valid path found is returned; a refusal names the most specific
 * reason seen (a candidate that failed only on time gives `expired`/`not_yet_valid`).
 */
export function buildVerifiedPath(leaf: X509Certificate, presented: readonly X509Certificate[], trust: TrustIndex, options: PathOptions): PathOutcome {
  const { now } = options;
  const configured = new Set(trust.certificates.map((c) => c.fingerprint256));
  const sentBySubject = new Map<string, X509Certificate[]>();
  const seen = new Set<string>([leaf.fingerprint256]);
  for (const c of presented) {
    // Copies of configured certificates are taken from the bundle instead.
    if (seen.has(c.fingerprint256) || configured.has(c.fingerprint256)) continue;
    seen.add(c.fingerprint256);
    const list = sentBySubject.get(c.subject) ?? [];
    list.push(c);
    sentBySubject.set(c.subject, list);
  }

  const leafTime = timeProblem(leaf, now);
  if (leafTime) return { ok: false, ...leafTime };

  let signatures = 0;
  let tooLong = false;
  let timeFailure: { reason: 'expired' | 'not_yet_valid'; detail: string } | undefined;
  const edges = new Map<string, boolean>();

  const signs = (child: X509Certificate, parent: X509Certificate): boolean => {
    const key = `${child.fingerprint256}>${parent.fingerprint256}`;
    let ok = edges.get(key);
    if (ok !== undefined) return ok;
    // checkIssued: names, key identifiers and the parent's keyCertSign usage (OpenSSL's X509_check_issued).
    ok = parent.ca && child.checkIssued(parent);
    if (ok) {
      if (++signatures > SIGNATURE_BUDGET) throw new BudgetExhausted();
      try {
        ok = child.verify(parent.publicKey);
      } catch {
        ok = false;
      }
    }
    edges.set(key, ok);
    return ok;
  };

  const extend = (path: X509Certificate[], limit: number): X509Certificate[] | undefined => {
    const top = path[path.length - 1]!;
    if (trust.isAnchor(top)) return path;
    if (path.length - 1 >= limit) {
      tooLong = true;
      return undefined;
    }
    for (const candidate of [...trust.candidatesFor(top), ...(sentBySubject.get(top.issuer) ?? [])]) {
      if (path.some((c) => c.fingerprint256 === candidate.fingerprint256)) continue;
      if (!signs(top, candidate)) continue;
      const time = timeProblem(candidate, now);
      if (time) {
        timeFailure ??= time;
        continue;
      }
      // pathLenConstraint: at most that many CA certificates below this one (the leaf not counted).
      const maxBelow = readPathLengthConstraint(candidate);
      if (maxBelow !== undefined && path.length - 1 > maxBelow) continue;
      const found = extend([...path, candidate], limit);
      if (found) return found;
    }
    return undefined;
  };

  try {
    // A leaf that is itself a configured root is its own path (OpenSSL trusts it directly).
    const found = extend([leaf], options.maxCaCertificates);
    if (found) return { ok: true, path: pathOf(found) };
    if (tooLong && options.maxCaCertificates < SEARCH_DEPTH && extend([leaf], SEARCH_DEPTH)) {
      return { ok: false, reason: 'chain_too_long', detail: `the path has more than ${options.maxCaCertificates} CA certificates above the leaf (maxChainDepth)` };
    }
  } catch (err) {
    if (!(err instanceof BudgetExhausted)) throw err;
    return { ok: false, reason: 'unknown_ca', detail: `no verified path within ${SIGNATURE_BUDGET} signature checks` };
  }
  if (timeFailure) return { ok: false, ...timeFailure };
  return { ok: false, reason: 'unknown_ca', detail: 'no path of verified signatures from the certificate to a configured root' };
}

function timeProblem(cert: X509Certificate, now: number): { reason: 'expired' | 'not_yet_valid'; detail: string } | undefined {
  if (now < validFrom(cert)) return { reason: 'not_yet_valid', detail: `${oneLine(cert.subject)} is valid from ${cert.validFrom}` };
  if (now > validTo(cert)) return { reason: 'expired', detail: `${oneLine(cert.subject)} expired at ${cert.validTo}` };
  return undefined;
}

function oneLine(subject: string): string {
  return subject.replace(/\n/g, ', ');
}

function pathOf(certificates: X509Certificate[]): CertPath {
  let from = -Infinity;
  let until = Infinity;
  for (const c of certificates) {
    from = Math.max(from, validFrom(c));
    until = Math.min(until, validTo(c));
  }
  return Object.freeze({ certificates: Object.freeze(certificates), validFromMs: from, validUntilMs: until });
}

/**
 * The certificates a client presented beyond its leaf, as far as Node exposes them (its re-linked
 * `issuerCertificate` chain, which may also hold configured roots). Candidates only: nothing here
 * is trusted until `buildVerifiedPath` has checked it. Sync; never throws.
 */
export function presentedCertificates(leaf: X509Certificate | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cur = leaf?.issuerCertificate;
  for (let i = 0; cur && i < SEARCH_DEPTH * 2; i++) {
    if (out.some((c) => c.fingerprint256 === cur!.fingerprint256) || cur.fingerprint256 === leaf!.fingerprint256) break;
    out.push(cur);
    cur = cur.issuerCertificate;
  }
  return out;
}
