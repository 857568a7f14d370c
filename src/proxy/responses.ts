/** The JSON bodies the sidecar itself answers with. Nothing here reaches the upstream. */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';

/**
 * Sends a small JSON error; if headers already went out, the only honest move is to cut the stream.
 * With `close`, the response says `Connection: close` and Node closes the connection after it.
 */
export function sendJsonError(res: ServerResponse, status: number, body: Record<string, string>, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** The same on a raw socket (an upgrade request), then closes it. */
export function writeRawJsonError(socket: Duplex, status: number, body: Record<string, string>): void {
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}
