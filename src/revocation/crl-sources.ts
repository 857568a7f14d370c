/**
 * Keeps the CRL store fed: configured files (polled), configured URLs and distribution points
 * discovered in certificates (fetched on a schedule), all in the background.
 *
 * - Files are polled by stat (device, inode, size, mtime, ctime) on an interval rather than
 *   watched: Kubernetes swaps a `..data` symlink, which watchers miss; a changed inode is seen.
 * - URLs are re-fetched every refresh interval and no later than the CRL's nextUpdate, with
 *   conditional GET (ETag / Last-Modified) so an unchanged CRL costs a 304. Failures back off
 *   (5 s doubling, capped at the interval). Every wait is spread ±20 % (poll-delay.ts).
 * - Bytes are parsed only when they changed: a 200 from a server without validators, or a file
 *   rewritten, whose bytes hash the same as the last ones read from that source is treated like
 *   a 304 (seconds-apart polling of a multi-MB CRL must not re-parse it every time).
 * - Parsing is serialized through one queue: two 1M-entry CRLs never load at once (memory peak).
 * - A CRL that fails to load never removes the previous one from the same source.
 * - A discovered distribution point is bound to the issuers whose verified certificates named it:
 *   a CRL of any other CA found there is refused, so it cannot replace theirs. Configured files
 *   and URLs are the operator's and may carry the CRL of any trusted CA.
 */
import { createHash } from 'node:crypto';
import { stat, readFile } from 'node:fs/promises';
import type { RevocationOptions } from '../config/index.js';
import type { FeedCrlOutcome } from './crl-feed.js';
import { loadCrls } from './crl-load.js';
import type { CrlStore } from './crl-store.js';
import { fetchBounded } from './http-fetch.js';
import type { IssuerRegistry } from './issuer-registry.js';
import { MIN_POLL_DELAY_MS, spreadPollDelay } from './poll-delay.js';
import type { RevocationLogger, RevocationObserver } from './types.js';

/** What the sources module needs. */
export interface CrlSourcesDeps {
  readonly options: RevocationOptions['crl'];
  readonly store: CrlStore;
  readonly issuers: IssuerRegistry;
  readonly logger: RevocationLogger;
  readonly now: () => number;
  readonly fetch: typeof fetch;
  /** Called after a load changed the CRLs of these issuers (key hashes). */
  readonly onChanged: (issuerKeyHashes: Set<string>) => void;
  readonly observer?: RevocationObserver | undefined;
  /** Event-loop slice while walking CRL entries (ms). */
  readonly sliceMs?: number;
}

/** The running CRL sources. */
export interface CrlSources {
  /** Resolves when every configured file and URL has been attempted once. Never rejects. */
  ready(): Promise<void>;
  /**
   * Registers distribution-point URLs seen in a certificate issued by `issuerKeyHash` (from a
   * verified path); unseen http:// ones (up to `maxDistributionPoints`) start loading in the
   * background, bound to that issuer. Sync; never throws.
   */
  discover(urls: readonly string[], issuerKeyHash: string): void;
  /** True if `url` is a source (configured or discovered) that has not completed a first attempt. */
  isLoading(url: string): boolean;
  /** Settles once every known source among `urls` completed its first attempt (bounded by the fetch timeout). */
  firstAttempts(urls: readonly string[]): Promise<void>;
  /**
   * Re-runs sources whose CRL named an issuer we did not know (called when one is learned).
   * Resolves when they have run; never rejects.
   */
  retryUnknownIssuers(): Promise<void>;
  /**
   * The trusted CAs changed: every source is read again in full (no validators, no reuse of a
   * CRL whose signer is gone). Resolves when each has been attempted once; never rejects.
   */
  revalidateAll(): Promise<void>;
  /** Settles when the re-runs started by the two calls above have finished; undefined if none is running. */
  pendingReruns(): Promise<void> | undefined;
  /**
   * True while some configured file or URL might hold the CRL of the issuer with this Name (DER)
   * without it being loaded: not read yet, unreadable or refused as a whole on its last read, or
   * holding a CRL of that name it could not verify. Sync; never throws.
   */
  mayHoldUnloadedCrlOf(issuerName: Uint8Array): boolean;
  /** Configured files and URLs whose last read failed and that hold no CRL from an earlier one: their ids. */
  failingConfigured(): string[];
  /**
   * Loads CRL bytes pushed by the revocation feed `url`, like a configured CRL URL (any trusted
   * CA's CRL, same verification and rollback guard), in a slot of its own. Resolves to what became
   * of them; never rejects.
   */
  push(url: string, bytes: Buffer): Promise<FeedCrlOutcome>;
  /** Stops timers and aborts fetches and parses. Idempotent. */
  close(): void;
}

interface Source {
  readonly id: string;
  readonly kind: 'file' | 'url' | 'cdp' | 'feed';
  readonly location: string;
  timer?: NodeJS.Timeout;
  running: boolean;
  rerun: boolean;
  attempted: boolean;
  statKey?: string;
  etag?: string;
  lastModified?: string;
  /** SHA-256 of the bytes last read in full and loaded (not waiting for an issuer): the same again is not parsed. */
  bodyHash?: string;
  failures: number;
  waitingForIssuer: boolean;
  /** The last read failed before every CRL in it could be named (fetch, read, PEM/DER, unsupported). */
  unreadable: boolean;
  /** The last read refused a CRL for a reason other than an issuer not known yet (signature, scope, …). */
  refused: boolean;
  /** Issuer Names (DER hex) of CRLs in the last read that could not be verified. */
  unverifiedNames: Set<string>;
  /** Set when the next run must read in full, ignoring the file's stat and the URL's validators. */
  forceFull: boolean;
  /** For discovered distribution points: the issuers whose certificates named this URL. */
  readonly boundTo?: Set<string>;
  readonly firstAttempt: Promise<void>;
  markAttempted: () => void;
  /** Resolvers of revalidations waiting for this source's next completed run. */
  waiters: Array<() => void>;
}

const BACKOFF_BASE_MS = 5_000;

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('base64');

/**
 * False when the response was sent within the second its Last-Modified names: another change in
 * that second would carry the same Last-Modified (RFC 9110 §8.8.2.2 calls it weak then), and
 * servers such as nginx build their ETag from that same mtime. Such validators are not kept; the
 * next poll is a full GET, which the body hash keeps from being parsed again.
 */
const validatorsSettled = (headers: Headers): boolean => {
  const modified = Date.parse(headers.get('last-modified') ?? '');
  const date = Date.parse(headers.get('date') ?? '');
  return Number.isNaN(modified) || Number.isNaN(date) || date >= modified + 1000;
};

/** Creates the sources and starts loading the configured ones. Sync; never throws. */
export function createCrlSources(deps: CrlSourcesDeps): CrlSources {
  const { options, logger } = deps;
  const abort = new AbortController();
  const sources = new Map<string, Source>();
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  let capLogged = false;

  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };

  let pending: Promise<void> | undefined;
  /** Runs `targets` again and tracks them in `pending` until all have finished. */
  const rerun = (targets: Source[], full: boolean): Promise<void> => {
    if (closed || targets.length === 0) return Promise.resolve();
    const runs = targets.map((source) => {
      if (full) source.forceFull = true;
      const done = new Promise<void>((resolve) => source.waiters.push(resolve));
      void run(source);
      return done;
    });
    const previous = pending;
    const all: Promise<void> = Promise.all([...runs, previous]).then(() => {
      if (pending === all) pending = undefined;
    });
    pending = all;
    return all;
  };
  const add = (kind: Source['kind'], location: string, boundTo?: string): Source => {
    const source = newSource(kind, location, boundTo);
    sources.set(location, source);
    queueMicrotask(() => void run(source));
    return source;
  };
  const newSource = (kind: Source['kind'], location: string, boundTo?: string): Source => {
    let markAttempted = (): void => undefined;
    const firstAttempt = new Promise<void>((resolve) => (markAttempted = resolve));
    const source: Source = {
      id: `${kind}:${location}`,
      kind,
      location,
      running: false,
      rerun: false,
      attempted: false,
      failures: 0,
      waitingForIssuer: false,
      unreadable: false,
      refused: false,
      unverifiedNames: new Set(),
      forceFull: false,
      firstAttempt,
      markAttempted,
      waiters: [],
      ...(boundTo === undefined ? {} : { boundTo: new Set([boundTo]) }),
    };
    return source;
  };
  /** Feed slots (not polled, so not in `sources`), with the last bytes each pushed. */
  const feeds = new Map<string, { source: Source; last?: Buffer }>();
  const applyPushed = async (feed: { source: Source; last?: Buffer }, bytes: Buffer): Promise<FeedCrlOutcome> => {
    feed.last = bytes;
    const before = new Set(deps.store.crlsOf(feed.source.id).map((c) => c.signatureHex));
    await applyBytes(feed.source, bytes);
    if (feed.source.unreadable || feed.source.refused) return 'refused';
    if (feed.source.waitingForIssuer) return 'waiting';
    return deps.store.crlsOf(feed.source.id).some((c) => !before.has(c.signatureHex)) ? 'applied' : 'unchanged';
  };

  const applyBytes = (source: Source, bytes: Buffer): Promise<void> =>
    serialized(async () => {
      if (closed) return;
      // A held CRL is reused without re-verifying only while its signer is still trusted.
      const held = new Map(deps.store.crlsOf(source.id).filter((c) => deps.issuers.knows(c.issuerKeyHash)).map((c) => [c.signatureHex, c]));
      const { crls, failures } = await loadCrls(bytes, {
        issuers: deps.issuers,
        boundTo: source.boundTo,
        reuse: (sig) => held.get(sig),
        sliceMs: deps.sliceMs ?? 5,
        signal: abort.signal,
      });
      if (closed) return;
      for (const f of failures) {
        logger.warn({ source: source.id, index: f.index, reason: f.reason, detail: f.message }, 'CRL rejected; previous CRL (if any) kept');
      }
      if (failures.length > 0) reportFailed(source);
      source.waitingForIssuer = failures.some((f) => f.reason === 'issuer-unknown');
      source.unreadable = failures.some((f) => f.issuerName === undefined);
      source.refused = failures.some((f) => f.reason !== 'issuer-unknown');
      source.unverifiedNames = new Set(failures.flatMap((f) => (f.issuerName === undefined ? [] : [f.issuerName])));
      const outcome = deps.store.apply(source.id, crls);
      // (With failures, the missing CRLs are most likely the ones just refused and logged.)
      for (const crl of failures.length === 0 ? outcome.omitted : []) {
        logger.warn({ source: source.id, issuer: crl.issuer, nextUpdate: new Date(crl.nextUpdate).toISOString() }, 'source no longer provides the CRL of this issuer; keeping the last one until it goes stale');
      }
      for (const crl of outcome.rollbacks) {
        logger.warn({ source: source.id, issuer: crl.issuer, thisUpdate: new Date(crl.thisUpdate).toISOString() }, 'CRL older than the one held; ignored');
      }
      const graceMs = options.staleGraceSeconds * 1000;
      for (const crl of crls) {
        if (held.has(crl.signatureHex) || outcome.rollbacks.includes(crl)) continue;
        if (deps.now() > crl.nextUpdate + graceMs) {
          logger.warn({ source: source.id, issuer: crl.issuer, nextUpdate: new Date(crl.nextUpdate).toISOString() }, 'CRL loaded but already stale');
        }
        logger.info(
          {
            source: source.id,
            issuer: crl.issuer,
            entries: crl.serials.size,
            bytes: crl.serials.byteLength,
            crlNumber: crl.crlNumber,
            nextUpdate: new Date(crl.nextUpdate).toISOString(),
          },
          'CRL loaded',
        );
      }
      reportCurrent(source);
      if (outcome.changedIssuers.size > 0) deps.onChanged(outcome.changedIssuers);
    });

  /** Metrics: every CRL this source holds is current as of now. */
  const reportCurrent = (source: Source): void => {
    for (const crl of deps.store.crlsOf(source.id)) deps.observer?.crlCurrent?.(crl.issuer, crl.serials.size, crl.nextUpdate);
  };
  /** Metrics: this source failed; attributed to the issuers it held, else `unknown`. */
  const reportFailed = (source: Source): void => {
    const held = deps.store.crlsOf(source.id);
    if (held.length === 0) deps.observer?.crlFailed?.('unknown');
    for (const crl of held) deps.observer?.crlFailed?.(crl.issuer);
  };

  const pollFile = async (source: Source): Promise<void> => {
    let key: string;
    try {
      const s = await stat(source.location);
      key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch (err) {
      key = `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
      if (key !== source.statKey) {
        logger.warn({ source: source.id, err }, 'CRL file unreadable; previous CRL (if any) kept');
        reportFailed(source);
      }
      source.statKey = key;
      source.unreadable = true;
      source.bodyHash = undefined; // so the next good read re-parses, and clears `unreadable`
      return;
    }
    if (key === source.statKey && !source.waitingForIssuer) {
      reportCurrent(source);
      deps.observer?.crlPolled?.('file', 'not_modified');
      return;
    }
    source.statKey = key;
    try {
      await applyIfChanged(source, await readFile(source.location));
    } catch (err) {
      logger.warn({ source: source.id, err }, 'CRL file unreadable; previous CRL (if any) kept');
      reportFailed(source);
      source.unreadable = true;
      source.bodyHash = undefined;
      deps.observer?.crlPolled?.('file', 'failed');
    }
  };

  /** Loads `bytes` unless they are the ones last loaded from this source (then: like a 304). */
  const applyIfChanged = async (source: Source, bytes: Buffer): Promise<void> => {
    const kind = source.kind === 'file' ? 'file' : 'url';
    const hash = sha256(bytes);
    if (hash === source.bodyHash && !source.waitingForIssuer) {
      reportCurrent(source);
      deps.observer?.crlPolled?.(kind, 'unchanged');
      return;
    }
    await applyBytes(source, bytes);
    source.bodyHash = source.waitingForIssuer ? undefined : hash;
    deps.observer?.crlPolled?.(kind, 'parsed');
  };

  /** Returns the delay before the next fetch. */
  const fetchUrl = async (source: Source): Promise<number> => {
    const interval = options.refreshIntervalSeconds * 1000;
    const backoff = (): number => spreadPollDelay(Math.min(interval, BACKOFF_BASE_MS * 2 ** Math.min(source.failures++, 10)));
    const failed = (): number => {
      reportFailed(source);
      source.unreadable = true;
      // The next answer is read in full: a 304 or the same bytes would leave `unreadable` set.
      source.etag = source.lastModified = source.bodyHash = undefined;
      deps.observer?.crlPolled?.('url', 'failed');
      return backoff();
    };
    try {
      const headers: Record<string, string> = {};
      if (source.etag !== undefined) headers['if-none-match'] = source.etag;
      if (source.lastModified !== undefined) headers['if-modified-since'] = source.lastModified;
      const res = await fetchBounded(deps.fetch, source.location, {
        method: 'GET',
        headers,
        timeoutMs: options.fetchTimeoutMs,
        maxBytes: options.maxBytes,
        signal: abort.signal,
        redirect: 'follow',
      });
      if (res.status === 200) {
        await applyIfChanged(source, res.body);
        // A CRL naming an issuer we do not know yet must be fetched in full again once we do, so
        // its validators are not kept. (Any other rejection would repeat on identical bytes.)
        if (source.waitingForIssuer) return backoff();
        const settled = validatorsSettled(res.headers);
        source.etag = (settled && res.headers.get('etag')) || undefined;
        source.lastModified = (settled && res.headers.get('last-modified')) || undefined;
      } else if (res.status === 304) {
        reportCurrent(source);
        deps.observer?.crlPolled?.('url', 'not_modified');
      } else {
        logger.warn({ source: source.id, status: res.status }, 'CRL download failed; previous CRL (if any) kept');
        return failed();
      }
    } catch (err) {
      if (closed) return interval;
      logger.warn({ source: source.id, err }, 'CRL download failed; previous CRL (if any) kept');
      return failed();
    }
    const held = deps.store.crlsOf(source.id);
    if (held.length === 0) return backoff();
    const nextUpdate = Math.min(...held.map((c) => c.nextUpdate));
    const untilNext = nextUpdate - deps.now();
    // Past nextUpdate and still the same CRL: the CA is late; poll more often until it publishes.
    if (untilNext <= 0) return backoff();
    source.failures = 0;
    // Spread, but never past nextUpdate.
    return Math.max(MIN_POLL_DELAY_MS, Math.min(spreadPollDelay(interval), untilNext));
  };

  const run = async (source: Source): Promise<void> => {
    if (closed) return;
    if (source.running) {
      source.rerun = true;
      return;
    }
    source.running = true;
    clearTimeout(source.timer);
    let delay = spreadPollDelay(options.filePollIntervalSeconds * 1000);
    if (source.forceFull) {
      source.forceFull = false;
      source.statKey = undefined;
      source.etag = undefined;
      source.lastModified = undefined;
      source.bodyHash = undefined;
    }
    try {
      if (source.kind === 'file') await pollFile(source);
      else delay = await fetchUrl(source);
    } catch (err) {
      logger.error({ source: source.id, err }, 'CRL source failed unexpectedly');
    } finally {
      source.running = false;
      source.attempted = true;
      source.markAttempted();
      // Waiters registered during this run wait for the re-run it owes them.
      if (!source.rerun) for (const resolve of source.waiters.splice(0)) resolve();
    }
    if (closed) return;
    if (source.rerun) {
      source.rerun = false;
      queueMicrotask(() => void run(source));
      return;
    }
    source.timer = setTimeout(() => void run(source), delay);
    source.timer.unref();
  };

  const configured = [
    ...options.files.map((f) => add('file', f)),
    ...options.urls.map((u) => add('url', u)),
  ];

  return {
    ready: () => Promise.all(configured.map((s) => s.firstAttempt)).then(() => undefined),
    discover(urls, issuerKeyHash) {
      if (closed || !options.fetchDistributionPoints) return;
      for (const url of urls) {
        const known = sources.get(url);
        if (known !== undefined) {
          // Another issuer's certificates name the same URL: it may now carry that issuer's CRL too.
          if (known.boundTo !== undefined && !known.boundTo.has(issuerKeyHash)) {
            known.boundTo.add(issuerKeyHash);
            known.forceFull = true;
            void run(known);
          }
          continue;
        }
        if (!url.startsWith('http://')) continue;
        const discovered = sources.size - configured.length;
        if (discovered >= options.maxDistributionPoints) {
          if (!capLogged) logger.warn({ url, max: options.maxDistributionPoints }, 'too many CRL distribution points; ignoring new ones');
          capLogged = true;
          continue;
        }
        logger.info({ url }, 'CRL distribution point discovered; fetching in the background');
        add('cdp', url, issuerKeyHash);
      }
    },
    isLoading: (url) => sources.get(url)?.attempted === false,
    firstAttempts: (urls) => Promise.all(urls.map((u) => sources.get(u)?.firstAttempt)).then(() => undefined),
    retryUnknownIssuers() {
      const polled = rerun([...sources.values()].filter((source) => source.waitingForIssuer), false);
      // A pushed CRL of an issuer learned only now is applied again from the bytes it came in;
      // checks wait for it through pendingReruns() like for the polled sources.
      const feedRetries = [...feeds.values()].filter((f) => f.source.waitingForIssuer && f.last).map((f) => applyPushed(f, f.last!));
      if (feedRetries.length === 0) return polled;
      const all: Promise<void> = Promise.all([polled, ...feedRetries]).then(() => {
        if (pending === all) pending = undefined;
      });
      pending = all;
      return all;
    },
    revalidateAll() {
      return rerun([...sources.values()], true);
    },
    pendingReruns: () => pending,
    // Failing only while the source serves nothing: a transient fetch error after a good load
    // keeps its CRL in use (until stale), so readiness must not drop the whole fleet for it.
    failingConfigured: () => configured.filter((s) => (s.unreadable || s.refused) && deps.store.crlsOf(s.id).length === 0).map((s) => s.id),
    mayHoldUnloadedCrlOf(issuerName) {
      const hex = Buffer.from(issuerName).toString('hex');
      return configured.some((s) => !s.attempted || s.unreadable || s.unverifiedNames.has(hex));
    },
    push(url, bytes) {
      if (closed) return Promise.resolve('refused');
      let feed = feeds.get(url);
      if (feed === undefined) feeds.set(url, (feed = { source: newSource('feed', url) }));
      return applyPushed(feed, bytes).catch((err: unknown) => {
        logger.error({ source: feed.source.id, err }, 'pushed CRL failed unexpectedly');
        return 'refused' as const;
      });
    },
    close() {
      closed = true;
      abort.abort();
      for (const source of sources.values()) {
        clearTimeout(source.timer);
        source.markAttempted();
        for (const resolve of source.waiters.splice(0)) resolve();
      }
    },
  };
}
