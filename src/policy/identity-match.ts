/**
 * Identity matchers compiled once from config. An identity's facts (subject fields, SANs, the CAs
 * of its verified path, policy OIDs) are read once per certificate by identity/ and cached with
 * it by the verifier, so a match costs string comparisons and no parsing.
 */
import type { CertIdentity } from '../identity/index.js';
import { anyMatches, compileTextMatch, type TextMatchSpec, type TextMatcher } from './string-match.js';

/** One matcher as config gives it: every key given must hold. */
export interface IdentityMatchSpec {
  readonly deviceId?: TextMatchSpec | undefined;
  readonly subject?: { readonly cn?: TextMatchSpec | undefined; readonly ou?: TextMatchSpec | undefined; readonly o?: TextMatchSpec | undefined } | undefined;
  readonly sanUri?: TextMatchSpec | undefined;
  readonly sanDns?: TextMatchSpec | undefined;
  readonly spiffeTrustDomain?: string | undefined;
  /** A fingerprint: hex, either case, colons allowed. */
  readonly issuer?: { readonly fingerprintSha256?: string | undefined; readonly subject?: string | undefined } | undefined;
  readonly policyOid?: string | undefined;
}

/** `any`, or matchers of which one must hold. */
export type AllowSpec = 'any' | readonly IdentityMatchSpec[];

/** A compiled allow-list. Pure; never throws. */
export type IdentityPredicate = (identity: CertIdentity) => boolean;

export const ANY_IDENTITY: IdentityPredicate = () => true;

/** Compiles an allow-list: `any` passes everyone, `[]` nobody, otherwise any matcher that holds. Pure. */
export function compileAllowList(spec: AllowSpec): IdentityPredicate {
  if (spec === 'any') return ANY_IDENTITY;
  const matchers = spec.map(compileIdentityMatch);
  if (matchers.length === 1) return matchers[0]!;
  return (identity) => {
    for (const m of matchers) if (m(identity)) return true;
    return false;
  };
}

/** Compiles one matcher into the conjunction of its checks. Pure. */
export function compileIdentityMatch(spec: IdentityMatchSpec): IdentityPredicate {
  const checks: IdentityPredicate[] = [];
  const text = (s: TextMatchSpec | undefined, read: (m: TextMatcher) => IdentityPredicate) => {
    if (s !== undefined) checks.push(read(compileTextMatch(s)));
  };
  text(spec.deviceId, (m) => (id) => m(id.deviceId));
  text(spec.subject?.cn, (m) => (id) => anyMatches(m, id.subjectFields.cn));
  text(spec.subject?.ou, (m) => (id) => anyMatches(m, id.subjectFields.ou));
  text(spec.subject?.o, (m) => (id) => anyMatches(m, id.subjectFields.o));
  text(spec.sanUri, (m) => (id) => anyMatches(m, id.sanUri));
  text(spec.sanDns, (m) => (id) => anyMatches(m, id.sanDns));
  if (spec.spiffeTrustDomain !== undefined) {
    // `spiffe://td/` with its slash: `spiffe://td.evil/x` and `spiffe://td:1/x` are other domains,
    // and a bare `spiffe://td` names no workload. The scheme is matched case-insensitively (RFC
    // 3986); the trust domain exactly, since the SPIFFE spec allows only lower case there.
    const prefix = `spiffe://${spec.spiffeTrustDomain}/`;
    checks.push((id) => id.sanUri.some((u) => u.length > prefix.length && u.slice(0, 9).toLowerCase() === 'spiffe://' && u.startsWith(prefix.slice(9), 9)));
  }
  const issuer = spec.issuer;
  if (issuer?.fingerprintSha256 !== undefined) {
    const fp = issuer.fingerprintSha256.replace(/:/g, '').toLowerCase();
    checks.push((id) => id.caFingerprintsSha256.includes(fp));
  }
  if (issuer?.subject !== undefined) {
    const subject = issuer.subject;
    checks.push((id) => id.caSubjects.includes(subject));
  }
  if (spec.policyOid !== undefined) {
    const oid = spec.policyOid;
    checks.push((id) => id.policyOids.includes(oid));
  }
  // The schema refuses an empty matcher; compiled anyway, it must match nobody, not everybody.
  if (checks.length === 0) return () => false;
  if (checks.length === 1) return checks[0]!;
  return (identity) => {
    for (const c of checks) if (!c(identity)) return false;
    return true;
  };
}
