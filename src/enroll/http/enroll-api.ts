/**
 * The enrollment listener's routes (TLS; a client certificate is optional here because a new
 * device has none): `POST /v1/enroll` (code + CSR), `POST /v1/renew` (mTLS with the current
 * certificate + a new CSR), `GET /v1/pins` and `GET /healthz`. Every request but the health check,
 * good or bad, routed or not, is rate-limited per client address before its body is read.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { caSerialHexOfCertificate } from '../../pki/index.js';
import type { IssuedCertificate } from '../../ca-protocol.js';
import type { EnrollService, PeerCertificate } from '../enroll-service.js';
import { refusal, type Outcome } from '../refusals.js';
import type { RequestSchemas } from '../requests.js';
import { contentType, parseJsonBody, readBody, sendJson, sendRefusal } from './http-io.js';
import { sendPins, type PinSetSource } from './pins-route.js';
import type { RateLimiter } from './rate-limit.js';
import type { RouteObserver } from './route-observer.js';
import { createRouteTable, type RouteContext } from './router.js';

export interface EnrollApiOptions {
  readonly service: EnrollService;
  readonly requests: RequestSchemas;
  readonly limiter: RateLimiter;
  readonly maxBodyBytes: number;
  readonly observe: RouteObserver;
  readonly pins?: PinSetSource;
}

/** Builds the request handler. Never throws; an unexpected failure is a 500 with nothing issued. */
export function createEnrollApi(o: EnrollApiOptions): RequestListener {
  const issuing = (handle: (req: IncomingMessage, body: Buffer) => Promise<Outcome<{ result: IssuedCertificate }>>) =>
    (req: IncomingMessage, res: ServerResponse, { observed }: RouteContext) => {
      readBody(req, o.maxBodyBytes)
        .then((body) => (body.ok ? handle(req, body.body) : body))
        .then(
          (outcome) => (outcome.ok ? sendJson(res, 201, outcome.result) : sendRefusal(res, outcome)),
          (err: unknown) => {
            observed.failed(err);
            sendRefusal(res, refusal('internal_error', 'the CA could not complete the request; nothing was issued'));
          },
        );
    };
  return createRouteTable(
    [
      { name: 'healthz', methods: ['GET'], path: '/healthz', open: true, handle: (_req, res) => sendJson(res, 200, { ok: true }) },
      {
        name: 'enroll',
        methods: ['POST'],
        path: '/v1/enroll',
        handle: issuing(async (req, body) => {
          const parsed = parseJsonBody(req, body, o.requests.enroll);
          return parsed.ok ? o.service.enroll(parsed.value) : parsed;
        }),
      },
      {
        name: 'renew',
        methods: ['POST'],
        path: '/v1/renew',
        handle: issuing(async (req, body) => {
          const parsed = renewRequest(req, body, o.requests);
          return parsed.ok ? o.service.renew(peerOf(req), parsed.value) : parsed;
        }),
      },
      { name: 'pins', methods: ['GET'], path: '/v1/pins', handle: (_req, res) => sendPins(res, o.pins) },
    ],
    {
      observe: o.observe,
      guard: (req, res) => {
        const address = req.socket.remoteAddress ?? 'unknown';
        if (o.limiter.take(address)) return true;
        sendRefusal(res, refusal('rate_limited', 'too many requests from this address'), { 'retry-after': String(o.limiter.retryAfterSeconds(address)) });
        return false;
      },
    },
  );
}

/** A renewal's CSR: JSON `{csr}` or a raw `application/pkcs10` body (DER, or PEM text). */
function renewRequest(req: IncomingMessage, body: Buffer, requests: RequestSchemas): Outcome<{ value: { csr: string } }> {
  if (contentType(req) === 'application/pkcs10') return { ok: true, value: { csr: body[0] === 0x30 ? body.toString('base64') : body.toString('latin1') } };
  return parseJsonBody(req, body, requests.renew);
}

function peerOf(req: IncomingMessage): PeerCertificate | undefined {
  const socket = req.socket as TLSSocket;
  const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  if (!cert) return undefined;
  return {
    serialHex: caSerialHexOfCertificate(cert),
    fingerprintSha256: createHash('sha256').update(cert.raw).digest('hex'),
    chainVerified: socket.authorized === true,
  };
}
