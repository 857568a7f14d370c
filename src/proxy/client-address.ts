/**
 * Which address a connection's client is known by. The log lines and `X-Forwarded-For` ask this one
 * function (and anything keyed on a client's address must too), so they agree: behind a load
 * balancer speaking the PROXY protocol it is the address the balancer's header named (the data
 * listener's front provides the function), otherwise the TCP peer.
 */
import type { Socket } from 'node:net';

/** The client's address for a raw or TLS socket of the data listener. Sync, never throws. */
export type ClientAddressOf = (socket: Socket) => string | undefined;

/** Without a PROXY protocol front: the TCP peer. */
export const peerAddressOf: ClientAddressOf = (socket) => socket.remoteAddress;
