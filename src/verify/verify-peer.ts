/**
 * `verifyPeer`: the single place that turns a finished TLS handshake into a Verdict. It runs for
 * every connection, resumed ones included, and is the only code that can create a
 * `VerifiedIdentity` — so a request can only be forwarded with an identity this module vouched for.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { extractIdentity, type CertIdentity, type DeviceIdRule, type RenderedHeaders } from '../identity/index.js';
import { formatRfc4514, serialHexOfCertificate } from '../pki/index.js';
import { reasonForVerifyError, type FailureReason } from './reasons.js';
import { buildVerifiedPath, presentedCertificates, type CertPath } from './path.js';
import type { TrustIndex } from './trust.js';

declare const verifiedBrand: unique symbol;

/** An identity that passed every check. Only this module can make one. */
export interface VerifiedIdentity extends CertIdentity {
  readonly [verifiedBrand]: true;
  /** The headers to set upstream, rendered once for this certificate. */
  readonly headers: RenderedHeaders;
  /** The verified path: leaf first, the configured root last (for revocation re-checks). */
  readonly path: CertPath;
  /** The client certificate and the CA that signed it (the path's first two). */
  readonly leafCertificate: X509Certificate;
  readonly issuerCertificate: X509Certificate;
  /** The end of the whole path's validity (ms since epoch): no request may be forwarded after it. */
  readonly validUntilMs: number;
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
  /**
   * The status of `cert`, signed by `issuer`; `role` says whether it is the leaf or a CA of the
   * path below the anchor (the checker applies its policy for CA certificates). Never rejects.
   */
  check(cert: X509Certificate, issuer: X509Certificate, role: 'leaf' | 'ca'): Promise<RevocationOutcome>;
  readonly onUnknown: 'fail-closed' | 'fail-open';
  /**
   * A number that changes whenever a certificate the checker has answered about turns revoked
   * (a new CRL, an OCSP answer): a verdict awaited across such a change is reached again.
   */
  readonly generation: () => number;
}

/**
 * Candidates shared between processes for resumed sessions (see serve/path-hints.ts): never
 * trusted, only offered to the path builder like certificates a client sent.
 */
export interface PathHints {
  /** The intermediates another process saw with this leaf (by fingerprint256), if any. */
  recall(leafFingerprint: string): readonly X509Certificate[] | undefined;
  /** Tells the other processes which client-sent intermediates this leaf's verified path uses. */
  share(leafFingerprint: string, certificates: readonly X509Certificate[]): void;
}

/** How the verifier is built. `trust` is a getter so a CA reload is seen by the next handshake. */
export interface PeerVerifierOptions {
  readonly trust: () => TrustIndex;
  readonly maxChainDepth: number;
  readonly requireClientAuthEku: boolean;
  readonly deviceIdRules: readonly DeviceIdRule[];
  readonly renderHeaders: (identity: CertIdentity) => RenderedHeaders;
  readonly revocation?: RevocationGate | undefined;
  readonly hints?: PathHints | undefined;
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
  /**
   * The CA certificates the client presented with this leaf at its last full handshake: candidates
   * (checked again on every build) when the path must be rebuilt for a resumed session, which
   * carries only the leaf — after a reload, or once an intermediate of the old path expired.
   */
  readonly presented: readonly X509Certificate[];
}

type Accepted = Extract<Verdict, { ok: true }>;

/** Builds a verifier. Pure until `verify` is called. */
export function createPeerVerifier(options: PeerVerifierOptions): PeerVerifier {
  const now = options.now ?? Date.now;
  // Path building, identity extraction and header rendering depend only on the certificate, the
  // trust snapshot and the path's validity window, so they are done once per certificate:
  // resumed sessions and reconnecting devices reuse them. Time and revocation are re-checked on
  // every connection.
  const cache = new LRUCache<string, CachedFacts>({ max: options.cacheEntries ?? 20_000 });

  function refuse(reason: FailureReason, detail: string, leaf?: X509Certificate): Verdict {
    return { ok: false, reason, detail, ...(leaf ? { peer: summarize(leaf) } : {}) };
  }

  function certificateFacts(socket: TLSSocket, peer: PeerCertificate, resumed: boolean, t: number): Verdict {
    const trust = options.trust();
    const key = peer.fingerprint256;
    const hit = cache.get(key);
    // A cached path whose window has closed (an intermediate expired) is rebuilt: another path may exist.
    if (hit && hit.trust === trust && (!hit.verdict.ok || (t >= hit.verdict.identity.path.validFromMs && t <= hit.verdict.identity.validUntilMs))) return hit.verdict;
    // First sight: the full object, which carries what the client sent beyond its leaf. A resumed
    // session carries only the leaf: its candidates are what the device presented at its last full
    // handshake here, or what another worker saw (hints) — checked like anything a client sends.
    const full = socket.getPeerX509Certificate();
    const leaf = full ?? new X509Certificate(peer.raw);
    const sent = presentedCertificates(full);
    const presented = sent.length > 0 ? sent : (hit?.presented ?? options.hints?.recall(key) ?? []);
    const built = buildVerifiedPath(leaf, presented, trust, { now: t, maxCaCertificates: options.maxChainDepth });
    if (!built.ok) {
      // Not cached: a full handshake (with the intermediates) or a later reload may fix it.
      const detail = resumed && built.reason === 'unknown_ca' ? `resumed session: ${built.detail} (its intermediates are not known here); a full handshake is needed` : built.detail;
      return refuse(built.reason, detail, leaf);
    }
    const path = built.path;
    if (options.hints && !hit && sent.length > 0) {
      // First sight of this device here: tell the other workers which intermediates it sent.
      const configured = new Set(trust.certificates.map((c) => c.fingerprint256));
      options.hints.share(key, path.certificates.slice(1).filter((c) => !configured.has(c.fingerprint256)));
    }
    let verdict: Verdict;
    if (options.requireClientAuthEku && !(leaf.keyUsage ?? []).includes(CLIENT_AUTH_OID)) {
      verdict = refuse('bad_key_usage', 'the certificate has no clientAuth extended key usage', leaf);
    } else {
      let identity: CertIdentity | undefined;
      try {
        identity = extractIdentity(leaf, path.certificates.slice(1), options.deviceIdRules);
      } catch (err) {
        // A CA-signed certificate whose names cannot be rendered safely (e.g. non-ASCII in a SAN
        // URI) yields no usable identity: refuse it rather than forward something half-read.
        verdict = refuse('no_device_id', `certificate names cannot be read: ${(err as Error).message}`, leaf);
        cache.set(key, { trust, verdict, presented });
        return verdict;
      }
      verdict = identity ? { ok: true, identity: brand(identity, options.renderHeaders(identity), path) } : refuse('no_device_id', 'no deviceId rule matched the certificate', leaf);
    }
    cache.set(key, { trust, verdict, presented });
    return verdict;
  }

  /** How many times a verification is redone because trust or revocation data changed while it waited. */
  const MAX_RETRIES = 3;

  function verify(socket: TLSSocket, attempt = 0): Verdict | Promise<Verdict> {
    // Absence of a peer certificate is the test, not `authorized`: Node once reported resumed TLS 1.3
    // sessions without a client certificate as authorized.
    // The legacy accessor, not getPeerX509Certificate(): that one duplicates the certificate
    // through OpenSSL 3's decoders (~5 % of a full handshake's CPU, measured), while this one
    // reads the session's copy. Its fingerprint is the cache key; X509Certificate objects are
    // built only for a certificate not seen before (or for a refusal's log line).
    const peer = socket.getPeerCertificate(false) as PeerCertificate | null | undefined;
    if (!peer?.raw) return refuse('no_certificate', 'the client presented no certificate');
    const err = socket.authorizationError as unknown as string | null | undefined;
    if (err) return refuse(reasonForVerifyError(String(err)), String(err), new X509Certificate(peer.raw));
    if (!socket.authorized) return refuse('unknown_ca', 'the handshake did not authorize the client', new X509Certificate(peer.raw));

    const t = now();
    const trust = options.trust();
    const facts = certificateFacts(socket, peer, socket.isSessionReused(), t);
    if (!facts.ok) return facts;
    const gate = options.revocation;
    if (!gate) return facts;
    // The answers for a path are awaited concurrently, so one may have been read before a CRL or
    // OCSP change that another was still waiting on; and a reload may swap the CA bundle meanwhile.
    // A verdict reached across either is not delivered: the connection is verified again.
    const generation = gate.generation();
    return checkRevocation(gate, facts).then((verdict) => {
      if (options.trust() === trust && gate.generation() === generation) return verdict;
      if (attempt >= MAX_RETRIES) return refuse('revocation_unknown', 'trust or revocation data kept changing during verification', facts.identity.leafCertificate);
      return verify(socket, attempt + 1);
    });
  }

  return { verify };
}

/**
 * Asks the gate about every certificate of the path below the anchor, concurrently. Revoked
 * anywhere refuses; unknown anywhere is decided by `onUnknown`. The reported outcome is the leaf's
 * unless a CA's answer decided the verdict.
 */
async function checkRevocation(gate: RevocationGate, facts: Accepted): Promise<Verdict> {
  const certs = facts.identity.path.certificates;
  const asks: Promise<RevocationOutcome>[] = [];
  for (let i = 0; i + 1 < certs.length; i++) asks.push(askGate(gate, certs[i]!, certs[i + 1]!, i === 0 ? 'leaf' : 'ca'));
  if (asks.length === 0) return facts; // a configured root presented as the client certificate
  const decision = decideRevocation(await Promise.all(asks), gate.onUnknown);
  if (decision.accept) return { ...facts, revocation: decision.outcome };
  const { outcome: o, index } = decision;
  const [reason, fallback] = o.status === 'revoked' ? (['revoked', `revoked (${o.method})`] as const) : (['revocation_unknown', 'revocation status unknown'] as const);
  return { ok: false, reason, detail: describeLink(certs, index, o.detail ?? fallback), peer: summarize(certs[0]!), revocation: o };
}

/**
 * The verdict of a path's revocation answers (leaf first): revoked anywhere refuses; unknown
 * anywhere refuses under fail-closed; otherwise accepted. `outcome` is the answer that decided
 * (the leaf's when all are good) and `index` its position in the path. Pure.
 */
export function decideRevocation(
  outcomes: readonly RevocationOutcome[],
  onUnknown: RevocationGate['onUnknown'],
): { readonly accept: boolean; readonly outcome: RevocationOutcome; readonly index: number } {
  const revoked = outcomes.findIndex((o) => o.status === 'revoked');
  if (revoked !== -1) return { accept: false, outcome: outcomes[revoked]!, index: revoked };
  const unknown = outcomes.findIndex((o) => o.status === 'unknown');
  if (unknown === -1) return { accept: true, outcome: outcomes[0]!, index: 0 };
  return { accept: onUnknown === 'fail-open', outcome: outcomes[unknown]!, index: unknown };
}

async function askGate(gate: RevocationGate, cert: X509Certificate, issuer: X509Certificate, role: 'leaf' | 'ca'): Promise<RevocationOutcome> {
  try {
    return await gate.check(cert, issuer, role);
  } catch (cause) {
    // The checker promises never to throw; if it does anyway, treat it as "unknown", not as good.
    return { status: 'unknown', method: 'none', cached: false, detail: `checker failed: ${(cause as Error).message}` };
  }
}

/** A refusal's detail names the CA certificate when it was not the leaf that decided. */
function describeLink(certs: readonly X509Certificate[], index: number, detail: string): string {
  return index === 0 ? detail : `CA certificate ${certs[index]!.subject.replace(/\n/g, ', ')}: ${detail}`;
}

function brand(identity: CertIdentity, headers: RenderedHeaders, path: CertPath): VerifiedIdentity {
  const [leafCertificate, issuer] = path.certificates;
  return Object.freeze({
    ...identity,
    headers,
    path,
    leafCertificate: leafCertificate!,
    issuerCertificate: issuer ?? leafCertificate!,
    validUntilMs: path.validUntilMs,
  }) as VerifiedIdentity;
}

function summarize(leaf: X509Certificate): PeerSummary {
  const dn = (name: string) => {
    try {
      return formatRfc4514(name);
    } catch {
      return '(unreadable name)';
    }
  };
  return { subject: dn(leaf.subject), issuer: dn(leaf.issuer), serialHex: serialHexOfCertificate(leaf) };
}
