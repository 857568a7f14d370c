/**
 * HTTP preconditions of a GET or HEAD of one representation (RFC 9110 §13.1.1, §13.1.3, §13.2.2),
 * so a fleet re-validating the CRL every few seconds costs the CA a 304 of a few hundred bytes.
 *
 * If-None-Match decides when present: any listed entity tag equal to ours under weak comparison
 * (W/ ignored), or `*`, means "not modified". Only without it is If-Modified-Since read: not
 * modified when our Last-Modified is not newer than its date. Anything unparsable answers "modified"
 * (a full 200): a wrong 304 would keep a revoked certificate's CRL from a relying party.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The validators of the representation being served. */
export interface Validators {
  /** A strong entity tag, quoted (`"…"`). */
  readonly etag: string;
  /** Whole seconds, as sent in Last-Modified. */
  readonly lastModified: Date;
  /** False when another representation had the same Last-Modified: If-Modified-Since then never matches. */
  readonly lastModifiedIsUnique: boolean;
}

/** One entity tag of a list, weak or not, with the list separators and spaces around it. */
const LIST_ELEMENT = /[\s,]*(?:W\/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)/y;
/** What may follow the last element: nothing but separators. */
const LIST_END = /[\s,]*$/y;

/** True if the request's preconditions make a 304 the answer. Pure; never throws. */
export function isNotModified(headers: IncomingHttpHeaders, v: Validators, nowMs: number): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) return inm.trim() === '*' || listHolds(inm, v.etag);
  const ims = headers['if-modified-since'];
  if (ims === undefined || !v.lastModifiedIsUnique) return false;
  const since = Date.parse(ims);
  // A date after our clock is invalid (RFC 9110 §13.1.3 says to read it on the origin's clock):
  // a client that put its own, faster clock there must not be told a later CRL is not newer.
  if (Number.isNaN(since) || since > nowMs) return false;
  return v.lastModified.getTime() <= since;
}

/** Weak comparison of `etag` against each member of an If-None-Match list; false on bad syntax. */
function listHolds(field: string, etag: string): boolean {
  for (let at = 0; ; ) {
    LIST_END.lastIndex = at;
    if (LIST_END.test(field)) return false;
    LIST_ELEMENT.lastIndex = at;
    const m = LIST_ELEMENT.exec(field);
    if (m === null) return false;
    if (m[1] === etag) return true;
    at = LIST_ELEMENT.lastIndex;
  }
}
