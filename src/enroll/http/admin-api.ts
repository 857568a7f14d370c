/**
 * The admin listener's routes, for the operator's backend, never for devices:
 *   POST /v1/admin/codes            {deviceId, userId?, ttlSeconds?} → 201 {deviceId, code, expiresAt}
 *   GET  /v1/admin/devices          ?limit=100&offset=0 → {devices}
 *   GET  /v1/admin/devices/{id}     → the device and its certificates
 *   POST /v1/admin/revoke           {serial | deviceId, reason?} → {revoked: [serials]}
 *   GET  /metrics, /healthz         unauthenticated, for Prometheus and the kubelet
 * Every /v1/admin route needs a credential: the bearer token (compared as SHA-256 digests in
 * constant time) or, when an admin client CA is configured, a client certificate it verified.
 * Failed authentications are rate-limited per address, so the token cannot be guessed quickly.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { EnrollService } from '../enroll-service.js';
import { refusal, type Outcome } from '../refusals.js';
import type { CertificateRecord, DeviceRecord } from '../store/index.js';
import { parseJsonObject, pathOf, readBody, sendJson, sendRefusal } from './http-io.js';
import type { RateLimiter } from './rate-limit.js';
import type { RouteObserver } from './route-observer.js';

export interface AdminApiOptions {
  readonly service: EnrollService;
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

/** Builds the request handler. Never throws. */
export function createAdminApi(o: AdminApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = pathOf(req);
    if (path === '/healthz') return void sendJson(res, 200, { ok: true });
    if (path === '/metrics') {
      o.metrics.collect().then(
        (text) => res.writeHead(200, { 'content-type': o.metrics.contentType, 'cache-control': 'no-store' }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    const route = routeOf(req.method, path);
    const done = o.observe(route.name, res);
    const address = req.socket.remoteAddress ?? 'unknown';
    if (!authenticated(req)) {
      if (!o.failedAuthLimiter.take(address)) return void sendRefusal(res, refusal('rate_limited', 'too many failed authentications from this address'));
      return void sendRefusal(res, refusal('unauthorized', 'send Authorization: Bearer <token> or an admin client certificate'), { 'www-authenticate': 'Bearer' });
    }
    if (route.name === 'other') return void sendRefusal(res, refusal(route.methodMismatch ? 'method_not_allowed' : 'not_found', 'no such route'));
    handle(route, req).then(
      (outcome) => (outcome.ok ? sendJson(res, outcome.status, outcome.body) : sendRefusal(res, outcome)),
      (err: unknown) => {
        done.failed(err);
        sendRefusal(res, refusal('internal_error', 'the request could not be completed'));
      },
    );
  };

  function authenticated(req: IncomingMessage): boolean {
    if (o.acceptClientCert && (req.socket as TLSSocket).authorized === true) return true;
    const header = req.headers.authorization;
    if (!o.tokenSha256 || typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
    const presented = createHash('sha256').update(header.slice(7).trim()).digest();
    return timingSafeEqual(presented, o.tokenSha256);
  }

  async function handle(route: Route, req: IncomingMessage): Promise<Outcome<{ status: number; body: unknown }>> {
    if (route.name === 'list-devices') {
      const url = new URL(req.url ?? '/', 'http://x');
      const limit = clampInt(url.searchParams.get('limit'), 100, 1, 1000);
      const offset = clampInt(url.searchParams.get('offset'), 0, 0, Number.MAX_SAFE_INTEGER);
      const devices = await o.service.listDevices(limit, offset);
      return { ok: true, status: 200, body: { devices: devices.map(deviceView), limit, offset } };
    }
    if (route.name === 'get-device') {
      const device = await o.service.getDevice(route.deviceId!);
      return device ? { ok: true, status: 200, body: deviceView(device) } : refusal('not_found', 'no such device');
    }
    const body = await readBody(req, o.maxBodyBytes);
    if (!body.ok) return body;
    const parsed = parseJsonObject(req, body.body);
    if (!parsed.ok) return parsed;
    const j = parsed.json;
    if (route.name === 'create-code') {
      const made = await o.service.createCode({ deviceId: j.deviceId, userId: j.userId, ttlSeconds: j.ttlSeconds });
      if (!made.ok) return made;
      o.onCodeCreated?.();
      return { ok: true, status: 201, body: { deviceId: made.deviceId, code: made.code, expiresAt: made.expiresAt.toISOString() } };
    }
    const revoked = await o.service.revoke({ serial: j.serial, deviceId: j.deviceId, reason: j.reason });
    if (!revoked.ok) return revoked;
    o.onRevoked?.(typeof j.reason === 'string' ? j.reason : 'unspecified', revoked.revoked);
    return { ok: true, status: 200, body: { revoked: revoked.revoked } };
  }
}

interface Route {
  readonly name: 'create-code' | 'list-devices' | 'get-device' | 'revoke' | 'other';
  readonly deviceId?: string;
  readonly methodMismatch?: boolean;
}

function routeOf(method: string | undefined, path: string): Route {
  const table: Array<[string, string, Route['name']]> = [
    ['POST', '/v1/admin/codes', 'create-code'],
    ['GET', '/v1/admin/devices', 'list-devices'],
    ['POST', '/v1/admin/revoke', 'revoke'],
  ];
  for (const [m, p, name] of table) if (path === p) return m === method ? { name } : { name: 'other', methodMismatch: true };
  const device = /^\/v1\/admin\/devices\/([^/]+)$/.exec(path);
  if (device) {
    if (method !== 'GET') return { name: 'other', methodMismatch: true };
    let id: string;
    try {
      id = decodeURIComponent(device[1]!);
    } catch {
      return { name: 'other' };
    }
    return { name: 'get-device', deviceId: id };
  }
  return { name: 'other' };
}

function clampInt(text: string | null, fallback: number, min: number, max: number): number {
  const n = text === null ? fallback : Number(text);
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
