/**
 * What of an upstream response head reaches the client, for the undici path (forwarder.ts) and
 * the node:http upgrade path alike: the upstream hop's own headers (RFC 9110 §7.6.1) never, the
 * upstream's X-Request-Id never (the client gets the sidecar's), everything else as written.
 */
import type { IncomingMessage } from 'node:http';

/** Response headers that describe the upstream hop, not the client's connection (lower case). */
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer']);
/** Lengths of those names: most response headers are ruled out without lower-casing them. */
const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP_RESPONSE].map((h) => h.length));

/** True for `X-Request-Id` in any case: the client gets the sidecar's, never the upstream's. */
export function isRequestIdName(name: string): boolean {
  return name.length === 12 && name.toLowerCase() === 'x-request-id';
}

/** True for a response header of the upstream hop (any case), which is never relayed as is. */
export function isHopByHopResponse(name: string): boolean {
  return HOP_BY_HOP_LENGTHS.has(name.length) && HOP_BY_HOP_RESPONSE.has(name.toLowerCase());
}

/**
 * The other names a response's Connection header lists (lower case): hop-by-hop too (RFC 9110
 * §7.6.1), so not relayed. Undefined for the usual `keep-alive` or `close`, without parsing.
 */
export function listedInConnection(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return undefined;
  let listed: Set<string> | undefined;
  for (const line of Array.isArray(connection) ? connection : [connection]) {
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase();
      if (name && name !== 'keep-alive' && name !== 'close') (listed ??= new Set()).add(name);
    }
  }
  return listed;
}

/**
 * The head of a declined upgrade as relayed. node:http hands us the body de-chunked, so the
 * upstream's framing headers would misdescribe it: hop-by-hop ones (Transfer-Encoding, Connection,
 * Keep-Alive, Upgrade…, and what Connection lists) are dropped, Content-Length — still true of
 * the bytes — is kept, and `Connection: close` delimits a body without it (the socket ends after
 * the body either way).
 */
export function declinedHead(res: IncomingMessage, requestId: string): string {
  const kept: string[] = [];
  const listed = listedInConnection(res.headers.connection);
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!;
    if (!isHopByHopResponse(name) && !listed?.has(name.toLowerCase())) kept.push(name, res.rawHeaders[i + 1]!);
  }
  kept.push('Connection', 'close');
  return statusBlock(`HTTP/1.1 ${res.statusCode} ${res.statusMessage}`, withRequestId(kept, requestId));
}

/** Raw header lines without the upstream's X-Request-Id, with ours last. */
export function withRequestId(rawHeaders: string[], requestId: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (!isRequestIdName(rawHeaders[i]!)) out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  out.push('x-request-id', requestId);
  return out;
}

/** A status line and header lines as HTTP/1.1 bytes, for the raw upgrade socket. */
export function statusBlock(statusLine: string, rawHeaders: string[]): string {
  let out = `${statusLine}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) out += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${out}\r\n`;
}
