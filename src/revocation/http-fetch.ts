/**
 * One bounded HTTP exchange for CRL downloads and OCSP requests: a deadline covering headers and
 * body, a byte cap enforced while streaming (a lying or absent Content-Length cannot make us
 * buffer more), and failures as `SidecarError`s with a stable `fault`.
 */
import { SidecarError } from '../errors.js';

/** Parameters of one exchange. */
export interface BoundedRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Aborts the exchange early (e.g. on `close()`). */
  readonly signal?: AbortSignal;
  /** 'follow' for CRLs (often behind CDN redirects), 'error' for OCSP. */
  readonly redirect: 'follow' | 'error';
}

/** A completed exchange; any status, the caller judges it. */
export interface BoundedResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

function fail(fault: string, message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_REVOCATION_SOURCE', fault, message, { cause });
}

/**
 * Performs the exchange. Async; rejects only with `SidecarError` (faults 'http-timeout',
 * 'http-too-large', 'http-error', 'aborted'); never leaves the body stream open.
 */
export async function fetchBounded(fetchFn: typeof fetch, url: string, req: BoundedRequest): Promise<BoundedResponse> {
  // One controller for both the deadline and the caller's abort (AbortSignal.any needs Node 20.3).
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, req.timeoutMs);
  const onAbort = (): void => controller.abort();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  const what = `${req.method} ${url}`;
  try {
    const res = await fetchFn(url, {
      method: req.method,
      redirect: req.redirect,
      signal: controller.signal,
      ...(req.headers === undefined ? {} : { headers: req.headers }),
      ...(req.body === undefined ? {} : { body: req.body }),
    });
    const declared = Number(res.headers.get('content-length') ?? 'NaN');
    if (declared > req.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw fail('http-too-large', `${what}: Content-Length ${declared} exceeds ${req.maxBytes} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body !== null) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.byteLength;
          if (total > req.maxBytes) throw fail('http-too-large', `${what}: body exceeds ${req.maxBytes} bytes`);
          chunks.push(value);
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    }
    return { status: res.status, headers: res.headers, body: Buffer.concat(chunks, total) };
  } catch (err) {
    if (err instanceof SidecarError) throw err;
    if (timedOut) throw fail('http-timeout', `${what}: no complete answer within ${req.timeoutMs} ms`, err);
    if (req.signal?.aborted) throw fail('aborted', `${what}: aborted`, err);
    throw fail('http-error', `${what}: ${(err as Error).message}`, err);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}
