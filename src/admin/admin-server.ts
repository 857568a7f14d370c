/**
 * The admin listener: `/metrics`, `/healthz`, `/readyz`, and — only with a token configured, as
 * they name devices — `/debug/top-devices` and the quarantine endpoints (quarantine-api.ts). It is a separate plain HTTP listener, never the mTLS
 * data port, so a device can never scrape metrics or flip probes, and Prometheus/kubelet need no
 * client certificate.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { requireAdminToken, sendJson } from './admin-token.js';
import { handleQuarantine, QUARANTINE_PATH, type QuarantineApi } from './quarantine-api.js';

/** Where the exposition comes from: one registry, or the primary's aggregate of all workers. */
export interface MetricsSource {
  readonly contentType: string;
  collect(): Promise<string>;
}

/** One readiness condition and whether it holds now. */
export type ReadinessCheck = () => boolean;

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: MetricsSource;
  /** Named conditions; `/readyz` is 200 only when all hold, and lists them either way. */
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /**
   * What works, but worse than configured (e.g. the revocation feed is down, polling goes on):
   * listed under `degraded` in `/readyz` without making it fail. Never gates traffic.
   */
  readonly degraded?: () => Readonly<Record<string, string>>;
  /** The quarantine endpoints' target; they are off unless `tokenSha256` is set too. */
  readonly quarantine?: QuarantineApi | undefined;
  /** SHA-256 of the admin token (admin-token.ts): without it the quarantine API and /debug/top-devices are off. */
  readonly tokenSha256?: Buffer | undefined;
  /**
   * `GET /debug/top-devices?n=20&by=rate|requests|connections`: the busiest devices, for an SRE.
   * Device ids appear here (the operator's own port) and never in metrics. Undefined rows: nothing
   * is tracked (no per-device limit configured).
   */
  readonly topDevices?: (n: number, by: TopDevicesOrder) => Promise<readonly object[] | undefined>;
}

/** How `/debug/top-devices` ranks. */
export type TopDevicesOrder = 'rate' | 'requests' | 'connections';
const TOP_ORDERS: readonly TopDevicesOrder[] = ['rate', 'requests', 'connections'];
/** The most rows `/debug/top-devices` returns. */
const MAX_TOP = 1_000;

export interface AdminServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the admin listener. Async; rejects if the port cannot be bound. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path === QUARANTINE_PATH || path.startsWith(`${QUARANTINE_PATH}/`)) {
      handleQuarantine(req, res, path, options.quarantine, options.tokenSha256);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      // Liveness: the event loop answers. Nothing else, so a kubelet never restarts a sidecar
      // that is merely waiting for a CRL.
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const checks = Object.fromEntries(Object.entries(options.readiness).map(([name, check]) => [name, safe(check)]));
      const ready = Object.values(checks).every(Boolean);
      const degraded = degradedNow(options.degraded);
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify({ ready, checks, ...(degraded ? { degraded } : {}) })}\n`);
      return;
    }
    if (path === '/debug/top-devices') {
      // Device ids: behind the admin token, like the quarantine list.
      if (!requireAdminToken(req, res, options.tokenSha256, '/debug/top-devices')) return;
      answerTopDevices(options.topDevices, new URLSearchParams((req.url ?? '').split('?')[1] ?? ''), res);
      return;
    }
    if (path === '/metrics') {
      options.metrics.collect().then(
        (text) => res.writeHead(200, { 'content-type': options.metrics.contentType, 'cache-control': 'no-store' }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Answers `/debug/top-devices`: 400 on a bad query, 404 when nothing is tracked, else the rows. */
function answerTopDevices(read: AdminServerOptions['topDevices'], query: URLSearchParams, res: http.ServerResponse): void {
  const n = Number(query.get('n') ?? 20);
  const by = (query.get('by') ?? 'rate') as TopDevicesOrder;
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOP || !TOP_ORDERS.includes(by)) {
    sendJson(res, 400, { error: 'bad_query', reason: `n is 1..${MAX_TOP}, by is one of ${TOP_ORDERS.join(', ')}` });
    return;
  }
  const rows = read?.(n, by) ?? Promise.resolve(undefined);
  rows.then(
    (devices) => (devices === undefined ? sendJson(res, 404, { error: 'not_tracked', reason: 'no per-device limit is configured (limits.perDevice, limits.routes)' }) : sendJson(res, 200, { by, n, devices })),
    (err: Error) => sendJson(res, 500, { error: 'unavailable', reason: err.message }),
  );
}

function safe(check: ReadinessCheck): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/** The degraded notes now, or undefined if none (or if reading them failed: never breaks /readyz). */
function degradedNow(read: (() => Readonly<Record<string, string>>) | undefined): Readonly<Record<string, string>> | undefined {
  try {
    const notes = read?.();
    return notes && Object.keys(notes).length > 0 ? notes : undefined;
  } catch {
    return undefined;
  }
}
