/**
 * The revocation checker: composes the CRL store and sources, the OCSP client and the revocation
 * events according to `mode`.
 */
import type { X509Certificate } from 'node:crypto';
import type { RevocationOptions } from '../config/index.js';
import { crlDistributionPointUrls, ocspResponderUrls, parseCertificate, type CertFields } from '../pki/index.js';
import { startCrlFeed } from './crl-feed.js';
import { createCrlSources } from './crl-sources.js';
import { createCrlStore, type CertScopeFacts } from './crl-store.js';
import { createIssuerRegistry, type IssuerInfo } from './issuer-registry.js';
import { createOcspClient } from './ocsp-client.js';
import { createRevocationEvents } from './revocation-events.js';
import type { RevocationChecker, RevocationDeps, RevocationResult } from './types.js';

type Method = 'crl' | 'ocsp';

const METHODS: Readonly<Record<RevocationOptions['mode'], readonly Method[]>> = {
  none: [],
  crl: ['crl'],
  ocsp: ['ocsp'],
  'crl-then-ocsp': ['crl', 'ocsp'],
  'ocsp-then-crl': ['ocsp', 'crl'],
};

/** What a check needs of a certificate, derived once per certificate object. */
interface LeafFacts {
  readonly leaf: CertFields;
  readonly scope: CertScopeFacts;
  readonly issuerCert: X509Certificate;
  readonly issued: boolean;
  readonly namesOcspResponder: boolean;
}

/** Issuers learned from verified chains (intermediates sent by clients), kept in an LRU. */
const MAX_LEARNED_ISSUERS = 1000;

function distributionPointsOf(leaf: CertFields): string[] {
  try {
    return crlDistributionPointUrls(leaf);
  } catch {
    return []; // a malformed CDP extension is treated as absent
  }
}

function namesOcspResponder(cert: CertFields): boolean {
  try {
    return ocspResponderUrls(cert).length > 0;
  } catch {
    return false;
  }
}

/**
 * Creates a checker and starts loading the configured CRLs in the background (see `ready()`).
 * Sync; throws `SidecarError` only if a trusted CA certificate cannot be parsed.
 *
 * With `mode: none` every check answers `good` with method `none` (checking is disabled, so
 * `onUnknown` must not reject everyone). With two methods, the second is asked only when the
 * first answers `unknown`; if both do, the answer is `unknown` with both reasons in `detail`.
 */
export function createRevocationChecker(options: RevocationOptions, deps: RevocationDeps): RevocationChecker {
  const now = deps.now ?? Date.now;
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const { logger } = deps;
  const methods = METHODS[options.mode];
  const issuers = createIssuerRegistry(deps.trustedCas, MAX_LEARNED_ISSUERS);
  const events = createRevocationEvents(options.maxTrackedCertificates, logger);
  const store = createCrlStore(options.crl.staleGraceSeconds * 1000);
  const sources = methods.includes('crl')
    ? createCrlSources({
        options: options.crl,
        store,
        issuers,
        logger,
        now,
        fetch: fetchFn,
        onChanged: (changed) => events.reevaluate(changed, (c) => store.lookup(c.issuerKeyHash, c.serialKey, c.facts, now()).status),
        observer: deps.observer,
      })
    : undefined;
  // The feed pushes the CA's CRLs into the same sources (a slot of their own); polling goes on.
  const feed =
    sources !== undefined && options.feed.url !== undefined
      ? startCrlFeed(
          {
            url: options.feed.url,
            idleTimeoutMs: options.feed.idleTimeoutSeconds * 1000,
            reconnectMinMs: options.feed.reconnectMinMs,
            reconnectMaxMs: options.feed.reconnectMaxMs,
            // base64 of the largest CRL accepted, plus the event's own lines.
            maxEventBytes: Math.ceil((options.crl.maxBytes * 4) / 3) + 1024,
          },
          { fetch: fetchFn, now, apply: (der) => sources.push(options.feed.url!, der), observe: (e) => deps.observer?.feed?.(e) },
        )
      : undefined;
  const ocsp = methods.includes('ocsp')
    ? createOcspClient({ options: options.ocsp, logger, now, fetch: fetchFn, onAnswer: events.reportStatus, observer: deps.observer })
    : undefined;
  let closed = false;
  // The verifier hands over the same X509Certificate objects for every connection of a
  // certificate it has seen (its cache is per fingerprint), so what is read from them is read once:
  // re-parsing the DER on every handshake was most of a warm check's cost.
  const leaves = new WeakMap<X509Certificate, LeafFacts>();
  const leafFacts = (leafCert: X509Certificate, issuerCert: X509Certificate): LeafFacts => {
    const known = leaves.get(leafCert);
    if (known !== undefined && known.issuerCert === issuerCert) return known;
    const leaf = parseCertificate(leafCert.raw);
    const facts: LeafFacts = {
      leaf,
      scope: { cdpUrls: distributionPointsOf(leaf), isCa: leafCert.ca },
      issuerCert,
      issued: leafCert.checkIssued(issuerCert),
      namesOcspResponder: namesOcspResponder(leaf),
    };
    leaves.set(leafCert, facts);
    return facts;
  };

  const checkCrl = async (leaf: CertFields, facts: CertScopeFacts, issuer: IssuerInfo): Promise<RevocationResult> => {
    sources?.discover(facts.cdpUrls, issuer.keyHash);
    let first = store.lookup(issuer.keyHash, leaf.serialKey, facts, now());
    // After a CA reload every source is read again, and a newly learned issuer re-runs the sources
    // whose CRL named it: the client waits for that (bounded by crl.fetchTimeoutMs) instead of
    // being answered unknown — which fail-open would forward even if that CRL lists it.
    const rerunning = first.status === 'unknown' ? sources?.pendingReruns() : undefined;
    if (rerunning !== undefined) {
      await rerunning;
      first = store.lookup(issuer.keyHash, leaf.serialKey, facts, now());
    }
    const loading = first.status === 'unknown' && facts.cdpUrls.some((u) => sources?.isLoading(u));
    if (!loading || !sources) return { status: first.status, method: 'crl', cached: true, detail: first.detail };
    // The first client of a new distribution point waits for its first download (bounded by
    // crl.fetchTimeoutMs) instead of being refused as unknown while it loads in the background.
    return sources.firstAttempts(facts.cdpUrls).then(() => {
      const { status, detail } = store.lookup(issuer.keyHash, leaf.serialKey, facts, now());
      return { status, method: 'crl', cached: false, detail: status === 'unknown' ? `${detail} (after the distribution point's first download)` : detail };
    });
  };

  const checkOcsp = async (leaf: CertFields, issuer: IssuerInfo): Promise<RevocationResult> => {
    if (ocsp === undefined) return { status: 'unknown', method: 'ocsp', cached: false, detail: 'OCSP disabled' };
    const r = await ocsp.check(leaf, issuer);
    return { status: r.status, method: 'ocsp', cached: r.cached, detail: r.detail };
  };

  /**
   * Whether any source could speak about this CA certificate: a loaded CRL of its issuer, a
   * distribution point or OCSP responder it names, or a configured CRL source that may hold its
   * issuer's CRL without it being loaded (unread, unreadable, or a CRL of that name it could not
   * verify). Used by `intermediates: if-published`.
   */
  const caHasSource = (facts: LeafFacts, issuer: IssuerInfo): boolean =>
    (methods.includes('crl') &&
      (store.hasIssuer(issuer.keyHash) ||
        (options.crl.fetchDistributionPoints && facts.scope.cdpUrls.some((u) => u.startsWith('http://'))) ||
        (sources?.mayHoldUnloadedCrlOf(facts.leaf.issuerName) ?? false))) ||
    (methods.includes('ocsp') && facts.namesOcspResponder);

  return {
    async check(leafCert, issuerCert, role = 'leaf') {
      if (closed) return { status: 'unknown', method: 'none', cached: false, detail: 'revocation checker closed' };
      if (methods.length === 0) return { status: 'good', method: 'none', cached: false, detail: 'revocation checking disabled' };
      if (role === 'ca' && options.intermediates === 'skip') return { status: 'good', method: 'none', cached: false, detail: 'CA certificates not checked (intermediates: skip)' };
      try {
        const derived = leafFacts(leafCert, issuerCert);
        const { leaf, scope: facts, issued } = derived;
        if (!issued) {
          return { status: 'unknown', method: 'none', cached: false, detail: 'the given issuer did not issue this certificate' };
        }
        const { info: issuer, isNew } = issuers.learn(issuerCert);
        if (isNew) void sources?.retryUnknownIssuers();
        if (role === 'ca' && options.intermediates === 'if-published') {
          // An unattributed configured CRL may only be waiting for an issuer learned this moment.
          const rerunning = sources?.mayHoldUnloadedCrlOf(leaf.issuerName) ? sources.pendingReruns() : undefined;
          if (rerunning !== undefined) await rerunning;
          if (!caHasSource(derived, issuer)) return { status: 'good', method: 'none', cached: true, detail: 'no CRL or OCSP source covers this CA certificate' };
        }
        // A CRL we hold that lists the certificate refuses it whatever the method order: with
        // ocsp-then-crl a cached (or, responder blocked, held) OCSP good must not outvote it.
        if (methods[0] !== 'crl' && methods.includes('crl')) {
          const listed = store.lookup(issuer.keyHash, leaf.serialKey, facts, now());
          if (listed.status === 'revoked') {
            events.note({ issuerKeyHash: issuer.keyHash, serialKey: leaf.serialKey, serialHex: leaf.serialHex, facts }, 'revoked');
            return { status: 'revoked', method: 'crl', cached: true, detail: listed.detail };
          }
        }
        const tried: RevocationResult[] = [];
        for (const method of methods) {
          const r = method === 'crl' ? await checkCrl(leaf, facts, issuer) : await checkOcsp(leaf, issuer);
          tried.push(r);
          if (r.status !== 'unknown') break;
        }
        const last = tried[tried.length - 1] as RevocationResult;
        const result: RevocationResult =
          last.status === 'unknown' && tried.length > 1
            ? { ...last, detail: tried.map((r) => `${r.method}: ${r.detail ?? ''}`).join('; ') }
            : last;
        events.note({ issuerKeyHash: issuer.keyHash, serialKey: leaf.serialKey, serialHex: leaf.serialHex, facts }, result.status);
        if (result.status !== 'good') logger.debug({ serial: leaf.serialHex, ...result }, 'revocation check');
        return result;
      } catch (err) {
        logger.error({ err }, 'revocation check failed unexpectedly');
        return { status: 'unknown', method: 'none', cached: false, detail: 'internal error' };
      }
    },
    onRevoked(listener) {
      events.subscribe(listener);
    },
    setTrustedCas(cas) {
      if (closed) return Promise.resolve();
      const removed = issuers.replaceTrusted(cas);
      if (removed.size > 0) store.dropIssuers(removed);
      return sources?.revalidateAll() ?? Promise.resolve();
    },
    ready() {
      return sources?.ready() ?? Promise.resolve();
    },
    failingSources: () => sources?.failingConfigured() ?? [],
    feedStatus: () => feed?.status(),
    async close() {
      if (closed) return;
      closed = true;
      feed?.close();
      sources?.close();
      ocsp?.close();
      events.clear();
    },
  };
}
