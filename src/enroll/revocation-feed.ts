/**
 * The revocation feed: every CRL the CA signs, pushed at once to every subscriber as a
 * Server-Sent Event (`GET /v1/crl/feed` on the publish listener), so sidecars apply a revocation
 * within milliseconds instead of at their next poll.
 *
 * Each event carries the whole signed CRL (base64 DER), its id the CRL number:
 *   id: 42
 *   event: crl
 *   data: MIIB…
 * Why the whole CRL and not a list of serials: a sidecar trusts an event exactly as far as it
 * trusts the CRL (same signature, same issuer binding, same rollback guard), and a CRL is
 * cumulative, so an event lost in a dropped connection, a gap in the ids or a CA restart is healed
 * by the next one. The price is size: with short-lived device certificates a CRL lists only the
 * unexpired revoked ones, so it stays small; the fan-out benchmark measures it.
 *
 * A subscriber resumes with `Last-Event-ID` (or `?after=`): it gets the current CRL at once unless
 * it already holds that number. Comments (`: heartbeat`) every `heartbeatMs` let both ends notice a
 * dead connection. A subscriber that does not read — still a whole CRL behind when the next
 * comes (more than its last event plus 64 KiB unsent), or more than `maxBufferedBytes` queued —
 * is cut off: it reconnects with its cursor and
 * loses nothing, while a stalled reader cannot make the CA queue CRL after CRL for it. Each event
 * is encoded once and shared by every subscriber's queue.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PublishedCrl } from './crl-publisher.js';

/** What the feed sends of a CRL. */
type FeedCrl = Pick<PublishedCrl, 'der' | 'crlNumber'>;

export interface RevocationFeedOptions {
  readonly heartbeatMs: number;
  /** Subscribers beyond this are answered 503 (with Retry-After): one CA replica's budget. */
  readonly maxSubscribers: number;
  /** Streams one client address may hold, so a single client cannot take every slot. */
  readonly maxSubscribersPerAddress: number;
  /** Bytes queued for one subscriber before it is cut off. */
  readonly maxBufferedBytes: number;
  /** Told when a subscriber is cut off for not reading, or refused for capacity. Must not throw. */
  readonly onDropped?: (why: 'slow' | 'capacity') => void;
  /** Told the number of subscribers whenever it changes. Must not throw. */
  readonly onSize?: (subscribers: number) => void;
}

export interface RevocationFeed {
  /** Answers a subscription request: the SSE stream, or 503 at capacity. Never throws. */
  subscribe(req: IncomingMessage, res: ServerResponse, current: FeedCrl | undefined): void;
  /** Sends a newly signed CRL to every subscriber that does not hold it yet. Never throws. */
  publish(crl: FeedCrl): void;
  /** Subscribers connected now. */
  size(): number;
  /** Ends every stream and stops the heartbeat. Idempotent. */
  close(): void;
}

/** What a subscriber holds: the number of the last CRL sent to it (-1n: none). */
interface Subscriber {
  readonly res: ServerResponse;
  readonly address: string;
  held: bigint;
  /** Size of the last event queued for it. */
  lastFrameBytes: number;
}

/** Slack over one whole event (heartbeats, the tail of an earlier one) before a subscriber counts as a CRL behind. */
const UNREAD_BYTES = 64 * 1024;

/** Creates the feed. Its heartbeat timer is unref'd. */
export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const subscribers = new Set<Subscriber>();
  const perAddress = new Map<string, number>();
  const forget = (s: Subscriber): void => {
    if (!subscribers.delete(s)) return;
    const n = (perAddress.get(s.address) ?? 1) - 1;
    if (n > 0) perAddress.set(s.address, n);
    else perAddress.delete(s.address);
    options.onSize?.(subscribers.size);
  };
  const heartbeat = setInterval(() => {
    for (const s of subscribers) write(s, ': heartbeat\n\n');
  }, options.heartbeatMs);
  heartbeat.unref();
  let closed = false;

  /** Writes, or cuts off a subscriber whose queue is over budget. */
  function write(s: Subscriber, chunk: string | Buffer): void {
    if (s.res.writableLength > options.maxBufferedBytes) return slow(s);
    s.res.write(chunk);
  }

  function slow(s: Subscriber): void {
    drop(s);
    options.onDropped?.('slow');
  }

  function drop(s: Subscriber): void {
    forget(s);
    s.res.destroy();
  }

  // The event of the newest CRL, encoded once: every subscriber's queue references this one
  // Buffer (a copy per subscriber let stalled readers pin subscribers x CRL of memory).
  let frame: { crlNumber: bigint; bytes: Buffer } | undefined;
  function frameOf(crl: FeedCrl): Buffer {
    if (frame?.crlNumber !== crl.crlNumber) frame = { crlNumber: crl.crlNumber, bytes: Buffer.from(`id: ${crl.crlNumber}\nevent: crl\ndata: ${crl.der.toString('base64')}\n\n`) };
    return frame.bytes;
  }

  function send(s: Subscriber, crl: FeedCrl): void {
    if (crl.crlNumber <= s.held) return;
    s.held = crl.crlNumber;
    const bytes = frameOf(crl);
    s.lastFrameBytes = bytes.length;
    write(s, bytes);
  }

  return {
    subscribe(req, res, current) {
      const address = req.socket.remoteAddress ?? 'unknown';
      if (closed || subscribers.size >= options.maxSubscribers || (perAddress.get(address) ?? 0) >= options.maxSubscribersPerAddress) {
        options.onDropped?.('capacity');
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5', 'cache-control': 'no-store' });
        res.end(`${JSON.stringify({ error: { code: 'feed_full', message: 'too many feed subscribers; retry later or poll the CRL' } })}\n`);
        return;
      }
      const s: Subscriber = { res, address, held: cursorOf(req), lastFrameBytes: 0 };
      // A cursor past the current CRL (a CA restored from a backup, or a made-up id) is not
      // believed: the subscriber gets the current CRL and decides (its rollback guard keeps a newer one).
      if (current && s.held > current.crlNumber) s.held = -1n;
      subscribers.add(s);
      perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
      options.onSize?.(subscribers.size);
      res.once('close', () => forget(s));
      res.socket?.setNoDelay(true);
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        // Proxies (nginx) must not buffer the stream.
        'x-accel-buffering': 'no',
      });
      // `retry`: how soon an EventSource reconnects after the stream ends.
      res.write('retry: 1000\n\n');
      if (current) send(s, current);
    },
    publish(crl) {
      for (const s of subscribers) {
        // More than the last event (plus 64 KiB) still unsent: it is a whole CRL behind. Cut it off
        // rather than queue yet another (it reconnects with its cursor and loses nothing). One
        // event behind is allowed: a healthy reader on a slow link may still be taking in a large
        // CRL when the next comes, and cutting it then made revocation bursts a reconnect storm
        // (found by review). Events are shared Buffers, so this bounds the CA at two per CRL size.
        if (s.res.writableLength > s.lastFrameBytes + UNREAD_BYTES && crl.crlNumber > s.held) slow(s);
        else send(s, crl);
      }
    },
    size: () => subscribers.size,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      for (const s of subscribers) s.res.end();
      subscribers.clear();
      perAddress.clear();
      options.onSize?.(0);
    },
  };
}

/** The subscriber's cursor: `Last-Event-ID`, else `?after=`; -1n (hold nothing) when absent or malformed. */
function cursorOf(req: IncomingMessage): bigint {
  const header = req.headers['last-event-id'];
  let text = typeof header === 'string' ? header : null;
  if (text === null) {
    const q = (req.url ?? '').indexOf('?');
    text = q === -1 ? null : new URLSearchParams((req.url ?? '').slice(q + 1)).get('after');
  }
  return text !== null && /^\d{1,40}$/.test(text) ? BigInt(text) : -1n;
}
