/**
 * `verifyPeer`: the single place that turns a finished TLS handshake into a Verdict. It runs for
 * every connection, resumed ones included, and is the only code that can create a
 * `VerifiedIdentity` — so a request can only be forwarded with an identity this module vouched for.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { extractIdentity, type CertIdentity, type DeviceIdRule, type RenderedHeaders } from '../identity/index.js';
import { formatRfc4514 } from '../pki/index.js';
import { reasonForVerifyError, type FailureReason } from './reasons.js';
import { walkChain, type TrustIndex } from './trust.js';

declare const verifiedBrand: unique symbol;

/** An identity that passed every check. Only this module can make one. */
export interface VerifiedIdentity extends CertIdentity {
  readonly [verifiedBrand]: true;
  /** The headers to set upstream, rendered once for this certificate. */
  readonly headers: RenderedHeaders;
  /** The client certificate and the CA that signed it (for revocation re-checks). */
  readonly leafCertificate: X509Certificate;
  readonly issuerCertificate: X509Certificate;
}

/** A client's presented certificate, for logging a refusal (never key material). */
export interface PeerSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly serialHex: string;
}

/** The outcome for one connection. Refusals are values, not errors. */
export type Verdict =
  | { readonly ok: true; readonly identity: VerifiedIdentity; readonly revocation?: RevocationOutcome }
  | { readonly ok: false; readonly reason: FailureReason; readonly detail: string; readonly peer?: PeerSummary; readonly revocation?: RevocationOutcome };

/** What the revocation check said, for metrics and logs. */
export interface RevocationOutcome {
  readonly status: 'good' | 'revoked' | 'unknown';
  readonly method: string;
  readonly cached: boolean;
  readonly detail?: string | undefined;
}

/** The part of a revocation checker the verifier needs (see revocation/). */
export interface RevocationGate {
  check(leaf: X509Certificate, issuer: X509Certificate): Promise<RevocationOutcome>;
  readonly onUnknown: 'fail-closed' | 'fail-open';
}

/** How the verifier is built. `trust` is a getter so a CA reload is seen by the next handshake. */
export interface PeerVerifierOptions {
  readonly trust: () => TrustIndex;
  readonly maxChainDepth: number;
  readonly requireClientAuthEku: boolean;
  readonly deviceIdRules: readonly DeviceIdRule[];
  readonly renderHeaders: (identity: CertIdentity) => RenderedHeaders;
  readonly revocation?: RevocationGate | undefined;
  readonly now?: () => number;
  /** Verified certificates remembered by fingerprint (default 20,000). */
  readonly cacheEntries?: number;
}

/** Verifies finished handshakes. */
export interface PeerVerifier {
  /**
   * Never throws; resolves synchronously unless a revocation check is needed. A connection whose
   * verdict is not `ok` must not have any request forwarded.
   */
  verify(socket: TLSSocket): Verdict | Promise<Verdict>;
}

/** The part of Node's legacy peer-certificate object the verifier reads. */
interface PeerCertificate {
  readonly raw: Buffer;
  readonly fingerprint256: string;
}

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

interface CachedFacts {
  readonly trust: TrustIndex;
  readonly verdict: Verdict;
}

/** Builds a verifier. Pure until `verify` is called. */
export function createPeerVerifier(options: PeerVerifierOptions): PeerVerifier {
  const now = options.now ?? Date.now;
  // Chain walking, identity extraction and header rendering depend only on the certificate and the
  // trust snapshot, so they are done once per certificate: resumed sessions and reconnecting
  // devices reuse them. Time validity and revocation are re-checked on every connection.
  const cache = new LRUCache<string, CachedFacts>({ max: options.cacheEntries ?? 20_000 });

  function refuse(reason: FailureReason, detail: string, leaf?: X509Certificate): Verdict {
    return { ok: false, reason, detail, ...(leaf ? { peer: summarize(leaf) } : {}) };
  }

  function certificateFacts(socket: TLSSocket, peer: PeerCertificate, resumed: boolean): Verdict {
    const trust = options.trust();
    const key = peer.fingerprint256;
    const hit = cache.get(key);
    if (hit && hit.trust === trust) return hit.verdict;
    // First sight: the full object, which carries the chain the client sent (its intermediates).
    const leaf = socket.getPeerX509Certificate() ?? new X509Certificate(peer.raw);
    const chain = walkChain(leaf, trust);
    let verdict: Verdict;
    if (!chain) {
      verdict = refuse(
        'unknown_ca',
        resumed ? 'resumed session whose issuer chain is not known to this process; a full handshake is needed' : 'chain does not reach a configured CA',
        leaf,
      );
      // A resumed session with an unknown chain is not cached: a full handshake may fix it.
      return verdict;
    }
    if (chain.length > options.maxChainDepth) {
      verdict = refuse('chain_too_long', `${chain.length} CA certificates above the leaf; maxChainDepth is ${options.maxChainDepth}`, leaf);
    } else if (options.requireClientAuthEku && !(leaf.keyUsage ?? []).includes(CLIENT_AUTH_OID)) {
      verdict = refuse('bad_key_usage', 'the certificate has no clientAuth extended key usage', leaf);
    } else {
      let identity: CertIdentity | undefined;
      try {
        identity = extractIdentity(leaf, chain, options.deviceIdRules);
      } catch (err) {
        // A CA-signed certificate whose names cannot be rendered safely (e.g. non-ASCII in a SAN
        // URI) yields no usable identity: refuse it rather than forward something half-read.
        verdict = refuse('no_device_id', `certificate names cannot be read: ${(err as Error).message}`, leaf);
        cache.set(key, { trust, verdict });
        return verdict;
      }
      verdict = identity
        ? { ok: true, identity: brand(identity, options.renderHeaders(identity), leaf, chain[0]!) }
        : refuse('no_device_id', 'no deviceId rule matched the certificate', leaf);
    }
    cache.set(key, { trust, verdict });
    return verdict;
  }

  function verify(socket: TLSSocket): Verdict | Promise<Verdict> {
    // Absence of a peer certificate is the test, not `authorized`: Node once reported resumed TLS 1.3
    // sessions without a client certificate as authorized.
    // The legacy accessor, not getPeerX509Certificate(): that one duplicates the certificate
    // through OpenSSL 3's decoders (~5 % of a full handshake's CPU, measured), while this one
    // reads the session's copy. Its fingerprint is the cache key; an X509Certificate is built
    // only for a certificate not seen before (or for a refusal's log line).
    const peer = socket.getPeerCertificate(false) as PeerCertificate | null | undefined;
    if (!peer?.raw) return refuse('no_certificate', 'the client presented no certificate');
    const err = socket.authorizationError as unknown as string | null | undefined;
    if (err) return refuse(reasonForVerifyError(String(err)), String(err), new X509Certificate(peer.raw));
    if (!socket.authorized) return refuse('unknown_ca', 'the handshake did not authorize the client', new X509Certificate(peer.raw));

    const facts = certificateFacts(socket, peer, socket.isSessionReused());
    if (!facts.ok) return facts;
    // OpenSSL checked validity at the full handshake; a resumed session may outlive the certificate.
    const t = now();
    const leaf = facts.identity.leafCertificate;
    if (t < facts.identity.notBefore.getTime()) return refuse('not_yet_valid', `valid from ${facts.identity.notBefore.toISOString()}`, leaf);
    if (t > facts.identity.notAfter.getTime()) return refuse('expired', `expired at ${facts.identity.notAfter.toISOString()}`, leaf);
    const gate = options.revocation;
    if (!gate) return facts;
    return checkRevocation(gate, leaf, facts);
  }

  return { verify };
}

async function checkRevocation(gate: RevocationGate, leaf: X509Certificate, facts: Extract<Verdict, { ok: true }>): Promise<Verdict> {
  let outcome: RevocationOutcome;
  try {
    // The cached certificate object, the same for every connection of this certificate, so the
    // checker can keep what it derived from it.
    outcome = await gate.check(leaf, facts.identity.issuerCertificate);
  } catch (cause) {
    // The checker promises never to throw; if it does anyway, treat it as "unknown", not as good.
    outcome = { status: 'unknown', method: 'none', cached: false, detail: `checker failed: ${(cause as Error).message}` };
  }
  if (outcome.status === 'good') return { ...facts, revocation: outcome };
  if (outcome.status === 'revoked') {
    return { ok: false, reason: 'revoked', detail: outcome.detail ?? `revoked (${outcome.method})`, peer: summarize(leaf), revocation: outcome };
  }
  if (gate.onUnknown === 'fail-open') return { ...facts, revocation: outcome };
  return { ok: false, reason: 'revocation_unknown', detail: outcome.detail ?? 'revocation status unknown', peer: summarize(leaf), revocation: outcome };
}

function brand(identity: CertIdentity, headers: RenderedHeaders, leafCertificate: X509Certificate, issuerCertificate: X509Certificate): VerifiedIdentity {
  return Object.freeze({ ...identity, headers, leafCertificate, issuerCertificate }) as VerifiedIdentity;
}

function summarize(leaf: X509Certificate): PeerSummary {
  const dn = (name: string) => {
    try {
      return formatRfc4514(name);
    } catch {
      return '(unreadable name)';
    }
  };
  return { subject: dn(leaf.subject), issuer: dn(leaf.issuer), serialHex: leaf.serialNumber.toUpperCase() };
}
