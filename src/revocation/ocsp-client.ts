/**
 * OCSP checking with a bounded cache.
 *
 * - Cache key: issuer key hash + serial. A verified answer is held until
 *   min(nextUpdate, now + maxCacheTtl). An answer without nextUpdate ("newer information is
 *   always available") is refused once its thisUpdate is older than maxAgeWithoutNextUpdate
 *   (reason ocsp-stale) and otherwise lives at most until thisUpdate + that bound.
 * - Bounded staleness: a held `good` is trusted without asking for maxGoodAgeSeconds after it
 *   arrived (counted from our exchange, not from its thisUpdate: responders that pre-sign answers
 *   would otherwise never be fresh). Without a nonce, the same answer again (same thisUpdate) does
 *   not restart that time, and no good is trusted past thisUpdate + min(clockSkew, maxGoodAge) +
 *   maxGoodAge (replayed answers captured before a revocation): a pre-signing responder must
 *   re-sign at least every maxGoodAgeSeconds (or enable `nonce`), else its devices turn unknown. A check that finds it older waits for the responder (single
 *   flight), so while the responder answers, no connection is accepted on a `good` older than
 *   that. A nextUpdate hours away no longer means hours of trust: it only says how long the answer
 *   may stand in for a responder that cannot be reached.
 * - Failures (timeout, HTTP error, bad response) are cached as `unknown` for negativeCacheSeconds
 *   so a dead responder is not asked again on every handshake; a responder's own "unknown" is
 *   capped to the same short time (it may learn about the certificate soon).
 * - A failed re-ask never replaces a still-valid verified answer, and the responder is asked again
 *   at most once per negativeCacheSeconds for that certificate. But a `good` is never trusted past
 *   maxGoodAge: once a re-ask failed, it answers `unknown` (onUnknown decides: fail-closed by
 *   default), so blocking the responder cannot keep a revoked device in. A held `revoked` stays.
 * - Single flight: concurrent checks of one certificate share one request.
 * - Refresh ahead: a hit past 75% of the trusted time (maxGoodAge for `good`, the lifetime
 *   otherwise) returns the cached answer and re-asks in the background, so a certificate in
 *   steady use never waits; if the answer turns to `revoked`, `onAnswer` lets the checker emit
 *   onRevoked. The proxy re-checks the certificates of open connections often enough that each is
 *   re-asked before its `good` passes maxGoodAge (serve/enforce-revocation.ts).
 */
import { LRUCache } from 'lru-cache';
import type { RevocationOptions } from '../config/index.js';
import { SidecarError, isSidecarError } from '../errors.js';
import { ocspResponderUrls, type CertFields } from '../pki/index.js';
import { fetchBounded } from './http-fetch.js';
import type { IssuerInfo } from './issuer-registry.js';
import type { RevocationLogger, RevocationObserver, RevocationStatus } from './types.js';

/**
 * The OCSP encoder and decoder (pkijs, asn1js), loaded on the first OCSP exchange: a sidecar that
 * checks CRLs only never needs them, and they are ~6 MB of RSS.
 */
let ocspCodec: Promise<typeof import('./ocsp-request.js') & typeof import('./ocsp-response.js')> | undefined;
const loadOcspCodec = () => (ocspCodec ??= Promise.all([import('./ocsp-request.js'), import('./ocsp-response.js')]).then(([req, res]) => ({ ...req, ...res })));

/** An OCSP answer for the checker. */
export interface OcspResult {
  readonly status: RevocationStatus;
  readonly cached: boolean;
  readonly detail: string;
}

/** What the OCSP client needs. */
export interface OcspClientDeps {
  readonly options: RevocationOptions['ocsp'];
  readonly logger: RevocationLogger;
  readonly now: () => number;
  readonly fetch: typeof fetch;
  /** Called after every responder exchange with its verified status (not for failures). */
  readonly onAnswer: (issuerKeyHash: string, serialHex: string, status: RevocationStatus) => void;
  readonly observer?: RevocationObserver | undefined;
}

/** The OCSP client. */
export interface OcspClient {
  /** Async; never rejects: failures answer `unknown` with a detail (and are logged). */
  check(leaf: CertFields, issuer: IssuerInfo): Promise<OcspResult>;
  /** Aborts in-flight requests; later checks answer `unknown`. Idempotent. */
  close(): void;
}

interface Entry {
  readonly status: RevocationStatus;
  readonly detail: string;
  /** Until when the answer may be used at all (nextUpdate, maxCacheTtl; negative entries: negativeCacheSeconds). */
  readonly expiresAt: number;
  /** Until when it is served without asking: `good` maxGoodAge after it arrived, otherwise expiresAt. */
  readonly trustedUntil: number;
  /** When a hit should trigger a background re-check; Infinity for negative entries. */
  readonly refreshAt: number;
  readonly verified: boolean;
  /** When our exchange received it (verified answers only). */
  readonly receivedAt?: number;
  /** The answer's thisUpdate (verified answers only). */
  readonly thisUpdate?: number;
  /** Set when re-asking about this held answer failed: not asked again before then. */
  readonly retryAt?: number;
}

/**
 * Whether a fresh verified answer may replace the one held. Over plain HTTP without a nonce an
 * attacker can replay an older signed "good": so an answer older than the held one never replaces
 * it, and a held "revoked" is never turned back into "good" while it is valid (revocation is final;
 * a released certificateHold is seen once the held answer expires).
 */
/** True if `next` is the answer `held` already is (same status and thisUpdate), while `held` is valid. */
function isSameAnswer(held: Entry | undefined, next: Entry, t: number): boolean {
  return held !== undefined && held.verified && held.expiresAt > t && held.thisUpdate !== undefined && held.thisUpdate === next.thisUpdate && held.status === next.status;
}

function mayReplace(held: Entry | undefined, next: Entry, t: number): boolean {
  if (held === undefined || !held.verified || held.expiresAt <= t || held.thisUpdate === undefined || next.thisUpdate === undefined) return true;
  if (next.thisUpdate < held.thisUpdate) return false;
  return !(held.status === 'revoked' && next.status !== 'revoked');
}

/** Creates the client. Sync; never throws. */
export function createOcspClient(deps: OcspClientDeps): OcspClient {
  const { options, logger, now } = deps;
  const cache = new LRUCache<string, Entry>({ max: options.maxCacheEntries });
  const inflight = new Map<string, Promise<Entry>>();
  const abort = new AbortController();
  let closed = false;

  const negative = (detail: string): Entry => ({
    status: 'unknown',
    detail,
    expiresAt: now() + options.negativeCacheSeconds * 1000,
    trustedUntil: now() + options.negativeCacheSeconds * 1000,
    refreshAt: Infinity,
    verified: false,
  });

  /** A held answer a re-ask could not replace: asked again only after negativeCacheSeconds. */
  const retryLater = (held: Entry): Entry => ({ ...held, retryAt: now() + options.negativeCacheSeconds * 1000 });

  const exchange = async (leaf: CertFields, issuer: IssuerInfo, url: string): Promise<Entry> => {
    const { buildOcspRequest, verifyOcspResponse } = await loadOcspCodec();
    const request = buildOcspRequest(leaf, issuer.fields, options.hash, options.nonce);
    const res = await fetchBounded(deps.fetch, url, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
      body: request.der,
      timeoutMs: options.timeoutMs,
      maxBytes: options.maxResponseBytes,
      signal: abort.signal,
      redirect: 'error',
    });
    if (res.status !== 200) {
      throw new SidecarError('ERR_REVOCATION_SOURCE', 'http-status', `responder answered HTTP ${res.status}`);
    }
    const answer = await verifyOcspResponse(res.body, {
      leaf,
      issuer,
      now: now(),
      skewMs: options.clockSkewSeconds * 1000,
      maxAgeWithoutNextUpdateMs: options.maxAgeWithoutNextUpdateSeconds * 1000,
      ...(request.nonce === undefined ? {} : { nonce: request.nonce }),
    });
    const t = now();
    let ttl = Math.min(options.maxCacheTtlSeconds * 1000, answer.validUntil - t);
    if (answer.status === 'unknown') ttl = Math.min(ttl, options.negativeCacheSeconds * 1000);
    ttl = Math.max(ttl, 0);
    // Without a nonce nothing proves the answer was signed for this request: its trust also
    // counts from its own thisUpdate (with a tolerance of up to maxGoodAge for the responder's
    // clock), else replaying a series of answers captured before the revocation, each newer than
    // the last, kept restarting maxGoodAge (found by review).
    const maxGoodMs = options.maxGoodAgeSeconds * 1000;
    const goodFrom = options.nonce ? t : Math.min(t, answer.thisUpdate + Math.min(options.clockSkewSeconds * 1000, maxGoodMs));
    const trusted = answer.status === 'good' ? Math.max(0, Math.min(ttl, goodFrom + maxGoodMs - t)) : ttl;
    return {
      status: answer.status,
      detail: `OCSP responder (${answer.signer}-signed) says ${answer.status}`,
      expiresAt: t + ttl,
      trustedUntil: t + trusted,
      refreshAt: t + trusted * 0.75,
      verified: true,
      receivedAt: t,
      thisUpdate: answer.thisUpdate,
    };
  };

  const refresh = (key: string, leaf: CertFields, issuer: IssuerInfo, url: string): Promise<Entry> => {
    const running = inflight.get(key);
    if (running !== undefined) return running;
    const started = process.hrtime.bigint();
    const took = () => Number(process.hrtime.bigint() - started) / 1e9;
    const attempt = exchange(leaf, issuer, url)
      .then((entry) => {
        deps.observer?.ocspExchange?.(took(), 'ok');
        const held = cache.get(key);
        if (!mayReplace(held, entry, now())) {
          logger.warn({ url, serial: leaf.serialHex, status: entry.status, held: held!.status }, 'OCSP answer older than the one held, or un-revoking it; ignored');
          return retryLater(held!);
        }
        // The same signed answer again (no nonce proves it new): not fresher, so it does not
        // restart maxGoodAge. Otherwise anyone on the plain-HTTP path who replays the last good
        // keeps a revoked device trusted until that answer's nextUpdate (found by review).
        if (!options.nonce && isSameAnswer(held, entry, now())) return retryLater(held!);
        deps.onAnswer(issuer.keyHash, leaf.serialHex, entry.status);
        return entry;
      })
      .catch((err: unknown) => {
        const reason = isSidecarError(err) ? err.fault : 'internal';
        deps.observer?.ocspExchange?.(took(), reason);
        const message = err instanceof Error ? err.message : String(err);
        logger.warn({ url, serial: leaf.serialHex, reason, detail: message }, 'OCSP check failed');
        const held = cache.get(key);
        // Keep a still-valid verified answer rather than downgrading it to a failure.
        if (held !== undefined && held.verified && held.expiresAt > now()) return retryLater(held);
        return negative(`OCSP failed (${reason}): ${message}`);
      })
      .then((entry) => {
        if (!closed && entry.expiresAt > now()) cache.set(key, entry);
        return entry;
      })
      .finally(() => inflight.delete(key));
    inflight.set(key, attempt);
    return attempt;
  };

  return {
    async check(leaf, issuer) {
      if (closed) return { status: 'unknown', cached: false, detail: 'revocation checker closed' };
      const url = options.overrideUrl ?? responderUrlOf(leaf);
      if (url === undefined) return { status: 'unknown', cached: false, detail: 'no OCSP responder URL (AIA) in the certificate' };
      const key = `${issuer.keyHash}:${leaf.serialHex}`;
      const hit = cache.get(key);
      const t = now();
      if (hit !== undefined && hit.expiresAt > t) {
        if (t < hit.trustedUntil) {
          if (t >= hit.refreshAt && t >= (hit.retryAt ?? t)) void refresh(key, leaf, issuer, url);
          return { status: hit.status, cached: true, detail: hit.detail };
        }
        // Past maxGoodAge while a re-ask failed recently: not asked again yet (negative cache).
        if (hit.retryAt !== undefined && t < hit.retryAt) return answerOf(hit, t, true);
      }
      return answerOf(await refresh(key, leaf, issuer, url), now(), false);
    },
    close() {
      closed = true;
      abort.abort();
      cache.clear();
    },
  };
}

/**
 * What a check answers from `entry` at `t`. A `good` older than maxGoodAge (its re-ask failed: the
 * responder is down, or someone on the plain-HTTP path drops the exchange) is no longer trusted:
 * `unknown`, so onUnknown decides (fail-closed by default) — holding it until nextUpdate let a
 * revoked device in for up to maxCacheTtlSeconds while the responder was blocked. A held
 * `revoked` stays revoked (revocation is final).
 */
function answerOf(entry: Entry, t: number, cached: boolean): OcspResult {
  if (t < entry.trustedUntil || entry.receivedAt === undefined) return { status: entry.status, cached, detail: entry.detail };
  const age = Math.round((t - entry.receivedAt) / 1000);
  if (entry.status === 'good') return { status: 'unknown', cached, detail: `ocsp-stale-good: the last good is ${age} s old (over ocsp.maxGoodAgeSeconds) and re-asking the responder failed` };
  return { status: entry.status, cached, detail: `${entry.detail} (held ${age} s: re-asking the responder failed)` };
}

function responderUrlOf(leaf: CertFields): string | undefined {
  try {
    return ocspResponderUrls(leaf).find((u) => u.startsWith('http://') || u.startsWith('https://'));
  } catch {
    return undefined; // a malformed AIA is treated as absent
  }
}

