/**
 * The `revocation:` slice of the sidecar configuration (consumed by src/revocation/).
 *
 * YAML with every field and its default (paste into config/sidecar.example.yaml):
 *
 * ```yaml
 * revocation:
 *   # none | crl | ocsp | crl-then-ocsp | ocsp-then-crl. With two methods the second is asked
 *   # only when the first answers "unknown".
 *   mode: crl-then-ocsp
 *   # What the proxy does when no method could say good/revoked: fail-closed rejects the client,
 *   # fail-open lets it through (and logs).
 *   onUnknown: fail-closed
 *   # The CA certificates of the verified path below the root (intermediates): required checks
 *   # them exactly like the leaf; if-published checks each one that some source can speak about
 *   # (a loaded CRL of its issuer, a distribution point or OCSP URL it names, a configured CRL
 *   # source that may hold its issuer's CRL unloaded) and lets pass one that none can; skip
 *   # checks only the leaf.
 *   intermediates: if-published
 *   # Certificates remembered (LRU) so that a later CRL/OCSP refresh can report them revoked and
 *   # the proxy can close their open connections.
 *   maxTrackedCertificates: 100000
 *   crl:
 *     # CRL files, PEM (several CRLs per file allowed) or DER. Relative paths are resolved
 *     # against the config file's directory.
 *     files: []
 *     # CRL URLs (http:// or https://) fetched in the background.
 *     urls: []
 *     # Also fetch the http:// CRL distribution points named in client and intermediate certs.
 *     fetchDistributionPoints: true
 *     # At most this many discovered distribution points are followed.
 *     maxDistributionPoints: 100
 *     # URLs are re-fetched this often (each wait spread ±20 %, so a fleet does not poll in
 *     # step), and no later than the CRL's nextUpdate. Each fetch is a conditional GET: an
 *     # unchanged CRL costs a 304 (the device CA answers one), or, from a server without validators,
 *     # a download that is not parsed again. A revocation is seen within 1.2 × this plus the
 *     # download; a fleet of N sidecars sends the CA about N / this requests per second.
 *     refreshIntervalSeconds: 3
 *     # Files are checked for changes (stat: inode, size, mtime) this often (±20 %).
 *     filePollIntervalSeconds: 2
 *     # After nextUpdate plus this grace, a CRL is stale: lookups answer "unknown".
 *     staleGraceSeconds: 3600
 *     # Deadline for one CRL download (headers and body).
 *     fetchTimeoutMs: 10000
 *     # Largest CRL accepted (a 1,000,000-entry CRL is about 40 MB).
 *     maxBytes: 67108864
 *   ocsp:
 *     # Send every OCSP request here instead of the certificate's AIA responder URL.
 *     # overrideUrl: http://ocsp.example.internal/
 *     # CertID hash algorithm: sha1 (what most responders expect) or sha256.
 *     hash: sha1
 *     # Deadline for one OCSP exchange.
 *     timeoutMs: 2000
 *     # Largest OCSP response accepted.
 *     maxResponseBytes: 65536
 *     # Cached responses (LRU); each is held until min(nextUpdate, maxCacheTtlSeconds).
 *     maxCacheEntries: 100000
 *     maxCacheTtlSeconds: 3600
 *     # A held "good" is trusted this long after the responder gave it; a check after that waits
 *     # for the responder to be asked again (certificates in use are re-asked ahead, in the
 *     # background, and open connections are closed once the answer turns "revoked"). While the
 *     # responder fails, the held answer is still used until it expires (above): fail-closed
 *     # starts then. Each certificate in use costs the responder about one request per this
 *     # many seconds per sidecar process (with workers, per worker holding a connection of it).
 *     maxGoodAgeSeconds: 30
 *     # A response without nextUpdate says fresher information is always available: it is
 *     # refused (unknown, reason ocsp-stale) once its thisUpdate is older than this, and cached
 *     # at most until thisUpdate plus this. Set it to cover the responder's clock lag.
 *     maxAgeWithoutNextUpdateSeconds: 300
 *     # A failed OCSP check (timeout, bad response) is remembered this long, so a dead
 *     # responder is not asked again on every handshake.
 *     negativeCacheSeconds: 30
 *     # Tolerated clock difference when checking thisUpdate/nextUpdate and responder validity.
 *     clockSkewSeconds: 300
 *     # Send a nonce and require it echoed (many CDN-fronted responders do not support this).
 *     nonce: false
 *   feed:
 *     # The device CA's revocation feed (Server-Sent Events, each event a signed CRL, applied like
 *     # a CRL from crl.urls): revocations arrive within milliseconds. Polling and OCSP keep
 *     # running, so a feed that is down costs latency, never safety. Needs a mode that reads CRLs.
 *     # url: http://ca.example.internal:8080/v1/crl/feed
 *     # A stream silent this long is taken for dead and reopened.
 *     idleTimeoutSeconds: 45
 *     # Reconnect delay: starts here, doubles per failure (jittered), up to reconnectMaxMs.
 *     reconnectMinMs: 500
 *     reconnectMaxMs: 30000
 * ```
 */
import { z } from 'zod';
import { bool, int } from './fields.js';

const positiveInt = () => int(1, Number.MAX_SAFE_INTEGER);
const nonNegativeInt = () => int(0, Number.MAX_SAFE_INTEGER);

/** The `crl:` sub-slice. Nested objects use `.prefault({})` so their field defaults apply. */
const crlSchema = z.strictObject({
  files: z.array(z.string().min(1)).default([]).describe('CRL files (PEM, possibly several CRLs, or DER); absolute after config loading'),
  urls: z.array(z.url({ protocol: /^https?$/ })).default([]).describe('CRL URLs fetched in the background'),
  fetchDistributionPoints: bool().default(true).describe('also fetch http:// CRL distribution points found in certificates'),
  maxDistributionPoints: nonNegativeInt().default(100).describe('cap on discovered distribution points'),
  refreshIntervalSeconds: positiveInt().default(3).describe('URL re-fetch interval, ±20 % (also re-fetched by nextUpdate); conditional GET, unchanged bytes are not parsed'),
  filePollIntervalSeconds: positiveInt().default(2).describe('how often CRL files are checked for changes, ±20 %'),
  staleGraceSeconds: nonNegativeInt().default(3600).describe('after nextUpdate + grace a CRL answers unknown'),
  fetchTimeoutMs: positiveInt().default(10_000).describe('deadline for one CRL download'),
  maxBytes: positiveInt().default(64 * 1024 * 1024).describe('largest CRL accepted, in bytes'),
});

/** The `ocsp:` sub-slice. */
const ocspSchema = z.strictObject({
  // No default: absent means "use the certificate's AIA OCSP URL".
  overrideUrl: z.url({ protocol: /^https?$/ }).optional().describe('responder URL used instead of the certificate AIA'),
  hash: z.enum(['sha1', 'sha256']).default('sha1').describe('CertID hash algorithm'),
  timeoutMs: positiveInt().default(2000).describe('deadline for one OCSP exchange'),
  maxResponseBytes: positiveInt().default(64 * 1024).describe('largest OCSP response accepted, in bytes'),
  maxCacheEntries: positiveInt().default(100_000).describe('OCSP cache capacity (LRU)'),
  maxCacheTtlSeconds: positiveInt().default(3600).describe('longest a response is cached (also capped by its nextUpdate)'),
  maxGoodAgeSeconds: positiveInt().default(30).describe('a cached good answer is trusted this long, then the responder is asked again'),
  maxAgeWithoutNextUpdateSeconds: positiveInt().default(300).describe('without nextUpdate: refused past thisUpdate + this, cached no longer'),
  negativeCacheSeconds: nonNegativeInt().default(30).describe('how long a failed OCSP check is remembered'),
  clockSkewSeconds: nonNegativeInt().default(300).describe('tolerance on thisUpdate/nextUpdate'),
  nonce: bool().default(false).describe('send a nonce and require it in the response'),
});

/** The `feed:` sub-slice: the device CA's push of each new CRL (see revocation/crl-feed.ts). */
const feedSchema = z.strictObject({
  // No default: absent means no feed (polling and OCSP only).
  url: z.url({ protocol: /^https?$/ }).optional().describe("the CA's revocation feed, e.g. http://ca:8080/v1/crl/feed"),
  idleTimeoutSeconds: positiveInt().default(45).describe('a stream silent this long is taken for dead and reopened (the CA sends a heartbeat every 15 s)'),
  reconnectMinMs: positiveInt().default(500).describe('first reconnect delay; doubles per failure (jittered)'),
  reconnectMaxMs: positiveInt().default(30_000).describe('longest reconnect delay'),
});

/** The `revocation:` slice. Unknown keys are errors at every level. */
export const revocationSchema = z.strictObject({
  mode: z
    .enum(['none', 'crl', 'ocsp', 'crl-then-ocsp', 'ocsp-then-crl'])
    .default('crl-then-ocsp')
    .describe('methods asked, in order; the second only when the first answers unknown'),
  onUnknown: z.enum(['fail-closed', 'fail-open']).default('fail-closed').describe('proxy decision when the status is unknown'),
  intermediates: z
    .enum(['required', 'if-published', 'skip'])
    .default('if-published')
    .describe('revocation of the CA certificates below the root: like the leaf, when a source covers them, or not at all'),
  maxTrackedCertificates: nonNegativeInt().default(100_000).describe('certificates remembered for onRevoked events'),
  crl: crlSchema.prefault({}).describe('CRL sources and refresh'),
  ocsp: ocspSchema.prefault({}).describe('OCSP client, cache and verification'),
  feed: feedSchema.prefault({}).describe("the device CA's revocation feed: each new CRL pushed within milliseconds, on top of polling"),
}).refine((r) => r.feed.url === undefined || r.mode.includes('crl'), {
  message: 'needs a mode that reads CRLs (crl, crl-then-ocsp or ocsp-then-crl): the feed delivers CRLs',
  path: ['feed', 'url'],
});

/** The validated revocation options (all defaults applied). */
export type RevocationOptions = z.infer<typeof revocationSchema>;
