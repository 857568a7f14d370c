/**
 * Per-route authorization, compiled once: ordered rules on exact path / path prefix / method, each
 * with the identities that may pass, behind a global allow-list; a request that matches no rule
 * gets the configured default. Per request: the first segment is sliced (lower-cased for
 * `ignoreCase` rules) to pick the rules that can match, then a walk over those with string
 * comparisons; the decision objects are made when compiled.
 *
 * The path judged is the one the pipeline forwards (see proxy/request-target.ts): decoded, without
 * dot segments, empty segments, backslashes or encoded slashes. One reading is left that
 * upstreams disagree on: `;params` (`/admin;x` is `/admin` to Tomcat and Spring, a different
 * segment to most others). A path holding `;` is judged under both readings and passes only if
 * both pass, so neither kind of upstream can be reached through the other's reading.
 */
import type { CertIdentity } from '../identity/index.js';
import { ANY_IDENTITY, compileAllowList, type AllowSpec, type IdentityPredicate } from './identity-match.js';

/** A route rule as config gives it. */
export interface RouteSpec {
  readonly name: string;
  /** Exactly one of the two (the schema checks it). */
  readonly path: { readonly exact?: string | undefined; readonly prefix?: string | undefined };
  readonly ignoreCase: boolean;
  readonly methods?: readonly string[] | undefined;
  readonly allow: AllowSpec;
  readonly failureMode: 'http' | 'reject';
}

/** The `authorization` section as config gives it. */
export interface AuthorizationSpec {
  readonly default: 'allow' | 'deny';
  readonly allow: AllowSpec;
  readonly routes: readonly RouteSpec[];
}

/**
 * The rule a request matched, for the pipeline (how to refuse), metrics (`name` is the `route`
 * label, bounded: it comes from config) and per-route settings of later stages.
 */
export interface Route {
  readonly name: string;
  /** `http`: a refusal is a 403 JSON answer; `reject`: the connection is closed without one. */
  readonly failureMode: 'http' | 'reject';
}

/**
 * Request headers some upstreams (IIS URL Rewrite, Symfony/Zend, method-override middleware) read
 * as the real path or method: a client could have a route it may call carry a path or method the
 * rules never judged. Stripped before forwarding whenever route rules are configured.
 */
export const ROUTE_OVERRIDE_HEADERS: readonly string[] = Object.freeze(['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override']);

/** What a request matching no rule is labelled; also the label when no authorization is configured. */
export const DEFAULT_ROUTE: Route = Object.freeze({ name: 'default', failureMode: 'http' });

/** The outcome for one request. */
export interface Decision {
  readonly allowed: boolean;
  readonly route: Route;
}

/** Decides requests. */
export interface Authorizer {
  /**
   * `path` is the normalised, decoded path (no query) that will be forwarded; `method` as the
   * client sent it. Sync, pure, never throws; returns one of the decisions made when compiled.
   */
  authorize(identity: CertIdentity, method: string, path: string): Decision;
}

interface CompiledRoute {
  /** The first segment every path this rule matches starts with; undefined when it can be any (prefix "/", ignoreCase). */
  readonly firstSegment: string | undefined;
  readonly matchesPath: (path: string, lower: string) => boolean;
  readonly ignoreCase: boolean;
  readonly methods: ReadonlySet<string> | undefined;
  readonly allow: IdentityPredicate;
  readonly allowed: Decision;
  readonly denied: Decision;
}

/** Compiles the rules. Pure; the spec is trusted (the config schema validated it). */
export function compileAuthorizer(spec: AuthorizationSpec): Authorizer {
  const global = compileAllowList(spec.allow);
  const routes = spec.routes.map(compileRoute);
  const anyIgnoresCase = routes.some((r) => r.ignoreCase);
  // Rules grouped by the first segment of their path, each group in config order with the rules
  // that can match any first segment (prefix "/", ignoreCase) merged in: a request walks only the
  // rules that can match it (measured: 50 rules cost about as much as 2; test/bench/authorization-rules.mjs).
  const anywhere = routes.filter((r) => r.firstSegment === undefined);
  const bySegment = new Map<string, CompiledRoute[]>();
  for (const r of routes) {
    if (r.firstSegment !== undefined && !bySegment.has(r.firstSegment)) {
      bySegment.set(r.firstSegment, routes.filter((x) => x.firstSegment === r.firstSegment || x.firstSegment === undefined));
    }
  }
  const fallback: Decision = Object.freeze({ allowed: spec.default === 'allow', route: DEFAULT_ROUTE });
  const fallbackDenied: Decision = Object.freeze({ allowed: false, route: DEFAULT_ROUTE });

  function decide(identity: CertIdentity, method: string, path: string): Decision {
    const lower = anyIgnoresCase ? path.toLowerCase() : path;
    const end = path.indexOf('/', 1);
    const candidates = bySegment.get(end === -1 ? path.slice(1) : path.slice(1, end)) ?? anywhere;
    for (const r of candidates) {
      if (!r.matchesPath(path, lower) || (r.methods !== undefined && !r.methods.has(method))) continue;
      return global(identity) && r.allow(identity) ? r.allowed : r.denied;
    }
    return fallback.allowed && global(identity) ? fallback : fallbackDenied;
  }

  return {
    authorize(identity, method, path) {
      const literal = decide(identity, method, path);
      if (!literal.allowed || !path.includes(';')) return literal;
      const stripped = decide(identity, method, withoutParameters(path));
      return stripped.allowed ? literal : stripped;
    },
  };
}

function compileRoute(spec: RouteSpec): CompiledRoute {
  const route: Route = Object.freeze({ name: spec.name, failureMode: spec.failureMode });
  const exact = spec.path.exact !== undefined;
  const raw = spec.path.exact ?? spec.path.prefix ?? '/';
  // "/admin/" and "/admin" mean the same rule: matching is by segments either way.
  const trimmed = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const p = spec.ignoreCase ? trimmed.toLowerCase() : trimmed;
  const pick = spec.ignoreCase ? (_: string, lower: string) => lower : (path: string) => path;
  let matchesPath: (path: string, lower: string) => boolean;
  if (exact) {
    const withSlash = p === '/' ? p : `${p}/`;
    matchesPath = (path, lower) => {
      const s = pick(path, lower);
      return s === p || s === withSlash;
    };
  } else if (p === '/') {
    matchesPath = () => true;
  } else {
    // Segment by segment: /admin covers /admin and /admin/…, never /administrator.
    matchesPath = (path, lower) => {
      const s = pick(path, lower);
      return s.startsWith(p) && (s.length === p.length || s.charCodeAt(p.length) === 0x2f /* '/' */);
    };
  }
  const end = trimmed.indexOf('/', 1);
  const firstSegment = spec.ignoreCase || (trimmed === '/' && !exact) ? undefined : end === -1 ? trimmed.slice(1) : trimmed.slice(1, end);
  return {
    firstSegment,
    matchesPath,
    ignoreCase: spec.ignoreCase,
    methods: spec.methods === undefined ? undefined : new Set(spec.methods),
    allow: spec.allow === 'any' ? ANY_IDENTITY : compileAllowList(spec.allow),
    allowed: Object.freeze({ allowed: true, route }),
    denied: Object.freeze({ allowed: false, route }),
  };
}

/** `/a;x/b;y=1` → `/a/b`: the path as Tomcat and Spring read it. Pure. */
export function withoutParameters(path: string): string {
  return path.replace(/;[^/]*/g, '');
}
