/**
 * The admin token (`admin.tokenFile`): the admin listener is plain HTTP for Prometheus and the
 * kubelet, so the endpoints that change state or name devices need `Authorization: Bearer <token>`,
 * compared in constant time (both sides hashed first, so the comparison never depends on lengths),
 * and are off (404) without a token configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A SHA-256 of the token, what the listener keeps. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * True when the request carries the admin token. Otherwise answers 404 (no token configured:
 * `what` is off) or 401, and returns false. Never throws.
 */
export function requireAdminToken(req: IncomingMessage, res: ServerResponse, tokenSha256: Buffer | undefined, what: string): boolean {
  if (tokenSha256 === undefined) {
    sendJson(res, 404, { error: 'not_found', reason: `${what} is off: set admin.tokenFile to turn it on` });
    return false;
  }
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer ') && timingSafeEqual(tokenDigest(header.slice(7).trim()), tokenSha256)) return true;
  res.setHeader('www-authenticate', 'Bearer');
  sendJson(res, 401, { error: 'unauthorized', reason: 'Authorization: Bearer <admin token> is required' });
  return false;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
}
