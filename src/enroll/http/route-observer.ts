/**
 * Counts and times every answer of the CA's listeners by route and result (`ok`, `not_modified`
 * for a 304, or the stable error code, read back from the JSON error body), and logs unexpected failures. Labels are
 * closed sets: routes are named by the caller, never taken from the URL.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../../logging.js';
import type { CaMetrics } from '../../metrics.js';

export interface ObservedRoute {
  /** Records an unexpected error (logged with the route, never with the body). */
  failed(err: unknown): void;
}

export type RouteObserver = (route: string, res: ServerResponse) => ObservedRoute;

/** An observer for one listener (`api` is enroll, admin or publish). */
export function createRouteObserver(api: string, metrics: CaMetrics, logger: Logger): RouteObserver {
  return (route, res) => {
    const end = metrics.requestDuration.startTimer({ api, route });
    res.once('finish', () => {
      end();
      const result = res.statusCode === 304 ? 'not_modified' : res.statusCode < 400 ? 'ok' : String(res.getHeader('x-error-code') ?? res.statusCode);
      metrics.requests.inc({ api, route, result });
    });
    return {
      failed(err) {
        logger.error({ api, route, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'CA request failed');
      },
    };
  };
}
