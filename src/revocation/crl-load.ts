/**
 * Turns the bytes of a CRL file or download into verified, queryable CRLs.
 *
 * Order matters: the (cheap) header is parsed, the issuer is found by name in the registry and the
 * signature is checked over the TBS bytes *before* the (expensive) entry walk, so a forged
 * million-entry CRL costs one hash, not a second of parsing.
 */
import { isSidecarError } from '../errors.js';
import type { X509Certificate } from 'node:crypto';
import { KEY_USAGE, collectRevokedSerials, decodeDerOrPem, keyUsageAllows, parseCrlHeader, type CrlScope, type SerialSet } from '../pki/index.js';
import { createIssuerRegistry, type IssuerInfo, type IssuerRegistry } from './issuer-registry.js';
import { verifySignature } from './signature.js';

/** A verified CRL, reduced to what lookups need. Immutable once built. */
export interface LoadedCrl {
  readonly issuerKeyHash: string;
  /** Issuer subject, for logs. */
  readonly issuer: string;
  /** One CRL per slot and source: issuer key + scope (partitioned CRLs get separate slots). */
  readonly slot: string;
  readonly thisUpdate: number;
  readonly nextUpdate: number;
  readonly crlNumber?: string;
  readonly scope: CrlScope;
  readonly serials: SerialSet;
  /** Hex of the signature value: an identical signature means an identical, already-verified CRL. */
  readonly signatureHex: string;
}

/** Why one CRL in the input was not used. */
export interface CrlLoadFailure {
  /** Position of the CRL in a multi-CRL PEM (0 for DER). */
  readonly index: number;
  /** Stable reason: 'pem' | 'der' | 'crl-unsupported' | 'issuer-unknown' | 'issuer-mismatch' | 'signature' | 'aborted'. */
  readonly reason: string;
  readonly message: string;
  /** Hex of the CRL's issuer Name DER, when the CRL was read far enough to name its issuer. */
  readonly issuerName?: string;
}

/** What `loadCrls` needs from its caller. */
export interface LoadCrlsDeps {
  readonly issuers: IssuerRegistry;
  /** A CRL already loaded from this source with this signature, to reuse without re-verifying. */
  readonly reuse: (signatureHex: string) => LoadedCrl | undefined;
  readonly sliceMs: number;
  readonly signal?: AbortSignal;
  /**
   * The issuers (key hashes) this source may speak for; undefined: any trusted issuer. A CRL
   * validly signed by another CA is refused (reason 'issuer-mismatch'), so a distribution point
   * can never replace or add the CRL of an issuer whose certificates did not name it.
   */
  readonly boundTo?: ReadonlySet<string> | undefined;
}

/**
 * Decodes (DER or multi-block PEM), verifies and indexes every CRL in `bytes`. Async; never
 * throws or rejects: each unusable CRL becomes a `CrlLoadFailure`, the others load.
 */
export async function loadCrls(bytes: Buffer, deps: LoadCrlsDeps): Promise<{ crls: LoadedCrl[]; failures: CrlLoadFailure[] }> {
  const crls: LoadedCrl[] = [];
  const failures: CrlLoadFailure[] = [];
  let blobs: Buffer[];
  try {
    blobs = await decodeDerOrPem(bytes, 'X509 CRL');
  } catch (err) {
    return { crls, failures: [failureOf(0, err)] };
  }
  for (const [index, der] of blobs.entries()) {
    try {
      const loaded = await loadOne(der, deps);
      if ('reason' in loaded) failures.push({ index, ...loaded });
      else crls.push(loaded);
    } catch (err) {
      failures.push(failureOf(index, err));
    }
  }
  return { crls, failures };
}

function failureOf(index: number, err: unknown): CrlLoadFailure {
  if (isSidecarError(err)) return { index, reason: err.fault, message: err.message };
  return { index, reason: 'internal', message: String(err) };
}

async function loadOne(der: Buffer, deps: LoadCrlsDeps): Promise<LoadedCrl | { reason: string; message: string; issuerName?: string }> {
  const header = parseCrlHeader(der);
  const signatureHex = Buffer.from(header.signature).toString('hex');
  const previous = deps.reuse(signatureHex);
  if (previous !== undefined && (deps.boundTo === undefined || deps.boundTo.has(previous.issuerKeyHash))) return previous;
  const candidates = deps.issuers.byName(header.issuerName);
  const issuerName = Buffer.from(header.issuerName).toString('hex');
  if (candidates.length === 0) return { reason: 'issuer-unknown', message: 'no trusted CA has this CRL issuer name', issuerName };
  let signer: IssuerInfo | undefined;
  let why = '';
  for (const candidate of candidates) {
    if (!keyUsageAllows(candidate.fields, KEY_USAGE.cRLSign)) {
      why = `${candidate.cert.subject} lacks the cRLSign key usage`;
      continue;
    }
    const verdict = await verifySignature(header.signatureAlgorithm, header.tbs, header.signature, candidate.publicKey);
    if (verdict.ok) {
      signer = candidate;
      break;
    }
    why = verdict.reason;
  }
  if (signer === undefined) return { reason: 'signature', message: `CRL not signed by any trusted CA of that name (${why})`, issuerName };
  if (deps.boundTo !== undefined && !deps.boundTo.has(signer.keyHash)) {
    return { reason: 'issuer-mismatch', message: `CRL of ${signer.cert.subject.replace(/\n/g, ', ')} served where only the CRL of the certificates' own issuer is accepted` };
  }
  const serials = await collectRevokedSerials(header, {
    sliceMs: deps.sliceMs,
    ...(deps.signal === undefined ? {} : { signal: deps.signal }),
  });
  return {
    issuerKeyHash: signer.keyHash,
    issuer: signer.cert.subject,
    slot: `${signer.keyHash}/${header.scopeKey}`,
    thisUpdate: header.thisUpdate,
    nextUpdate: header.nextUpdate,
    scope: header.scope,
    serials,
    signatureHex,
    ...(header.crlNumber === undefined ? {} : { crlNumber: header.crlNumber }),
  };
}

/**
 * What `check-config` says of a configured CRL file: the problems that would make it useless,
 * verified against `trustedCas`. A CRL whose issuer is not in the bundle is not a problem: it
 * may belong to an intermediate that clients send (it loads once a verified path shows it).
 * Async; never rejects.
 */
export async function inspectCrlBytes(bytes: Buffer, trustedCas: readonly X509Certificate[]): Promise<CrlLoadFailure[]> {
  const { failures } = await loadCrls(bytes, { issuers: createIssuerRegistry(trustedCas, 1), reuse: () => undefined, sliceMs: 50 });
  return failures.filter((f) => f.reason !== 'issuer-unknown');
}
