/**
 * The admin listener's quarantine endpoints, the only ones that change anything:
 *   GET    /quarantine                  → {"file":[…],"api":[…]}
 *   PUT    /quarantine/<kind>/<value>   → adds an API entry (kind: device, fingerprint, serial)
 *   DELETE /quarantine/<kind>/<value>   → removes an API entry (file entries stay until the file changes)
 * The listener is plain HTTP, so they exist only when `admin.tokenFile` is set, and every call
 * (listing too: entries are device ids) needs the admin token (admin-token.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requireAdminToken, sendJson as json } from './admin-token.js';

/** An entry as the admin listener shows it. */
export interface QuarantineEntryView {
  readonly kind: string;
  readonly value: string;
}

/** What the endpoints act on (serve/quarantine.ts provides it; with workers, the primary's copy). */
export interface QuarantineApi {
  list(): { file: QuarantineEntryView[]; api: QuarantineEntryView[] };
  add(kind: string, value: string): { entry: QuarantineEntryView; changed: boolean } | { error: string };
  remove(kind: string, value: string): { entry: QuarantineEntryView; changed: boolean } | { error: string };
}

export const QUARANTINE_PATH = '/quarantine';

/**
 * Answers a request whose path is /quarantine or below. Never throws. Without `tokenSha256` the
 * endpoints are off (404 with the reason), so an admin port without a token stays read-only.
 */
export function handleQuarantine(req: IncomingMessage, res: ServerResponse, path: string, api: QuarantineApi | undefined, tokenSha256: Buffer | undefined): void {
  if (!requireAdminToken(req, res, api === undefined ? undefined : tokenSha256, 'the quarantine API') || api === undefined) return;
  if (path === QUARANTINE_PATH) {
    if (req.method === 'GET' || req.method === 'HEAD') return json(res, 200, api.list());
    return methodNotAllowed(res, 'GET, HEAD');
  }
  const m = /^\/quarantine\/([^/]+)\/([^/]+)$/.exec(path);
  if (m === null) return json(res, 404, { error: 'not_found', reason: 'use /quarantine/<device|fingerprint|serial>/<value>' });
  if (req.method !== 'PUT' && req.method !== 'DELETE') return methodNotAllowed(res, 'PUT, DELETE');
  let value: string;
  try {
    value = decodeURIComponent(m[2]!);
  } catch {
    return json(res, 400, { error: 'bad_entry', reason: 'the value is not valid percent-encoded UTF-8' });
  }
  const outcome = req.method === 'PUT' ? api.add(m[1]!, value) : api.remove(m[1]!, value);
  if ('error' in outcome) return json(res, 400, { error: 'bad_entry', reason: outcome.error });
  if (req.method === 'DELETE' && !outcome.changed) return json(res, 404, { error: 'not_found', reason: 'no such API entry', entry: outcome.entry });
  json(res, 200, { entry: outcome.entry, changed: outcome.changed });
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('allow', allow);
  json(res, 405, { error: 'method_not_allowed', reason: `use ${allow}` });
}

