/**
 * Binding the sidecar's listeners. A port that cannot be bound becomes a `SidecarError`
 * ERR_LISTEN naming the config section (`listen`, `admin`) and why, instead of a bare errno.
 */
import type { AddressInfo, Server } from 'node:net';
import { startAdminServer, type AdminServer, type AdminServerOptions } from '../admin/index.js';
import { SidecarError } from '../errors.js';

/** Starts listening. Async; rejects with ERR_LISTEN (`section`: the config section) if the port cannot be bound. */
export function listen(server: Server, port: number, host: string, section: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException) => reject(listenError(cause, host, port, section));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Starts the admin listener. Async; rejects with ERR_LISTEN (`admin`) if its port cannot be bound. */
export async function listenAdmin(options: AdminServerOptions): Promise<AdminServer> {
  try {
    return await startAdminServer(options);
  } catch (cause) {
    throw listenError(cause as NodeJS.ErrnoException, options.host, options.port, 'admin');
  }
}

/** `https://host:port` of a listening data server; a wildcard address is named `localhost`. */
export function dataListenerUrl(server: Server, host: string): string {
  const port = (server.address() as AddressInfo).port;
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return `https://${name.includes(':') ? `[${name}]` : name}:${port}`;
}

function listenError(cause: NodeJS.ErrnoException, host: string, port: number, section: string): SidecarError {
  const why = cause.code === 'EADDRINUSE' ? 'is already in use' : cause.code === 'EACCES' ? 'needs privileges' : cause.message;
  return new SidecarError('ERR_LISTEN', section, `cannot listen on ${host}:${port} (${section}): the port ${why}`, { cause });
}
