/**
 * Small HTTP helpers of the CA's listeners: bounded body reading, schema-checked JSON bodies,
 * JSON answers, and the one shape of every error body, `{"error": {"code", "message"}}`. A body over the limit is refused as soon
 * as it crosses the limit (the rest is never buffered) and the connection is closed after the
 * answer, so a huge upload costs at most `maxBytes` of memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { refusal, type Outcome, type Refusal } from '../refusals.js';
import type { RequestSchema } from '../requests.js';
import { noteRefusal } from './route-observer.js';

/** Reads the whole body up to `maxBytes`. Never throws; resolves to a rejection on overflow or abort. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Outcome<{ body: Buffer }>> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) return Promise.resolve(refusal('body_too_large', `body exceeds ${maxBytes} bytes`));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Outcome<{ body: Buffer }>) => {
      if (done) return;
      done = true;
      req.removeAllListeners('data');
      resolve(value);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        finish(refusal('body_too_large', `body exceeds ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish({ ok: true, body: Buffer.concat(chunks, size) }));
    req.on('error', () => finish(refusal('bad_request', 'the request body was not received completely')));
    req.on('aborted', () => finish(refusal('bad_request', 'the request body was not received completely')));
  });
}

/**
 * Parses a JSON body with its schema: 415 unless `application/json`, 400 for bad JSON or anything
 * but an object, then the schema's first failing field (with its code from `fieldCodes`).
 */
export function parseJsonBody<T>(req: IncomingMessage, body: Buffer, s: RequestSchema<T>): Outcome<{ value: T }> {
  if (contentType(req) !== 'application/json') return refusal('unsupported_media_type', 'send Content-Type: application/json');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return refusal('bad_request', 'the body is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return refusal('bad_request', 'the body must be a JSON object');
  const parsed = s.schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return refusal(s.fieldCodes[String(issue.path[0])] ?? 'bad_request', issue.message);
}

/** The media type of the request body, lower-case, without parameters ('' if none). */
export function contentType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

const NO_STORE = { 'cache-control': 'no-store' };

/** Sends a JSON answer. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = `${JSON.stringify(value)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...NO_STORE }).end(text);
}

/** Sends a refusal as `{"error": {code, message}}`; 413 and 400-on-abort also close the connection. */
export function sendRefusal(res: ServerResponse, r: Refusal, headers: Record<string, string> = {}): void {
  if (r.code === 'body_too_large') res.setHeader('connection', 'close');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  noteRefusal(res, r.code);
  sendJson(res, r.status, { error: { code: r.code, message: r.message } });
}
