/**
 * Request headers the sidecar rewrites on every forwarded request, besides the identity ones:
 * hop-by-hop headers (RFC 9110 §7.6.1) and the X-Forwarded-* family.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { normalizeHeaderName, stripHeaders } from '../identity/index.js';

/** `replace` (default): client-sent X-Forwarded-* are spoofable, ours win. `append`: keep a trusted L7 hop's. */
export type ForwardedMode = 'replace' | 'append';

// transfer-encoding is kept: Node's client re-frames a chunked body only when told it is chunked.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect'];
const FORWARDED = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port'];

/** Compiles the names to drop for each mode. Pure. */
export function compileForwardedRewrite(mode: ForwardedMode) {
  const strip = new Set(mode === 'replace' ? FORWARDED : []);
  // `connection` itself stays in `req.headers` for an upgrade (the upstream needs it); for plain
  // requests the forwarder drops it (the upstream hop is a keep-alive pool), and Node's server
  // honours the client's own `Connection: close` on the response.
  const hop = new Set(HOP_BY_HOP.filter((h) => h !== 'connection'));
  const hopKeepUpgrade = new Set(HOP_BY_HOP.filter((h) => h !== 'connection' && h !== 'upgrade'));

  /**
   * Rewrites `headers` in place. For an upgrade, Connection/Upgrade are kept (the upstream needs
   * them). `expect` is dropped because Node has already answered `100 Continue` to the client.
   */
  return function rewrite(headers: IncomingHttpHeaders, socket: TLSSocket, upgrade: boolean): void {
    const listed = typeof headers.connection === 'string' && !upgrade ? headers.connection.split(',').map((s) => normalizeHeaderName(s.trim())) : [];
    stripHeaders(headers, upgrade ? hopKeepUpgrade : hop);
    for (const name of listed) if (name && name !== 'connection') delete headers[name];
    const priorFor = mode === 'append' ? headers['x-forwarded-for'] : undefined;
    stripHeaders(headers, strip);
    const remote = socket.remoteAddress ?? '';
    headers['x-forwarded-for'] = priorFor ? `${priorFor}, ${remote}` : remote;
    if (mode === 'replace' || !headers['x-forwarded-proto']) headers['x-forwarded-proto'] = 'https';
    if (headers.host && (mode === 'replace' || !headers['x-forwarded-host'])) headers['x-forwarded-host'] = headers.host;
    if (mode === 'replace' || !headers['x-forwarded-port']) headers['x-forwarded-port'] = String(socket.localPort ?? '');
  };
}
