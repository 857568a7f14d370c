/**
 * OCSP checking with a bounded cache.
 *
 * - Cache key: issuer key hash + serial. A verified answer lives until
 *   min(nextUpdate, now + maxCacheTtl). An answer without nextUpdate ("newer information is
 *   always available") is refused once its thisUpdate is older than maxAgeWithoutNextUpdate
 *   (reason ocsp-stale) and otherwise lives at most until thisUpdate + that bound.
 * - Failures (timeout, HTTP error, bad response) are cached as `unknown` for negativeCacheSeconds
 *   so a dead responder is not asked again on every handshake; a responder's own "unknown" is
 *   capped to the same short time (it may learn about the certificate soon).
 * - Single flight: concurrent checks of one certificate share one request.
 * - Refresh ahead (our answer to long-lived connections): a hit on a verified entry past 75% of
 *   its lifetime returns the cached answer and re-asks the responder in the background; if the
 *   answer turns to `revoked`, `onAnswer` lets the checker emit onRevoked. The proxy therefore
 *   only has to call `check()` again periodically for certificates of open connections.
 * - A failed background refresh never replaces a still-valid verified answer.
 */
import { LRUCache } from 'lru-cache';
import type { RevocationOptions } from '../config/index.js';
import { SidecarError, isSidecarError } from '../errors.js';
import { ocspResponderUrls } from './cert-extensions.js';
import type { CertFields } from './cert-fields.js';
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
  readonly expiresAt: number;
  /** When a hit should trigger a background re-check; Infinity for negative entries. */
  readonly refreshAt: number;
  readonly verified: boolean;
  /** The answer's thisUpdate (verified answers only). */
  readonly thisUpdate?: number;
}

/**
 * Whether a fresh verified answer may replace the one held. Over plain HTTP without a nonce an
 * attacker can replay an older signed "good": so an answer older than the held one never replaces
 * it, and a held "revoked" is never turned back into "good" while it is valid (revocation is final;
 * a released certificateHold is seen once the held answer expires).
 */
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
    refreshAt: Infinity,
    verified: false,
  });

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
    return {
      status: answer.status,
      detail: `OCSP responder (${answer.signer}-signed) says ${answer.status}`,
      expiresAt: t + ttl,
      refreshAt: t + ttl * 0.75,
      verified: true,
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
          return held!;
        }
        deps.onAnswer(issuer.keyHash, leaf.serialHex, entry.status);
        return entry;
      })
      .catch((err: unknown) => {
        const reason = isSidecarError(err) ? err.reason : 'internal';
        deps.observer?.ocspExchange?.(took(), reason);
        const message = err instanceof Error ? err.message : String(err);
        logger.warn({ url, serial: leaf.serialHex, reason, detail: message }, 'OCSP check failed');
        const held = cache.get(key);
        // Keep a still-valid verified answer rather than downgrading it to a failure.
        if (held !== undefined && held.verified && held.expiresAt > now()) return held;
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
        if (t >= hit.refreshAt) void refresh(key, leaf, issuer, url);
        return { status: hit.status, cached: true, detail: hit.detail };
      }
      const entry = await refresh(key, leaf, issuer, url);
      return { status: entry.status, cached: false, detail: entry.detail };
    },
    close() {
      closed = true;
      abort.abort();
      cache.clear();
    },
  };
}

function responderUrlOf(leaf: CertFields): string | undefined {
  try {
    return ocspResponderUrls(leaf).find((u) => u.startsWith('http://') || u.startsWith('https://'));
  } catch {
    return undefined; // a malformed AIA is treated as absent
  }
}

