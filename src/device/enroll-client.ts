/**
 * The HTTPS half of the device simulator: one POST to the CA's enrollment API, the way a device
 * does it. The CA's server certificate is verified against the given CA bundle only (never the
 * system store, never skipped); a renewal presents the device's current certificate as the TLS
 * client certificate. Every failure becomes a `SidecarError` `ERR_ENROLL` whose `fault` tells
 * apart the CA's own refusal (its JSON error code) from `network`, `tls`, `aborted` and
 * `bad_response`, so a script or a test can switch on it.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ISSUED_CERTIFICATE_FIELDS, type IssuedCertificate } from '../ca-protocol.js';
import { SidecarError } from '../errors.js';

/** One call to the enrollment API. */
export interface EnrollmentRequest {
  /** The CA's base URL, `https://host:port` (a path prefix is kept). */
  readonly url: URL;
  readonly route: '/v1/enroll' | '/v1/renew';
  readonly body: Record<string, string>;
  /** PEM bundle the CA's server certificate must chain to. */
  readonly caPem: string;
  /** The TLS client certificate (leaf first, then its chain) and its key; renewals only. */
  readonly client?: { readonly certPem: string; readonly keyPem: string };
  /** Whole-call deadline: connect, handshake, request and response. */
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly signal?: AbortSignal;
}

/** The largest answer read by default; an issued certificate and its chain are a few KB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024;

/** The default whole-call deadline. */
export const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * POSTs `body` as JSON and resolves to the shape-checked 201 answer. Async; never follows a
 * redirect, never retries, never reads more than `maxResponseBytes`. Rejects with `ERR_ENROLL`:
 * fault = the CA's error code for a JSON error answer (e.g. `invalid_code`, `rate_limited`),
 * `network` (refused, reset, timed out), `tls` (server certificate not trusted, handshake or
 * client-certificate alert), `aborted` (the signal fired) or `bad_response` (any other status,
 * too large, not JSON, fields missing).
 */
export function postEnrollment(req: EnrollmentRequest): Promise<IssuedCertificate> {
  const target = new URL(`${req.url.pathname.replace(/\/+$/, '')}${req.route}`, req.url);
  const where = req.url.origin;
  const payload = Buffer.from(JSON.stringify(req.body), 'utf8');
  return new Promise<IssuedCertificate>((resolve, reject) => {
    if (req.signal?.aborted) return reject(enrollError('aborted', `the call to ${where} was aborted before it started`));
    let phase: 'connect' | 'handshake' | 'exchange' = 'connect';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: SidecarError | undefined, value?: IssuedCertificate): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (err) {
        request.destroy();
        reject(err);
      } else resolve(value!);
    };
    let request: ReturnType<typeof https.request>;
    try {
      request = https.request(target, {
        method: 'POST',
        ca: req.caPem,
        ...(req.client ? { cert: req.client.certPem, key: req.client.keyPem } : {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        // A fresh connection per call: no pooled socket or resumed session can stand in for the
        // handshake (and the client certificate) this call is about.
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': payload.length },
      });
    } catch (err) {
      // Node checks the key, certificate and CA PEM when it builds the TLS context, synchronously.
      return reject(enrollError('tls', `cannot set up TLS for ${where}: ${(err as Error).message}`, err));
    }
    timer = setTimeout(
      () => finish(enrollError('network', `no answer from the CA at ${where} within ${req.timeoutMs} ms (timed out during ${phase})`)),
      req.timeoutMs,
    );
    const onAbort = (): void => finish(enrollError('aborted', `the call to ${where} was aborted`));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    request.on('socket', (socket) => {
      socket.once('connect', () => (phase = phase === 'connect' ? 'handshake' : phase));
      (socket as TLSSocket).once('secureConnect', () => (phase = 'exchange'));
    });
    request.on('error', (err: NodeJS.ErrnoException) => finish(transportError(err, phase, where)));
    request.on('response', (res) => {
      readLimited(res, req.maxResponseBytes).then(
        (text) => {
          try {
            finish(undefined, interpret(res, text, where));
          } catch (err) {
            finish(err as SidecarError);
          }
        },
        (err: SidecarError) => finish(err),
      );
    });
    request.end(payload);
  });
}

/** Reads a response body up to `max` bytes; stops reading (and rejects) as soon as it crosses it. */
function readLimited(res: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers['content-length'] ?? NaN);
    // Reject before destroying: destroying emits 'aborted'/'error', which must not win the race.
    if (declared > max) {
      reject(enrollError('bad_response', `the CA's answer (HTTP ${res.statusCode}) declares ${declared} bytes, over the ${max}-byte limit`));
      return void res.destroy();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        reject(enrollError('bad_response', `the CA's answer (HTTP ${res.statusCode}) exceeds the ${max}-byte limit`));
        return void res.destroy();
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks, size).toString('utf8')));
    res.on('error', (err) => reject(enrollError('network', `the CA's answer was cut off: ${err.message}`, err)));
    res.on('aborted', () => reject(enrollError('network', "the CA's answer was cut off")));
  });
}

const ERROR_CODE = /^[a-z][a-z0-9_]{0,63}$/;

function interpret(res: IncomingMessage, text: string, where: string): IssuedCertificate {
  const status = res.statusCode ?? 0;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status !== 201) {
    const error = isObject(json) && isObject(json.error) ? json.error : undefined;
    if (error && typeof error.code === 'string' && ERROR_CODE.test(error.code)) {
      const said = typeof error.message === 'string' ? printable(error.message) : 'no message';
      const retry = typeof res.headers['retry-after'] === 'string' ? `; retry after ${printable(res.headers['retry-after'])} s` : '';
      throw enrollError(error.code, `the CA at ${where} refused: ${said} (${error.code}, HTTP ${status}${retry})`);
    }
    throw enrollError('bad_response', `the CA at ${where} answered HTTP ${status} without a JSON error`);
  }
  if (!isObject(json)) throw enrollError('bad_response', `the CA at ${where} answered 201 with a body that is not a JSON object`);
  const fields = ISSUED_CERTIFICATE_FIELDS;
  const missing = fields.filter((f) => typeof json[f] !== 'string' || json[f] === '');
  if (missing.length) throw enrollError('bad_response', `the CA at ${where} answered 201 without ${missing.join(', ')}`);
  return Object.fromEntries(fields.map((f) => [f, json[f] as string])) as unknown as IssuedCertificate;
}

/**
 * Where the connection was when it failed decides `tls` versus `network`: an error after TCP
 * connected and before the handshake finished is the handshake's. TLS 1.3 reports a refused
 * client certificate only after the client's handshake is done, so OpenSSL's alert codes count
 * as `tls` whenever they arrive.
 */
function transportError(err: NodeJS.ErrnoException, phase: 'connect' | 'handshake' | 'exchange', where: string): SidecarError {
  const code = err.code ?? '';
  const said = err.message.trim();
  const tlsCode = /^(ERR_SSL_|ERR_TLS_|ERR_OSSL_|EPROTO$)/.test(code) || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code);
  if (phase === 'handshake' || tlsCode) {
    const hint = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code) ? ' (is --ca-cert the CA that issued its server certificate?)' : '';
    return enrollError('tls', `TLS with the CA at ${where} failed: ${said}${code ? ` [${code}]` : ''}${hint}`, err);
  }
  return enrollError('network', `cannot talk to the CA at ${where}: ${said}`, err);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// A hostile or broken server's text lands in terminals and logs: no control characters, bounded.
function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
}

function enrollError(fault: string, message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_ENROLL', fault, message, cause === undefined ? undefined : { cause });
}
