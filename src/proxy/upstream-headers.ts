/**
 * The request headers sent upstream, built in one pass over the client's raw header lines into
 * the flat `[name, value, …]` list undici and node:http take as is. It drops hop-by-hop headers
 * (RFC 9110 §7.6.1) and the names the Connection header lists, every inbound header that collides
 * with the identity surface, and (in `replace` mode) the client's X-Forwarded-* and Forwarded;
 * then it appends ours and the verified identity's. An upgrade keeps the client's `Upgrade` and
 * gets a Connection header of exactly `upgrade`, whatever else the client listed.
 *
 * `X-Request-Id` and `traceparent` are always the sidecar's, exactly one of each: the client's
 * value when it sent exactly one well-formed line (see request-ids.ts), a new one otherwise — two
 * lines are ambiguous, so neither wins. The client's `tracestate` lines go along only with its
 * valid traceparent. Like every name the proxy handles, their `_` spellings are never forwarded.
 *
 * Why one pass over `rawHeaders`: the old path materialised `req.headers`, rewrote it in place
 * with `delete` (which turns the object into a slow dictionary), copied it, and let undici walk
 * it again — three passes and ~10 % of a keep-alive request's CPU. A header name's verdict is
 * cached, since clients repeat the same dozen names on every request.
 */
import type { TLSSocket } from 'node:tls';
import { normalizeHeaderName, type RenderedHeaders } from '../identity/index.js';
import { peerAddressOf, type ClientAddressOf } from './client-address.js';
import { createIdSource, forwardableTraceparent, isWellFormedRequestId, type IdSource } from './request-ids.js';

/** `replace` (default): client-sent X-Forwarded-* are spoofable, ours win. `append`: keep a trusted L7 hop's. */
export type ForwardedMode = 'replace' | 'append';

export interface UpstreamHeaderOptions {
  /** Normalised names (lower case, `_` as `-`) of the identity surface: never forwarded from a client. */
  readonly strip: ReadonlySet<string>;
  readonly forwarded: ForwardedMode;
  /** Send this Host upstream instead of the client's (`preserveHost: false`); undefined keeps the client's. */
  readonly rewriteHostTo?: string | undefined;
  /** Where new request ids and traces come from (default: random). */
  readonly ids?: IdSource | undefined;
  /** The client's address for `X-Forwarded-For` (default: the TCP peer). */
  readonly clientAddressOf?: ClientAddressOf | undefined;
}

/** What goes upstream of one request's head, and what the access line says of it. */
export interface UpstreamHead {
  /** Flat `[name, value, …]`, as undici and node:http take it. */
  readonly headers: string[];
  /** The client announced a body (Content-Length other than 0, or Transfer-Encoding). */
  readonly hasBody: boolean;
  /** The `X-Request-Id` sent upstream and back to the client. */
  readonly requestId: string;
  /** The `traceparent` sent upstream (version 00). */
  readonly traceparent: string;
  /** The client's first Host, as sent (whatever goes upstream). */
  readonly host: string | undefined;
  /** The client's first User-Agent, as sent. */
  readonly userAgent: string | undefined;
}

/** Builds the upstream head of one request. Pure apart from the name cache; never throws. */
export type UpstreamHeaderBuilder = (rawHeaders: readonly string[], socket: TLSSocket, identity: RenderedHeaders, upgrade: boolean) => UpstreamHead;

// What a header name is to the proxy. Plain numbers (not an enum): they index nothing, they only branch.
const KEEP = 0;
const DROP = 1;
const HOST = 2;
const CONNECTION = 3;
const UPGRADE = 4; // kept for an upgrade, dropped otherwise
const TRANSFER_ENCODING = 5; // likewise: undici frames a forwarded body itself
const CONTENT_LENGTH = 6;
const XFF = 7;
// x-forwarded-proto/host/port in append mode: the client's stays if present, else ours is added.
const XF_PROTO = 8;
const XF_HOST = 9;
const XF_PORT = 10;
const REQUEST_ID = 11;
const TRACEPARENT = 12;
const TRACESTATE = 13;
const USER_AGENT = 14; // kept as is; read for the access line
type Kind = number;

/** Always dropped: hop-by-hop, and `expect` (Node has already answered `100 Continue`). */
const HOP_BY_HOP = new Set(['keep-alive', 'proxy-connection', 'te', 'trailer', 'expect']);
const FORWARDED = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port']);
/** A client cannot make us drop these by listing them in Connection: they frame the request. */
const NOT_LISTABLE = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);
/** What each forwarded header is in append mode (`forwarded` itself is kept as sent). */
const APPEND_KINDS = new Map<string, Kind>([
  ['x-forwarded-for', XFF],
  ['x-forwarded-proto', XF_PROTO],
  ['x-forwarded-host', XF_HOST],
  ['x-forwarded-port', XF_PORT],
]);
/** Distinct client header names whose verdicts are cached; past it the cache starts over. */
const NAME_CACHE_LIMIT = 512;

/** Compiles the builder for one listener's config. */
export function compileUpstreamHeaders(options: UpstreamHeaderOptions): UpstreamHeaderBuilder {
  const { strip, forwarded: mode, rewriteHostTo } = options;
  const ids = options.ids ?? createIdSource();
  const clientAddressOf = options.clientAddressOf ?? peerAddressOf;
  const kinds = new Map<string, Kind>();

  function kindOfNormalised(n: string): Kind {
    if (strip.has(n)) return DROP;
    if (HOP_BY_HOP.has(n)) return DROP;
    if (FORWARDED.has(n)) return mode === 'replace' ? DROP : (APPEND_KINDS.get(n) ?? KEEP);
    switch (n) {
      case 'host':
        return HOST;
      case 'connection':
        return CONNECTION;
      case 'upgrade':
        return UPGRADE;
      case 'transfer-encoding':
        return TRANSFER_ENCODING;
      case 'content-length':
        return CONTENT_LENGTH;
      case 'x-request-id':
        return REQUEST_ID;
      case 'traceparent':
        return TRACEPARENT;
      case 'tracestate':
        return TRACESTATE;
      case 'user-agent':
        return USER_AGENT;
      default:
        return KEEP;
    }
  }

  function kindOf(raw: string): Kind {
    let kind = kinds.get(raw);
    if (kind !== undefined) return kind;
    const lower = raw.toLowerCase();
    const n = normalizeHeaderName(lower);
    kind = kindOfNormalised(n);
    // `X_Forwarded_For`, `Transfer_Encoding`…: Node's parser ignores them, but a WSGI/CGI upstream
    // maps them onto the real name. An underscore spelling of any name we handle is never forwarded
    // (User_Agent is only read, so it stays an ordinary header).
    if (n !== lower && kind !== KEEP) kind = kind === USER_AGENT ? KEEP : DROP;
    if (kinds.size >= NAME_CACHE_LIMIT) kinds.clear();
    kinds.set(raw, kind);
    return kind;
  }

  return function build(raw, socket, identity, upgrade) {
    // Names the Connection header lists are hop-by-hop too, for upgrades as well: otherwise
    // `Connection: upgrade, authorization` would forward what a plain request drops. Only
    // `upgrade` survives on an upgrade, which needs it. Looked for first, since Connection may come last.
    let listed: Set<string> | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      if (kindOf(raw[i]!) !== CONNECTION) continue;
      for (const token of raw[i + 1]!.split(',')) {
        const name = normalizeHeaderName(token.trim());
        if (name && !NOT_LISTABLE.has(name) && !(upgrade && name === 'upgrade')) (listed ??= new Set()).add(name);
      }
    }

    const out: string[] = [];
    let host: string | undefined;
    let priorFor: string | undefined;
    let hasProto = false;
    let hasHost = false;
    let hasPort = false;
    let hasLength = false;
    let hasBody = false;
    let userAgent: string | undefined;
    let clientRequestId: string | undefined;
    let requestIdLines = 0;
    let clientTraceparent: string | undefined;
    let traceparentLines = 0;
    let tracestate: string[] | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      const kind = kindOf(name);
      if (kind === DROP) continue;
      if (listed !== undefined && listed.has(normalizeHeaderName(name))) continue;
      switch (kind) {
        case HOST:
          // Node keeps the first Host of duplicates; so do we (undici refuses two).
          if (host !== undefined) continue;
          host = value;
          if (rewriteHostTo !== undefined) continue;
          break;
        case TRANSFER_ENCODING:
          hasBody = true;
          if (!upgrade) continue;
          break;
        case CONNECTION:
          continue; // never the client's list: an upgrade gets exactly `connection: upgrade` below
        case UPGRADE:
          if (!upgrade) continue;
          break;
        case CONTENT_LENGTH:
          if (hasLength) continue; // Node's parser has refused differing duplicates already
          hasLength = true;
          if (value !== '0') hasBody = true;
          break;
        case XFF:
          priorFor = priorFor === undefined ? value : `${priorFor}, ${value}`;
          continue;
        case XF_PROTO:
          hasProto = true;
          break;
        case XF_HOST:
          hasHost = true;
          break;
        case XF_PORT:
          hasPort = true;
          break;
        case REQUEST_ID:
          clientRequestId = value;
          requestIdLines++;
          continue;
        case TRACEPARENT:
          clientTraceparent = value;
          traceparentLines++;
          continue;
        case TRACESTATE:
          (tracestate ??= []).push(value);
          continue;
        case USER_AGENT:
          userAgent ??= value;
          break;
      }
      out.push(name, value);
    }

    if (upgrade) out.push('connection', 'upgrade');
    if (rewriteHostTo !== undefined) out.push('host', rewriteHostTo);
    const remote = clientAddressOf(socket) ?? '';
    out.push('x-forwarded-for', priorFor === undefined ? remote : `${priorFor}, ${remote}`);
    if (!hasProto) out.push('x-forwarded-proto', 'https');
    if (!hasHost && host !== undefined) out.push('x-forwarded-host', host);
    if (!hasPort) out.push('x-forwarded-port', String(socket.localPort ?? ''));
    const requestId = requestIdLines === 1 && isWellFormedRequestId(clientRequestId!) ? clientRequestId! : ids.requestId();
    const continued = traceparentLines === 1 ? forwardableTraceparent(clientTraceparent!) : undefined;
    const traceparent = continued ?? ids.traceparent();
    out.push('x-request-id', requestId, 'traceparent', traceparent);
    if (continued !== undefined && tracestate !== undefined) for (let i = 0; i < tracestate.length; i++) out.push('tracestate', tracestate[i]!);
    // Indexed, not `for…of` with destructuring: the iterator objects were ~4 % of the bytes a
    // keep-alive request allocates (sampling allocation profile).
    for (let i = 0; i < identity.length; i++) {
      const pair = identity[i]!;
      out.push(pair[0], pair[1]);
    }
    return { headers: out, hasBody, requestId, traceparent, host, userAgent };
  };
}
