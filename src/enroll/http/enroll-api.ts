/**
 * The enrollment listener's routes (TLS; a client certificate is optional here because a new
 * device has none): `POST /v1/enroll` (code + CSR), `POST /v1/renew` (mTLS with the current
 * certificate + a new CSR), `GET /v1/pins` and `GET /healthz`. Every request, good or bad, is
 * rate-limited per client address before its body is read.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { EnrollService, PeerCertificate } from '../enroll-service.js';
import { refusal, type Outcome } from '../refusals.js';
import { parseJsonObject, pathOf, readBody, sendJson, sendRefusal } from './http-io.js';
import type { RateLimiter } from './rate-limit.js';
import type { RouteObserver } from './route-observer.js';
import { sendPins, type PinSetSource } from './pins-route.js';

export interface EnrollApiOptions {
  readonly service: EnrollService;
  readonly limiter: RateLimiter;
  readonly maxBodyBytes: number;
  readonly observe: RouteObserver;
  readonly pins?: PinSetSource;
}

/** Builds the request handler. Never throws; an unexpected failure is a 500 with nothing issued. */
export function createEnrollApi(o: EnrollApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = pathOf(req);
    const route = path === '/v1/enroll' ? 'enroll' : path === '/v1/renew' ? 'renew' : path === '/v1/pins' ? 'pins' : path === '/healthz' ? 'healthz' : 'other';
    const done = o.observe(route, res);
    if (route === 'healthz') return void sendJson(res, 200, { ok: true });
    const address = req.socket.remoteAddress ?? 'unknown';
    if (!o.limiter.take(address)) {
      return void sendRefusal(res, refusal('rate_limited', 'too many requests from this address'), { 'retry-after': String(o.limiter.retryAfterSeconds(address)) });
    }
    if (route === 'pins') return void (req.method === 'GET' ? sendPins(res, o.pins) : sendRefusal(res, refusal('method_not_allowed', 'use GET')));
    if (route === 'other') return void sendRefusal(res, refusal('not_found', 'no such route'));
    if (req.method !== 'POST') return void sendRefusal(res, refusal('method_not_allowed', 'use POST'), { allow: 'POST' });
    handle(route, req).then(
      (outcome) => (outcome.ok ? sendJson(res, 201, outcome.result) : sendRefusal(res, outcome)),
      (err: unknown) => {
        done.failed(err);
        sendRefusal(res, refusal('internal_error', 'the CA could not complete the request; nothing was issued'));
      },
    );
  };

  async function handle(route: 'enroll' | 'renew', req: IncomingMessage): Promise<Outcome<{ result: unknown }>> {
    const body = await readBody(req, o.maxBodyBytes);
    if (!body.ok) return body;
    if (route === 'renew') {
      const csr = csrOfRenewBody(req, body.body);
      if (!csr.ok) return csr;
      return o.service.renew(peerOf(req), { csr: csr.csr });
    }
    const parsed = parseJsonObject(req, body.body);
    if (!parsed.ok) return parsed;
    return o.service.enroll({ deviceId: parsed.json.deviceId, code: parsed.json.code, csr: parsed.json.csr });
  }
}

/** A renewal's CSR: JSON `{csr}` or a raw `application/pkcs10` body (DER, or PEM text). */
function csrOfRenewBody(req: IncomingMessage, body: Buffer): Outcome<{ csr: unknown }> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/pkcs10') return { ok: true, csr: body[0] === 0x30 ? body.toString('base64') : body.toString('latin1') };
  const parsed = parseJsonObject(req, body);
  return parsed.ok ? { ok: true, csr: parsed.json.csr } : parsed;
}

function peerOf(req: IncomingMessage): PeerCertificate | undefined {
  const socket = req.socket as TLSSocket;
  const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  if (!cert) return undefined;
  return {
    serialHex: cert.serialNumber.toLowerCase(),
    fingerprintSha256: createHash('sha256').update(cert.raw).digest('hex'),
    chainVerified: socket.authorized === true,
  };
}
