/**
 * The per-request checks between a verified connection and the forwarder: quarantine, then the
 * request-target, then the route rules (policy/). Split from pipeline.ts, which answers and
 * reports; this file only decides.
 */
import type { IncomingMessage } from 'node:http';
import type { CertIdentity } from '../identity/index.js';
import { DEFAULT_ROUTE, type Authorizer, type Decision } from '../policy/index.js';
import { isForwardableTarget, normalizeTarget } from './request-target.js';

export const BAD_TARGET = Object.freeze({ error: 'bad_request_target', reason: 'not an origin-form path without dot segments' });
export const NOT_AUTHORIZED = Object.freeze({ error: 'not_authorized', reason: 'this client certificate may not call this method and path' });
export const QUARANTINED = Object.freeze({ error: 'quarantined', reason: 'this device is quarantined' });
/** Every request passes when no rules are configured; its label is `default`. */
const NO_RULES: Decision = Object.freeze({ allowed: true, route: DEFAULT_ROUTE });

export interface AdmissionOptions {
  readonly authorizer?: Authorizer | undefined;
  readonly quarantine?: { has(identity: CertIdentity): boolean } | undefined;
}

/** A decision made when the rules were compiled, or the body of a refusal that comes before any rule. */
export type Admission = Decision | typeof QUARANTINED | typeof BAD_TARGET;

/**
 * Builds the check. When rules judged the target, the request is rewritten to the normalised form
 * they judged (`req.url`), so the upstream receives exactly that path. Sync; never throws; without
 * rules and with an empty quarantine it costs what the target check alone did.
 */
export function createAdmission(options: AdmissionOptions): (identity: CertIdentity, req: IncomingMessage) => Admission {
  const { authorizer, quarantine } = options;
  return (identity, req) => {
    if (quarantine?.has(identity)) return QUARANTINED;
    if (authorizer === undefined) return isForwardableTarget(req.url) ? NO_RULES : BAD_TARGET;
    const target = normalizeTarget(req.url);
    if (target === undefined) return BAD_TARGET;
    const decision = authorizer.authorize(identity, req.method ?? '', target.path);
    if (decision.allowed) req.url = target.url;
    return decision;
  };
}
