/**
 * Counts and times every answer of the CA's listeners by route and result: `ok`, `not_modified`
 * for a 304, or the stable code of the refusal sent (noted in the process by `sendRefusal`, never
 * sent to the client), and logs unexpected failures. Labels are closed sets: routes are named by
 * the route table, never taken from the URL.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../../logging.js';
import type { CaMetrics } from '../../metrics.js';

export interface ObservedRoute {
  /** Names the route the answer is counted under; until called, it is `other`. */
  named(route: string): void;
  /** Records an unexpected error (logged with the route, never with the body). */
  failed(err: unknown): void;
}

/** Starts observing one answer, from before the listener's guard runs, so its refusals count too. */
export type RouteObserver = (res: ServerResponse) => ObservedRoute;

/** The refusal code of each answer being sent, for its result label. */
const refusalCodes = new WeakMap<ServerResponse, string>();

/** Notes the refusal `res` answers with; its metric counts it under `code`. */
export function noteRefusal(res: ServerResponse, code: string): void {
  refusalCodes.set(res, code);
}

/** An observer for one listener (`api` is enroll, admin or publish). */
export function createRouteObserver(api: string, metrics: CaMetrics, logger: Logger): RouteObserver {
  return (res) => {
    let route = 'other';
    const end = metrics.requestDuration.startTimer({ api });
    res.once('finish', () => {
      end({ route });
      const result = res.statusCode === 304 ? 'not_modified' : res.statusCode < 400 ? 'ok' : (refusalCodes.get(res) ?? String(res.statusCode));
      metrics.requests.inc({ api, route, result });
    });
    return {
      named(name) {
        route = name;
      },
      failed(err) {
        logger.error({ api, route, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'CA request failed');
      },
    };
  };
}
