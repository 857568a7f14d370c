/**
 * The data listener's drain: stop accepting, let in-flight requests finish, close idle keep-alive
 * connections as they become idle, and cut whatever is left at the deadline, upgraded (WebSocket)
 * sockets included.
 */
import type { Server as NetServer, Socket } from 'node:net';
import type { Server } from 'node:https';
import type { Logger } from '../logging.js';

export interface Drain {
  /** True once `close()` has begun (readiness turns false at once). */
  readonly draining: boolean;
  /**
   * Starts the drain (once; later calls return the same promise): `stopping` runs at once,
   * `stopped` after the listener closed. Resolves when `stopped` has. Never rejects.
   */
  close(graceMs: number): Promise<void>;
}

export interface DrainHooks {
  /** Stop background work that must not start anything new (e.g. reload polling). Sync. */
  stopping(): void;
  /** Release what the connections used (forwarder, revocation, admin). */
  stopped(): Promise<void>;
}

/** The PROXY protocol front, when it accepts the data server's connections (`listen.proxyProtocol`). */
export interface DrainedFront {
  readonly server: NetServer;
  /** Closes the connections still waiting for their header: they carry no request. */
  closePending(): void;
}

/**
 * Tracks `server`'s connections from now on (call before it listens) and returns its drain.
 * Every raw connection is tracked because the HTTP server forgets upgraded sockets, which the
 * deadline must cut too. With a `front`, the front is what listens and owns the TCP sockets.
 */
export function createDrain(server: Server, front: DrainedFront | undefined, logger: Logger, hooks: DrainHooks): Drain {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let closing: Promise<void> | undefined;
  return {
    get draining() {
      return closing !== undefined;
    },
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        hooks.stopping();
        logger.info({ event: 'draining', graceMs }, 'draining: no new connections; finishing in-flight requests');
        // A keep-alive connection becomes idle the moment its in-flight response ends; closing
        // idle ones on a short tick lets every request finish and no new one start.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const deadline = setTimeout(() => {
          logger.warn({ event: 'drain_deadline', open: sockets.size }, 'drain deadline reached; closing what is left');
          server.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        deadline.unref();
        if (front) {
          // The data server never listened: closing it only closes its idle keep-alive connections
          // (the sweep takes the rest). The front calls back once its last TCP socket closed.
          server.close();
          front.closePending();
        }
        (front?.server ?? server).close(() => {
          clearInterval(sweep);
          clearTimeout(deadline);
          hooks.stopped().then(resolve, resolve);
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
