/**
 * The publishing listener (plain HTTP, like every CRL distribution point and OCSP URL: the
 * answers are signed, and a TLS-protected revocation URL would need its own revocation check):
 *   GET  /crl                 the current CRL, DER (application/pkix-crl); HEAD too; 304 to a
 *                             matching If-None-Match / If-Modified-Since
 *   POST /ocsp                RFC 6960 request body (application/ocsp-request)
 *   GET  /ocsp/{base64}       the GET form of RFC 6960 appendix A.1
 *   GET  /v1/crl/feed         each newly signed CRL as a Server-Sent Event (revocation-feed.ts)
 *   GET  /v1/pins             the signed pin set
 *   GET  /healthz
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { PublishedCrl } from '../crl-publisher.js';
import type { RevocationFeed } from '../revocation-feed.js';
import { refusal } from '../refusals.js';
import { isNotModified } from './conditional-get.js';
import { readBody, sendJson, sendRefusal } from './http-io.js';
import { sendPins, type PinSetSource } from './pins-route.js';
import type { ObservedRoute, RouteObserver } from './route-observer.js';
import { createRouteTable, type Route, type RouteContext } from './router.js';

/** An OCSP request is a few hundred bytes; 10 CertIDs with a nonce stay far below this. */
const MAX_OCSP_REQUEST_BYTES = 8_192;

/**
 * Any cache between the CA and a sidecar (a CDN, a corporate proxy) must re-validate every time:
 * a max-age of N would add up to N seconds to every sidecar's revoke → refusal time, on top of its
 * own polling interval (seconds, by default). Re-validation is cheap for everyone: a 304 here
 * encodes nothing (the validators were computed when the CRL was signed).
 */
const CRL_CACHE_CONTROL = 'no-cache';

export interface PublishApiOptions {
  readonly crl: () => Promise<Pick<PublishedCrl, 'der' | 'thisUpdate' | 'etag' | 'thisUpdateShared' | 'crlNumber'>>;
  readonly ocsp: (requestDer: Uint8Array) => Promise<Buffer>;
  readonly pins?: PinSetSource;
  readonly observe: RouteObserver;
  /** The CA's clock (an If-Modified-Since after it is ignored). */
  readonly now?: () => Date;
  /** The revocation feed (`GET /v1/crl/feed`, Server-Sent Events); see revocation-feed.ts. */
  readonly feed?: Pick<RevocationFeed, 'subscribe'>;
}

/** Builds the request handler. Never throws; OCSP errors are OCSP error responses, not HTTP 500s. */
export function createPublishApi(o: PublishApiOptions): RequestListener {
  const now = o.now ?? (() => new Date());
  const feed = o.feed;
  const routes: Route[] = [
    { name: 'healthz', methods: ['GET'], path: '/healthz', handle: (_req, res) => sendJson(res, 200, { ok: true }) },
    { name: 'crl', methods: ['GET', 'HEAD'], path: '/crl', handle: answerCrl },
    {
      name: 'ocsp',
      methods: ['POST'],
      path: '/ocsp',
      handle: (req, res, { observed }) =>
        void readBody(req, MAX_OCSP_REQUEST_BYTES).then((body) => (body.ok ? answerOcsp(res, body.body, observed) : sendRefusal(res, body)), observed.failed),
    },
    // The router has percent-decoded the wildcard; base64 may hold '/' unencoded, which it keeps.
    { name: 'ocsp', methods: ['GET'], path: '/ocsp/*', handle: (_req, res, { params, observed }) => answerOcsp(res, Buffer.from(params['*'] ?? '', 'base64'), observed) },
    { name: 'pins', methods: ['GET'], path: '/v1/pins', handle: (_req, res) => sendPins(res, o.pins) },
  ];
  if (feed) {
    routes.push({
      name: 'feed',
      methods: ['GET'],
      path: '/v1/crl/feed',
      // Subscribers get the current CRL at once (unless they hold it): one is signed at start-up.
      handle: (req, res) => void o.crl().then((crl) => feed.subscribe(req, res, crl), () => feed.subscribe(req, res, undefined)),
    });
  }
  return createRouteTable(routes, { observe: o.observe, badUrl: answerBadUrl });

  /** An OCSP GET whose base64 is not even valid percent-encoding is a malformed OCSP request (RFC 6960 §2.3). */
  function answerBadUrl(req: IncomingMessage, res: ServerResponse, observed: ObservedRoute): void {
    if (req.method !== 'GET' || !(req.url ?? '').startsWith('/ocsp/')) return sendRefusal(res, refusal('bad_request', 'the URL is not valid percent-encoding'));
    observed.named('ocsp');
    answerOcsp(res, Buffer.alloc(0), observed);
  }

  function answerCrl(req: IncomingMessage, res: ServerResponse, { observed }: RouteContext): void {
    o.crl().then(
      (crl) => {
        const validators = { etag: crl.etag, 'last-modified': crl.thisUpdate.toUTCString(), 'cache-control': CRL_CACHE_CONTROL };
        if (isNotModified(req.headers, { etag: crl.etag, lastModified: crl.thisUpdate, lastModifiedIsUnique: !crl.thisUpdateShared }, now().getTime())) {
          return void res.writeHead(304, validators).end();
        }
        res.writeHead(200, { ...validators, 'content-type': 'application/pkix-crl', 'content-length': crl.der.length });
        res.end(req.method === 'HEAD' ? undefined : crl.der);
      },
      (err: unknown) => {
        observed.failed(err);
        sendRefusal(res, refusal('internal_error', 'no CRL is available'));
      },
    );
  }

  function answerOcsp(res: ServerResponse, der: Buffer, observed: ObservedRoute): void {
    o.ocsp(der).then(
      (answer) => res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': answer.length, 'cache-control': 'no-store' }).end(answer),
      (err: unknown) => {
        observed.failed(err);
        sendRefusal(res, refusal('internal_error', 'the OCSP responder failed'));
      },
    );
  }
}
