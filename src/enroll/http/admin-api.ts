/**
 * The admin listener's routes, for the operator's backend, never for devices:
 *   POST /v1/admin/codes            {deviceId, userId?, ttlSeconds?} → 201 {deviceId, code, expiresAt}
 *   GET  /v1/admin/devices          ?limit=100&offset=0 → {devices}
 *   GET  /v1/admin/devices/{id}     → the device and its certificates
 *   POST /v1/admin/revoke           {serial | deviceId, reason?} → {revoked: [serials]}
 *   GET  /metrics, /healthz         unauthenticated, for Prometheus and the kubelet (HEAD too)
 * Every other request, routed or not, needs a credential first: the bearer token (compared as
 * SHA-256 digests in constant time) or, when an admin client CA is configured, a client
 * certificate it verified. Failed authentications are rate-limited per address, so the token
 * cannot be guessed quickly.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { EnrollService } from '../enroll-service.js';
import { refusal, type Outcome } from '../refusals.js';
import type { RequestSchema, RequestSchemas } from '../requests.js';
import type { CertificateRecord, DeviceRecord } from '../store/index.js';
import { parseJsonBody, readBody, sendJson, sendRefusal } from './http-io.js';
import type { RateLimiter } from './rate-limit.js';
import type { RouteObserver } from './route-observer.js';
import { createRouteTable, type RouteContext } from './router.js';

export interface AdminApiOptions {
  readonly service: EnrollService;
  readonly requests: RequestSchemas;
  /** SHA-256 of the bearer token, or undefined when only client certificates are accepted. */
  readonly tokenSha256?: Buffer;
  /** Accept a client certificate the listener verified against the admin CA. */
  readonly acceptClientCert: boolean;
  readonly failedAuthLimiter: RateLimiter;
  readonly maxBodyBytes: number;
  readonly observe: RouteObserver;
  readonly metrics: { readonly contentType: string; collect(): Promise<string> };
  readonly onCodeCreated?: () => void;
  /** After a revocation, with the serials it revoked (none if all were revoked already). */
  readonly onRevoked?: (reason: string, serials: readonly string[]) => void;
}

type Answer = Outcome<{ status: number; body: unknown }>;

/** Builds the request handler. Never throws. */
export function createAdminApi(o: AdminApiOptions): RequestListener {
  /** A route answering JSON; an unexpected failure is a 500. */
  const answering = (handle: (req: IncomingMessage, ctx: RouteContext) => Promise<Answer>) => (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => {
    handle(req, ctx).then(
      (outcome) => (outcome.ok ? sendJson(res, outcome.status, outcome.body) : sendRefusal(res, outcome)),
      (err: unknown) => {
        ctx.observed.failed(err);
        sendRefusal(res, refusal('internal_error', 'the request could not be completed'));
      },
    );
  };
  /** A route taking a JSON body checked by `schema`. */
  const withBody = <T>(schema: RequestSchema<T>, handle: (value: T) => Promise<Answer>) =>
    answering(async (req) => {
      const body = await readBody(req, o.maxBodyBytes);
      if (!body.ok) return body;
      const parsed = parseJsonBody(req, body.body, schema);
      return parsed.ok ? handle(parsed.value) : parsed;
    });

  return createRouteTable(
    [
      { name: 'healthz', methods: ['GET', 'HEAD'], path: '/healthz', open: true, handle: (_req, res) => sendJson(res, 200, { ok: true }) },
      {
        name: 'metrics',
        methods: ['GET', 'HEAD'],
        path: '/metrics',
        open: true,
        handle: (_req, res) =>
          void o.metrics.collect().then(
            (text) => res.writeHead(200, { 'content-type': o.metrics.contentType, 'cache-control': 'no-store' }).end(text),
            () => res.writeHead(500).end(),
          ),
      },
      {
        name: 'create-code',
        methods: ['POST'],
        path: '/v1/admin/codes',
        handle: withBody(o.requests.createCode, async (request) => {
          const made = await o.service.createCode(request);
          if (!made.ok) return made;
          o.onCodeCreated?.();
          return { ok: true, status: 201, body: { deviceId: made.deviceId, code: made.code, expiresAt: made.expiresAt.toISOString() } };
        }),
      },
      {
        name: 'list-devices',
        methods: ['GET'],
        path: '/v1/admin/devices',
        handle: answering(async (_req, { query }) => {
          const limit = clampInt(query.limit, 100, 1, 1000);
          const offset = clampInt(query.offset, 0, 0, Number.MAX_SAFE_INTEGER);
          const devices = await o.service.listDevices(limit, offset);
          return { ok: true, status: 200, body: { devices: devices.map(deviceView), limit, offset } };
        }),
      },
      {
        name: 'get-device',
        methods: ['GET'],
        path: '/v1/admin/devices/:deviceId',
        handle: answering(async (_req, { params }) => {
          const device = await o.service.getDevice(params.deviceId ?? '');
          return device ? { ok: true, status: 200, body: deviceView(device) } : refusal('not_found', 'no such device');
        }),
      },
      {
        name: 'revoke',
        methods: ['POST'],
        path: '/v1/admin/revoke',
        handle: withBody(o.requests.revoke, async (request) => {
          const revoked = await o.service.revoke(request);
          if (!revoked.ok) return revoked;
          o.onRevoked?.(request.reason, revoked.revoked);
          return { ok: true, status: 200, body: { revoked: revoked.revoked } };
        }),
      },
    ],
    {
      observe: o.observe,
      guard: (req, res) => {
        if (authenticated(req)) return true;
        if (!o.failedAuthLimiter.take(req.socket.remoteAddress ?? 'unknown')) {
          sendRefusal(res, refusal('rate_limited', 'too many failed authentications from this address'));
        } else {
          sendRefusal(res, refusal('unauthorized', 'send Authorization: Bearer <token> or an admin client certificate'), { 'www-authenticate': 'Bearer' });
        }
        return false;
      },
    },
  );

  function authenticated(req: IncomingMessage): boolean {
    if (o.acceptClientCert && (req.socket as TLSSocket).authorized === true) return true;
    const header = req.headers.authorization;
    if (!o.tokenSha256 || typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
    const presented = createHash('sha256').update(header.slice(7).trim()).digest();
    return timingSafeEqual(presented, o.tokenSha256);
  }
}

/** A query parameter as a whole number in [min, max]; `fallback` when absent or not a number. */
function clampInt(value: string | string[] | undefined, fallback: number, min: number, max: number): number {
  const text = Array.isArray(value) ? value[0] : value;
  const n = text === undefined ? fallback : Number(text);
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

function certificateView(c: CertificateRecord) {
  return {
    serial: c.serialHex,
    subject: c.subject,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    fingerprintSha256: c.fingerprintSha256,
    issuedAt: c.issuedAt.toISOString(),
    kind: c.kind,
    supersedes: c.supersedes,
    status: c.revokedAt ? 'revoked' : c.notAfter.getTime() <= Date.now() ? 'expired' : 'valid',
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revocationReason: c.revocationReason,
  };
}

function deviceView(d: DeviceRecord) {
  return { deviceId: d.deviceId, userId: d.userId, createdAt: d.createdAt.toISOString(), certificates: d.certificates.map(certificateView) };
}
