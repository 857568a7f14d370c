/**
 * The one route table of a CA listener, on find-my-way (fastify's radix-tree router). A route is
 * methods, a path and a name; the name is the route's metric label, so labels are a closed set
 * the code names, never taken from the URL. A path no route has is a 404; a path that routes
 * under other methods is a 405 whose Allow lists them. Both are counted under the route `other`
 * and answer with the JSON error body every refusal has.
 *
 * A listener's `guard` (rate limit, authentication) runs before every route not marked `open`,
 * and before a 404 or 405, and what it refuses is counted under `other`: a client without the
 * credential learns nothing about which paths exist, from the answer or from `/metrics`.
 *
 * A URL that cannot be percent-decoded matches no route; it is a 400, or the listener's
 * `badUrl` answer (the OCSP responder answers such a GET as a malformed OCSP request).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import Router, { type HTTPMethod } from 'find-my-way';
import { refusal } from '../refusals.js';
import { sendRefusal } from './http-io.js';
import type { ObservedRoute, RouteObserver } from './route-observer.js';

/** What a route's handler gets besides the request and response. */
export interface RouteContext {
  /** Path parameters, percent-decoded (`:name`, or `*` for a wildcard). */
  readonly params: Readonly<Record<string, string | undefined>>;
  /** The query string, parsed. */
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
  readonly observed: ObservedRoute;
}

export interface Route {
  /** The metric label; `other` is taken (404 and 405). */
  readonly name: string;
  readonly methods: readonly HTTPMethod[];
  /** A find-my-way path: `/v1/admin/devices/:deviceId`, `/ocsp/*`. */
  readonly path: string;
  /** Answered without the listener's guard (health checks, metrics scrapes). */
  readonly open?: boolean;
  /** Must answer; must not throw (an unexpected failure is its own 500). */
  readonly handle: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => void;
}

/** Answers (a refusal) and returns false when a request may go no further. Never throws. */
export type RouteGuard = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Answers a request whose URL cannot be percent-decoded; must not throw. */
export type BadUrlAnswer = (req: IncomingMessage, res: ServerResponse, observed: ObservedRoute) => void;

/** Builds a listener's request handler from its routes. Sync; throws if two routes collide. */
export function createRouteTable(routes: readonly Route[], o: { observe: RouteObserver; guard?: RouteGuard; badUrl?: BadUrlAnswer }): RequestListener {
  // Device ids may be 256 characters, percent-encoded up to 3 bytes each. With onBadUrl set,
  // find() returns a match without a store for an undecodable URL instead of null (a 404).
  const router = Router({ maxParamLength: 1024, onBadUrl: () => undefined });
  const methods = new Set<HTTPMethod>();
  for (const route of routes) {
    route.methods.forEach((m) => methods.add(m));
    router.on([...route.methods], route.path, () => undefined, route);
  }

  return (req, res) => {
    const url = req.url ?? '/';
    const found = router.find(req.method as HTTPMethod, url);
    const route = (found?.store ?? undefined) as Route | undefined;
    const observed = o.observe(res);
    if (!route?.open && o.guard && !o.guard(req, res)) return;
    if (found && !route) return o.badUrl ? o.badUrl(req, res, observed) : sendRefusal(res, refusal('bad_request', 'the URL is not valid percent-encoding'));
    if (!found || !route) return void answerNoRoute(req.method, url, res);
    observed.named(route.name);
    route.handle(req, res, { params: found.params, query: found.searchParams, observed });
  };

  function answerNoRoute(method: string | undefined, url: string, res: ServerResponse): void {
    const allow = [...methods].filter((m) => m !== method && router.find(m, url) !== null);
    if (allow.length === 0) return sendRefusal(res, refusal('not_found', 'no such route'));
    sendRefusal(res, refusal('method_not_allowed', `use ${allow.join(' or ')}`), { allow: allow.join(', ') });
  }
}
