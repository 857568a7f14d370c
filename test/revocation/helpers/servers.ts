/**
 * Loopback servers for revocation tests: a tiny HTTP server (CRL host or fault-injecting OCSP
 * responder) and a real `openssl ocsp` responder process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Issued, TestPki } from './pki.js';

export interface TestHttpServer {
  readonly url: string;
  readonly port: number;
  /** Requests received so far. */
  readonly requests: () => number;
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1:0; sockets are destroyed on close (for hanging handlers). */
export async function startHttpServer(
  handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void | Promise<void>,
): Promise<TestHttpServer> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    count++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handler(req, Buffer.concat(chunks), res)).catch((err: unknown) => {
        res.statusCode = 599;
        res.end(String(err));
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port that was free a moment ago on 127.0.0.1 (openssl ocsp needs the number up front). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Resolves when openssl prints its "ACCEPT" line (after listen). A TCP-connect probe is not used:
 * openssl 3.0's single-threaded responder then blocks on the probe's silent connection.
 */
function waitForAccept(child: ChildProcess, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`openssl ocsp not listening after ${deadlineMs} ms: ${seen}`)), deadlineMs);
    child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('ACCEPT')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl ocsp exited with ${code}: ${seen}`));
    });
  });
}

export interface OpensslResponder {
  readonly url: string;
  /** OCSP requests the responder logged so far. */
  readonly requests: () => number;
  stop(): Promise<void>;
}

/**
 * Starts `openssl ocsp` as a responder for `pki`'s issuing CA on `port`, signing with `signer`.
 * Answers carry nextUpdate = now + `nextUpdateMinutes`; `null` omits nextUpdate (openssl's
 * "fresh revocation information is immediately available").
 * (openssl 3.0 binds the wildcard address; tests only ever connect to 127.0.0.1.)
 */
export async function startOpensslResponder(
  pki: TestPki,
  port: number,
  signer: Issued,
  extra: string[] = [],
  nextUpdateMinutes: number | null = 10,
): Promise<OpensslResponder> {
  const child = spawn(
    'openssl',
    ['ocsp', '-index', pki.indexPath, '-CA', pki.ca.certPath, '-rsigner', signer.certPath, '-rkey', signer.keyPath,
      '-port', String(port), ...(nextUpdateMinutes === null ? [] : ['-nmin', String(nextUpdateMinutes)]), ...extra],
    { cwd: pki.dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let requests = 0;
  child.stderr?.on('data', (d: Buffer) => {
    requests += d.toString().split('Received request').length - 1;
  });
  try {
    await waitForAccept(child, 5000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => requests,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
