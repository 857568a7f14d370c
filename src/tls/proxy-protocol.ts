/**
 * The PROXY protocol in front of the data listener (`listen.proxyProtocol`): a plain TCP server
 * that accepts every connection, reads the load balancer's header before any TLS byte, and then
 * hands the socket, with the bytes that followed the header put back, to the unchanged
 * `https.Server` (`emit('connection')`). Only built when enabled, so without it the data
 * listener accepts connections itself and pays nothing.
 *
 * Whom to believe: a header is read only at byte 0 of a connection from a `trustedSources`
 * address, and such a connection must carry one (a balancer that sometimes omits it would key
 * every such client's logs and limits on the balancer's own address: a misconfiguration to see,
 * not to paper over). Any other source connects with plain TLS; a PROXY header from it is
 * refused, never believed. Nothing after the first bytes is ever read as a header.
 */
import { BlockList, createServer, isIPv4, type Server as NetServer, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { parseProxyHeader, startsLikeProxyHeader } from './proxy-header.js';

/** What the listener needs from `listen.proxyProtocol`. */
export interface ProxyProtocolOptions {
  /** CIDRs (or single addresses) of the load balancers; validated by the config schema. */
  readonly trustedSources: readonly string[];
  /** A header (or, from another source, the first bytes) must arrive within this long. */
  readonly headerTimeoutMs: number;
}

/**
 * Why a connection was closed before TLS: a header from an untrusted source, none from a trusted
 * one, one the spec does not allow, one not complete in time, or a trusted peer that left mid-header.
 */
export type ProxyRefusal = 'untrusted_source' | 'missing_header' | 'invalid_header' | 'timeout' | 'truncated';

/** Where the listener reports; the composition root turns these into metrics and log lines. */
export interface ProxyProtocolHooks {
  /** A trusted header was read; `source` says whose address stands: the header's client, or the socket's (LOCAL, UNKNOWN, AF_UNIX). */
  accepted(version: 1 | 2, source: 'client' | 'socket'): void;
  /** The connection was closed. `peer` is the TCP peer's address. */
  refused(reason: ProxyRefusal, peer: string | undefined, detail: string): void;
}

/** A running PROXY protocol front. */
export interface ProxyProtocolListener {
  /** The server to `listen()` on instead of the data server; it owns the TCP sockets. */
  readonly server: NetServer;
  /**
   * The client's address for a raw or TLS socket of this listener: the address a trusted header
   * named, else the TCP peer's. Sync, never throws. Stays right after the socket closed once it
   * has been asked during the connection (the pipeline asks on the handshake).
   */
  clientAddressOf(socket: Socket): string | undefined;
  /** Closes the connections still waiting for their first bytes (on drain: no request is in them). */
  closePending(): void;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** The same TCP connection seen from its raw socket and from the TLS socket wrapping it. */
const connectionKey = (s: Socket) => `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;

/**
 * Builds (does not start) the front of `dataServer`. Sync; throws only on a trusted source the
 * schema should have refused. Never throws from a connection: hostile bytes close that connection.
 */
export function createProxyProtocolListener(dataServer: TlsServer, options: ProxyProtocolOptions, hooks: ProxyProtocolHooks): ProxyProtocolListener {
  const trusted = trustedSourceList(options.trustedSources);
  // A TLS socket has no public link to the raw socket it wraps, but both report the same TCP
  // 4-tuple, which is unique among open connections; the entry lives until the raw socket closes.
  const byConnection = new Map<string, { address: string }>();
  const bySocket = new WeakMap<Socket, string>();
  const pending = new Set<Socket>();

  function clientAddressOf(socket: Socket): string | undefined {
    const known = bySocket.get(socket);
    if (known !== undefined) return known;
    const entry = byConnection.size === 0 ? undefined : byConnection.get(connectionKey(socket));
    if (entry === undefined) return socket.remoteAddress;
    bySocket.set(socket, entry.address);
    return entry.address;
  }

  // Resolved as soon as the TLS socket exists for the pipeline, so a line written after the
  // connection closed (an aborted request's access line) still names the client.
  dataServer.prependListener('secureConnection', (socket: TLSSocket) => void clientAddressOf(socket));

  function handOver(socket: Socket, rest: Buffer, client: string | undefined): void {
    const key = connectionKey(socket);
    if (client === undefined) {
      byConnection.delete(key);
    } else {
      const entry = { address: client };
      byConnection.set(key, entry);
      bySocket.set(socket, client);
      socket.once('close', () => {
        if (byConnection.get(key) === entry) byConnection.delete(key);
      });
    }
    // Paused before the rest goes back, so no byte is emitted to nobody; the TLS socket reads
    // what the raw socket holds before it reads from the wire.
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    dataServer.emit('connection', socket);
  }

  const server = createServer({ noDelay: true }, (socket: Socket) => {
    const peer = socket.remoteAddress;
    const fromTrusted = peer !== undefined && trusted.check(peer, isIPv4(peer) ? 'ipv4' : 'ipv6');
    let received: Buffer = EMPTY;
    let settled = false;
    pending.add(socket);

    const settle = () => {
      settled = true;
      pending.delete(socket);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const refuse = (reason: ProxyRefusal, detail: string) => {
      settle();
      hooks.refused(reason, peer, detail);
      socket.destroy();
    };
    // An absolute deadline, not socket.setTimeout: a peer sending one byte at a time would reset an idle timer forever.
    const timer = setTimeout(() => refuse('timeout', `${fromTrusted ? 'no complete header' : 'no first bytes'} within ${options.headerTimeoutMs} ms`), options.headerTimeoutMs);
    timer.unref();
    const onError = () => socket.destroy();
    const onClose = () => {
      if (settled) return;
      settle();
      // A trusted peer that connects and leaves without a byte is a TCP health check, not a refusal.
      if (fromTrusted && received.length > 0) hooks.refused('truncated', peer, `closed after ${received.length} bytes of a header`);
    };
    function onData(chunk: Buffer): void {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (!fromTrusted) {
        const looks = startsLikeProxyHeader(received);
        if (looks === 'maybe') return;
        if (looks === 'yes') return refuse('untrusted_source', 'a PROXY header from an address outside trustedSources');
        settle();
        return handOver(socket, received, undefined);
      }
      const header = parseProxyHeader(received);
      switch (header.kind) {
        case 'incomplete':
          return;
        case 'absent':
          return refuse('missing_header', 'a trusted source sent no PROXY header');
        case 'invalid':
          return refuse('invalid_header', header.detail);
        case 'header':
          settle();
          hooks.accepted(header.version, header.client === undefined ? 'socket' : 'client');
          return handOver(socket, received.subarray(header.length), header.client?.address);
      }
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });

  // A connection cap set on the data server (`maxConnections`, and `dropMaxConnection` so a cluster
  // worker drops rather than hands back) applies where TCP is accepted: here. Its 'drop' events
  // are re-emitted on the data server, where they are counted.
  const capped = dataServer as TlsServer & { dropMaxConnection?: boolean };
  if (typeof capped.maxConnections === 'number') server.maxConnections = capped.maxConnections;
  if (capped.dropMaxConnection !== undefined) (server as NetServer & { dropMaxConnection?: boolean }).dropMaxConnection = capped.dropMaxConnection;
  server.on('drop', (data) => dataServer.emit('drop', data));

  return {
    server,
    clientAddressOf,
    closePending() {
      for (const socket of pending) socket.destroy();
    },
  };
}

/** The trusted CIDRs as a `BlockList` (which also matches IPv4-mapped IPv6 peers against IPv4 ranges). */
function trustedSourceList(sources: readonly string[]): BlockList {
  const list = new BlockList();
  for (const source of sources) {
    const [address = '', prefix] = source.split('/');
    const family = isIPv4(address) ? 'ipv4' : 'ipv6';
    list.addSubnet(address, prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix), family);
  }
  return list;
}
