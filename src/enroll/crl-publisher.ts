/**
 * Keeps the device CA's CRL signed and fresh: one CRL in memory, replaced whole (never patched)
 * after a revocation or when half its validity has passed.
 *
 * Why half the validity: a relying party that fetched the CRL just before it was replaced still
 * holds a CRL valid for half the period, so one failed regeneration (a locked store, a busy HSM)
 * costs nothing visible; the timer retries, and the old CRL keeps being served until nextUpdate.
 * Generations run one at a time, and a regeneration asked for while one runs starts after it and
 * reads the store afresh: a revocation is never lost to a generation that read the store just
 * before it, and CRL numbers and thisUpdate only ever grow in what is served.
 */
import { createHash } from 'node:crypto';
import { issueCrl, type SigningIdentity } from '../pki/index.js';
import type { RevokedEntry } from './store/index.js';

/** A signed CRL and the facts about it that HTTP caching and metrics need. */
export interface PublishedCrl {
  readonly der: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly crlNumber: bigint;
  /**
   * Strong entity tag, quoted: the CRL number and a hash of the DER, so two CRLs never share one
   * (even from two stores that both count from 1). Computed once per generation, never per request.
   */
  readonly etag: string;
  /**
   * True when the CRL served before this one has the same thisUpdate (CRL times are whole
   * seconds, and two revocations a few ms apart each re-sign): Last-Modified cannot tell the two
   * apart, so If-Modified-Since must not be answered 304 for this one.
   */
  readonly thisUpdateShared: boolean;
}

/** What the publisher needs. */
export interface CrlPublisherOptions {
  /** The CA that signs the CRL (its key must allow cRLSign). */
  readonly issuer: SigningIdentity;
  /** Revoked certificates to list, as of `now` (expired ones may be left out). */
  readonly listRevoked: (now: Date) => Promise<RevokedEntry[]>;
  /** The next CRL number; must increase across restarts (RFC 5280 §5.2.3). */
  readonly nextCrlNumber: () => Promise<bigint>;
  /** nextUpdate = thisUpdate + this (> 0). */
  readonly validitySeconds: number;
  readonly now?: () => Date;
  /** Told of every failed generation (the previous CRL stays served). Must not throw. */
  readonly onError?: (err: unknown) => void;
  /** Told of every newly signed CRL, once it is the one served (the revocation feed). Must not throw. */
  readonly onPublished?: (crl: PublishedCrl) => void;
}

/** The publisher. */
export interface CrlPublisher {
  /**
   * The newest CRL. Async; generates the first one if there is none yet (concurrent callers share
   * that generation) and rejects if it fails. Once one exists it is returned even if a later
   * regeneration failed.
   */
  current(): Promise<PublishedCrl>;
  /**
   * Signs a new CRL from the store's current state (call after a revocation). Async; rejects if
   * this generation fails (after calling onError), keeping the previous CRL. Calls made while a
   * generation runs share one follow-up generation that starts when it ends.
   */
  regenerate(): Promise<void>;
  /** Starts the refresh timer (unref'd; regenerates once less than half the validity remains). Idempotent. */
  start(): void;
  /** Stops the timer; a generation under way still completes. Idempotent. */
  stop(): void;
}

/** setTimeout's ceiling (~24.8 days); a longer wait is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Builds a publisher. Sync; generates nothing until `current()`, `regenerate()` or `start()`. */
export function createCrlPublisher(options: CrlPublisherOptions): CrlPublisher {
  if (!(options.validitySeconds > 0)) throw new RangeError('validitySeconds must be positive');
  const now = options.now ?? (() => new Date());
  const validityMs = options.validitySeconds * 1000;
  // Retry a failed timed refresh well before nextUpdate, but do not hammer a broken store.
  const retryMs = Math.min(60_000, Math.max(1_000, validityMs / 20));
  let latest: PublishedCrl | undefined;
  /** When the served CRL reaches half its validity (from the unrounded clock, so a tiny validity cannot spin). */
  let refreshAt = 0;
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = false;

  async function generate(): Promise<void> {
    try {
      // CRL times are whole seconds; report exactly what is encoded.
      const startedAt = now().getTime();
      const thisUpdate = new Date(Math.floor(startedAt / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
      const revoked = await options.listRevoked(thisUpdate);
      const crlNumber = await options.nextCrlNumber(); // last, so a failed listing burns no number
      const { der } = await issueCrl({ issuer: options.issuer, thisUpdate, nextUpdate, crlNumber, revoked });
      const etag = `"${crlNumber.toString(16)}-${createHash('sha256').update(der).digest('base64url').slice(0, 22)}"`;
      const thisUpdateShared = latest !== undefined && latest.thisUpdate.getTime() >= thisUpdate.getTime();
      latest = { der, thisUpdate, nextUpdate, crlNumber, etag, thisUpdateShared };
      refreshAt = startedAt + validityMs / 2;
      options.onPublished?.(latest);
    } catch (err) {
      try {
        options.onError?.(err);
      } catch {
        // a throwing observer must not turn into a second failure
      }
      throw err;
    }
  }

  function runNow(): Promise<void> {
    const run = generate().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  }

  function regenerate(): Promise<void> {
    if (queued !== undefined) return queued;
    if (running === undefined) return runNow();
    const next = running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return runNow();
      });
    queued = next;
    return next;
  }

  /** Milliseconds until the refresh point of the served CRL (0 if none or overdue). */
  function dueIn(): number {
    return latest === undefined ? 0 : Math.max(0, refreshAt - now().getTime());
  }

  function arm(delayMs: number): void {
    clearTimeout(timer);
    if (!started) return;
    timer = setTimeout(tick, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
  }

  function tick(): void {
    timer = undefined;
    // A revocation may have refreshed the CRL since the timer was armed: only regenerate when due.
    if (dueIn() > 0) return arm(dueIn());
    regenerate().then(
      () => arm(dueIn()),
      () => arm(retryMs),
    );
  }

  return {
    async current() {
      if (latest === undefined) await (running ?? regenerate());
      return latest as PublishedCrl; // a generation that resolved has set it
    },
    regenerate,
    start() {
      if (started) return;
      started = true;
      arm(dueIn());
    },
    stop() {
      started = false;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
