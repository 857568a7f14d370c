/**
 * The sidecar's end of the CA's revocation feed (`revocation.feed.url`): a long-lived GET of a
 * Server-Sent Events stream whose events each carry a whole signed CRL (see the CA's
 * enroll/revocation-feed.ts). Each CRL goes through the same load path as a configured CRL URL —
 * signature, issuer, scope, rollback guard — so the feed can make the sidecar stricter sooner,
 * never looser: a forged or replayed event is refused like a forged or replayed CRL.
 *
 * The feed is an accelerator on top of polling, never a replacement: CRL URLs and OCSP keep
 * running while it is up, so a feed that is down, slow or lying costs latency, not safety.
 *
 * Reconnects with backoff (jittered, doubling to `reconnectMaxMs`) and resumes with
 * `Last-Event-ID` (the last CRL number applied); a stream silent for `idleTimeoutMs` (the CA
 * sends a heartbeat comment well within it) is taken for dead and reopened.
 */
import { SidecarError } from '../errors.js';

/**
 * What became of one CRL the feed delivered. `waiting`: its issuer is not known yet (a CA learned
 * only from a client's path); it is applied once that issuer is learned, and the cursor does not
 * move past it, so a reconnect asks for it again.
 */
export type FeedCrlOutcome = 'applied' | 'unchanged' | 'waiting' | 'refused';

export interface CrlFeedOptions {
  readonly url: string;
  readonly idleTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** Largest event accepted (its data is a base64 CRL): a stream that sends more is cut. */
  readonly maxEventBytes: number;
}

export interface CrlFeedDeps {
  readonly fetch: typeof fetch;
  /** Loads the CRL bytes of one event like a configured CRL source. Never rejects. */
  readonly apply: (der: Buffer) => Promise<FeedCrlOutcome>;
  readonly now: () => number;
  /** Told of each state change and event, for logs and metrics. Must not throw. */
  readonly observe?: (event: FeedEvent) => void;
}

export type FeedEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly reason: string; readonly retryInMs: number }
  | { readonly type: 'crl'; readonly outcome: FeedCrlOutcome; readonly id: string };

/** The feed's state now, for /readyz and metrics. */
export interface CrlFeedStatus {
  readonly connected: boolean;
  /** Since when it is in its current state (ms since epoch). */
  readonly since: number;
  /** The id (CRL number) of the last CRL applied or found unchanged; sent as Last-Event-ID. */
  readonly cursor: string | undefined;
}

export interface CrlFeed {
  status(): CrlFeedStatus;
  /** Stops the stream and any reconnect. Idempotent. */
  close(): void;
}

/** Starts following the feed at once. Sync; never throws; failures become reconnects. */
export function startCrlFeed(options: CrlFeedOptions, deps: CrlFeedDeps): CrlFeed {
  let connected = false;
  let since = deps.now();
  let cursor: string | undefined;
  let closed = false;
  let failures = 0;
  let current: AbortController | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const setConnected = (value: boolean): void => {
    if (connected === value) return;
    connected = value;
    since = deps.now();
  };

  async function follow(): Promise<void> {
    const controller = new AbortController();
    current = controller;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new SidecarError('ERR_REVOCATION_SOURCE', 'feed-idle', `no data for ${options.idleTimeoutMs} ms`)), options.idleTimeoutMs);
    };
    armIdle();
    try {
      const res = await deps.fetch(options.url, {
        headers: { accept: 'text/event-stream', ...(cursor === undefined ? {} : { 'last-event-id': cursor }) },
        redirect: 'error',
        signal: controller.signal,
      });
      if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream') || res.body === null) {
        await res.body?.cancel().catch(() => undefined);
        throw new SidecarError('ERR_REVOCATION_SOURCE', 'feed-http', `HTTP ${res.status} ${res.headers.get('content-type') ?? ''}`.trim());
      }
      const parser = createSseParser(options.maxEventBytes);
      const reader = res.body.getReader();
      let first = true;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) throw new SidecarError('ERR_REVOCATION_SOURCE', 'feed-ended', 'the stream ended');
          armIdle();
          if (first) {
            first = false;
            failures = 0;
            setConnected(true);
            deps.observe?.({ type: 'connected' });
          }
          for (const event of parser.push(value)) {
            if (event.type !== 'crl') continue;
            const outcome = await applyEvent(event.data);
            if ((outcome === 'applied' || outcome === 'unchanged') && event.id !== undefined) cursor = event.id;
            deps.observe?.({ type: 'crl', outcome, id: event.id ?? '' });
          }
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    } finally {
      clearTimeout(idle);
    }
  }

  async function applyEvent(data: string): Promise<FeedCrlOutcome> {
    const der = Buffer.from(data, 'base64');
    if (der.length === 0) return 'refused';
    return deps.apply(der);
  }

  function loop(): void {
    if (closed) return;
    follow().catch((err: unknown) => {
      if (closed) return;
      setConnected(false);
      failures++;
      const backoff = Math.min(options.reconnectMaxMs, options.reconnectMinMs * 2 ** Math.min(failures - 1, 20));
      const retryInMs = Math.round(backoff * (0.5 + Math.random() * 0.5));
      deps.observe?.({ type: 'disconnected', reason: reasonOf(err), retryInMs });
      retryTimer = setTimeout(loop, retryInMs);
      retryTimer.unref();
    });
  }
  loop();

  return {
    status: () => ({ connected, since, cursor }),
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      current?.abort();
      setConnected(false);
    },
  };
}

function reasonOf(err: unknown): string {
  if (err instanceof SidecarError) return `${err.fault}: ${err.message}`;
  const cause = (err as { cause?: unknown })?.cause;
  if (cause instanceof SidecarError) return `${cause.fault}: ${cause.message}`;
  return (err as Error)?.message ?? String(err);
}

/** One dispatched Server-Sent Event. */
export interface SseEvent {
  readonly type: string;
  readonly data: string;
  readonly id: string | undefined;
}

/**
 * An incremental parser of the text/event-stream format (WHATWG HTML §9.2.6): lines end in LF,
 * CRLF or CR; `field: value` with one optional space; `data` lines join with LF; a blank line
 * dispatches; comments start with `:`. Throws a SidecarError once one event exceeds `maxEventBytes`.
 *
 * Linear in the bytes received: each chunk is scanned once, and a line that spans chunks is kept
 * as pieces joined once at its end (rescanning or re-concatenating the pending text on every
 * chunk made one long line quadratic: a stream of `data: AAAA…` could stall the event loop).
 */
export function createSseParser(maxEventBytes: number): { push(chunk: Uint8Array): SseEvent[] } {
  const decoder = new TextDecoder();
  const lineEnd = /\r\n|\r|\n/g;
  let pieces: string[] = [];
  let pending = 0;
  let type = '';
  let data: string[] = [];
  let size = 0;
  let id: string | undefined;
  let lastId: string | undefined;
  let skipLf = false;

  const tooLarge = () => new SidecarError('ERR_REVOCATION_SOURCE', 'feed-too-large', `an event exceeds ${maxEventBytes} bytes`);

  return {
    push(chunk) {
      let text = decoder.decode(chunk, { stream: true });
      if (text === '') return []; // nothing to scan; a pending CR still waits for its LF
      // A CR ended the previous chunk: an LF opening this one belongs to it (CRLF split in two).
      if (skipLf && text.charCodeAt(0) === 10) text = text.slice(1);
      skipLf = false;
      const out: SseEvent[] = [];
      let start = 0;
      lineEnd.lastIndex = 0;
      for (let m = lineEnd.exec(text); m !== null; m = lineEnd.exec(text)) {
        pieces.push(text.slice(start, m.index));
        const whole = pieces.length === 1 ? pieces[0]! : pieces.join('');
        pieces = [];
        pending = 0;
        line(whole, out);
        start = m.index + m[0].length;
        if (m[0] === '\r' && start === text.length) skipLf = true;
      }
      if (start < text.length) {
        pieces.push(start === 0 ? text : text.slice(start));
        pending += text.length - start;
      }
      if (pending + size > maxEventBytes) throw tooLarge();
      return out;
    },
  };

  function line(text: string, out: SseEvent[]): void {
    if (text === '') {
      if (id !== undefined) lastId = id;
      if (data.length > 0) out.push({ type: type || 'message', data: data.join('\n'), id: lastId });
      type = '';
      data = [];
      size = 0;
      id = undefined;
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      size += value.length + 1;
      if (size > maxEventBytes) throw tooLarge();
      data.push(value);
    } else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  }
}
