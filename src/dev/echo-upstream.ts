/**
 * A tiny upstream for demos and tests: answers every request with JSON describing what it received
 * (method, URL, headers, body size and SHA-256). The body is hashed as it streams, never buffered,
 * so it can take a multi-gigabyte upload in constant memory.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the echo saw, as it returns it. */
export interface EchoReply {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: string[];
  readonly bodyBytes: number;
  readonly bodySha256: string;
}

export interface EchoUpstream {
  readonly url: string;
  readonly port: number;
  readonly server: http.Server;
  /** How many requests reached it: what "nothing reached the upstream" tests count. */
  requests(): number;
  close(): Promise<void>;
}

/** Starts the echo on 127.0.0.1 (port 0 = any free port). */
export async function startEchoUpstream(port = 0, host = '127.0.0.1'): Promise<EchoUpstream> {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const reply: EchoReply = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      };
      const text = `${JSON.stringify(reply, null, 2)}\n`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    server,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
