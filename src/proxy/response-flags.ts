/**
 * The access line's `flags`: why a request did not get the upstream's complete answer, as one
 * short code in the spirit of Envoy's response flags (the upstream ones keep Envoy's letters; the
 * sidecar's own refusals have their own). Absent when the upstream's answer reached the client
 * whole. One code per request — the first cause — so the field never needs splitting.
 */
import type { UpstreamErrorKind } from './forwarder.js';

export type ResponseFlag =
  /** Upstream connection failure: refused, DNS, TLS, or the connect timeout (answered 502/504). */
  | 'UF'
  /** Upstream timeout: no response head, or a stalled body, within `responseTimeoutMs`. */
  | 'UT'
  /** Upstream connection reset or closed before the response was complete. */
  | 'UC'
  /** Any other upstream failure, mostly a response that is not valid HTTP/1.1. */
  | 'UPE'
  /** Downstream connection closed: the client went away before the response was complete. */
  | 'DC'
  /** The connection's client certificate was refused (any handshake reason); nothing forwarded. */
  | 'CR'
  /** The client certificate (or a CA of its path) expired while the connection was open. */
  | 'CE'
  /** Bad request-target: not origin-form, or a dot segment in some reading (400). */
  | 'BT'
  /** An upgrade to anything but WebSocket (400). */
  | 'BU'
  /** Authorization denied: the route's rules do not allow this identity (403 `not_authorized`, or closed under the route's `failureMode: reject`). */
  | 'AD'
  /** The device is quarantined (403 `quarantined`, then the connection is closed). */
  | 'QD'
  /** Rate limited: the device (on this route) is over its request rate (429, Envoy's letters). */
  | 'RL'
  /** The device or its certificate holds more open connections than allowed (429, then closed). */
  | 'CL';

/** The flag of an upstream failure. Pure. */
export function upstreamFlag(kind: UpstreamErrorKind, err: Error): ResponseFlag {
  switch (kind) {
    case 'refused':
    case 'dns':
    case 'tls':
      return 'UF';
    case 'timeout': {
      const code = (err as NodeJS.ErrnoException).code;
      // ETIMEDOUT: the upgrade path's own connect timeout.
      return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' ? 'UF' : 'UT';
    }
    case 'reset':
      return 'UC';
    default:
      return 'UPE';
  }
}
