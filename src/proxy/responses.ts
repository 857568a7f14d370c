/** The JSON bodies the sidecar itself answers with. Nothing here reaches the upstream. */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';

/**
 * Sends a small JSON error; if headers already went out, the only honest move is to cut the stream.
 * With `close`, the response says `Connection: close` and Node closes the connection after it.
 * `requestId` (well-formed by construction, see request-ids.ts) goes back as `X-Request-Id`;
 * `extra` adds headers of the sidecar's own (e.g. `Retry-After`), never a client's.
 */
export function sendJsonError(
  res: ServerResponse,
  status: number,
  body: Record<string, string>,
  requestId: string | undefined,
  close = false,
  extra?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
    ...(close ? { connection: 'close' } : {}),
    ...extra,
  });
  res.end(text);
}

/** The same on a raw socket (an upgrade request), then closes it. */
export function writeRawJsonError(socket: Duplex, status: number, body: Record<string, string>, requestId: string | undefined, extra?: Readonly<Record<string, string>>): void {
  const text = JSON.stringify(body);
  let id = requestId === undefined ? '' : `x-request-id: ${requestId}\r\n`;
  for (const [name, value] of Object.entries(extra ?? {})) id += `${name}: ${value}\r\n`;
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${id}connection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}
