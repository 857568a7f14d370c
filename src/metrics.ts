/**
 * Every metric name and label in one place: they are a public surface (dashboards and alerts
 * query them), so add, never rename. `createMetrics` registers them on a registry of our own
 * (never prom-client's global one) and returns typed handles; modules receive the handles.
 *
 * Cardinality: no label ever carries a device id, serial, subject, path or remote address. Label
 * values come from closed sets (reasons, methods, status classes, error kinds) or from the
 * operator's config (CA names, route names).
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Upper bounds of the certificate remaining-validity histogram: 1 h … 1 year. */
const VALIDITY_BUCKETS = [3_600, 21_600, 86_400, 3 * 86_400, 7 * 86_400, 14 * 86_400, 30 * 86_400, 90 * 86_400, 365 * 86_400];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface Metrics {
  readonly registry: Registry;
  readonly handshakes: Counter<'result' | 'reason' | 'tls_version'>;
  readonly handshakeDuration: Histogram<'result'>;
  readonly connectionsClosed: Counter<'reason'>;
  readonly activeConnections: Gauge;
  readonly clientCertRemainingValidity: Histogram;
  readonly revocationChecks: Counter<'method' | 'status' | 'cache'>;
  readonly ocspRequestDuration: Histogram;
  readonly ocspErrors: Counter<'kind'>;
  readonly crlEntries: Gauge<'issuer'>;
  readonly crlLastRefresh: Gauge<'issuer'>;
  readonly crlNextUpdate: Gauge<'issuer'>;
  readonly crlRefreshFailures: Counter<'issuer'>;
  readonly crlPolls: Counter<'kind' | 'result'>;
  readonly feedConnected: Gauge;
  readonly feedEvents: Counter<'outcome'>;
  readonly feedDisconnects: Counter;
  readonly serverCertExpiry: Gauge;
  readonly caCertExpiry: Gauge<'ca'>;
  readonly requests: Counter<'route' | 'method' | 'status_class'>;
  readonly requestDuration: Histogram<'route' | 'method'>;
  readonly upstreamDuration: Histogram<'route'>;
  readonly upstreamErrors: Counter<'kind'>;
  readonly authorizationDenied: Counter<'route' | 'reason'>;
  readonly quarantineEntries: Gauge<'source'>;
  readonly quarantineLoads: Counter<'result'>;
  readonly reloads: Counter<'result'>;
  readonly reloadLastSuccess: Gauge;
  readonly logsSuppressed: Counter<'event'>;
  readonly proxyProtocolAccepted: Counter<'version' | 'source'>;
  readonly proxyProtocolRefused: Counter<'reason'>;
  readonly requestsLimited: Counter<'route' | 'limit'>;
  readonly connectionsRefused: Counter<'reason'>;
  readonly connectionsMax: Gauge;
  readonly limitsTrackedDevices: Gauge;
  readonly limitsStoreUp: Gauge;
  readonly limitsStoreFallbacks: Counter;
  readonly buildInfo: Gauge<'version' | 'node' | 'openssl'>;
}

/** Creates the metrics on `registry` (a fresh one by default). Sync; never throws after start. */
export function createMetrics(registry: Registry = new Registry(), options: { processMetrics?: boolean } = {}): Metrics {
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    handshakes: new Counter({
      name: 'mtls_handshakes_total',
      help: 'TLS handshakes by result (accepted/rejected), failure reason (none when accepted) and TLS version.',
      labelNames: ['result', 'reason', 'tls_version'],
      registers: r,
    }),
    connectionsClosed: new Counter({
      name: 'mtls_connections_closed_total',
      help: 'Verified client connections the sidecar closed after their handshake, by reason: expired (a certificate of the path expired), revoked (one was revoked since), revocation_unknown (its status became unknown under onUnknown: fail-closed) untrusted (a CA of the path was removed from the bundle by a reload) or quarantined (the device was put in quarantine).',
      labelNames: ['reason'],
      registers: r,
    }),
    handshakeDuration: new Histogram({
      name: 'mtls_handshake_duration_seconds',
      help: 'From TCP accept to the verdict (including any revocation check), by result.',
      labelNames: ['result'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    activeConnections: new Gauge({ name: 'mtls_active_connections', help: 'Open client connections on the data listener.', registers: r }),
    clientCertRemainingValidity: new Histogram({
      name: 'mtls_client_cert_remaining_validity_seconds',
      help: 'Remaining validity of presented client certificates at handshake (accepted ones), so an expiring fleet shows early.',
      buckets: VALIDITY_BUCKETS,
      registers: r,
    }),
    revocationChecks: new Counter({
      name: 'mtls_revocation_checks_total',
      help: 'Revocation checks by method (crl/ocsp/none), status (good/revoked/unknown) and cache (hit/miss).',
      labelNames: ['method', 'status', 'cache'],
      registers: r,
    }),
    ocspRequestDuration: new Histogram({ name: 'mtls_ocsp_request_duration_seconds', help: 'OCSP responder round trips.', buckets: LATENCY_BUCKETS, registers: r }),
    ocspErrors: new Counter({ name: 'mtls_ocsp_errors_total', help: 'OCSP responder failures by kind.', labelNames: ['kind'], registers: r }),
    // With workers, each gauge is aggregated for what it means (prom-client sums by default, which
    // turned timestamps into twice their value): the worst worker for ages and deadlines, the
    // largest CRL for sizes.
    crlEntries: new Gauge({ name: 'mtls_crl_entries', help: 'Revoked serials in the current CRL, per issuer (largest over workers).', labelNames: ['issuer'], aggregator: 'max', registers: r }),
    crlLastRefresh: new Gauge({ name: 'mtls_crl_last_refresh_timestamp_seconds', help: 'Unix time of the last successful CRL load, per issuer (the oldest over workers).', labelNames: ['issuer'], aggregator: 'min', registers: r }),
    crlNextUpdate: new Gauge({ name: 'mtls_crl_next_update_timestamp_seconds', help: 'nextUpdate of the current CRL, per issuer (Unix time; the earliest over workers).', labelNames: ['issuer'], aggregator: 'min', registers: r }),
    crlRefreshFailures: new Counter({ name: 'mtls_crl_refresh_failures_total', help: 'CRL loads that failed (the previous CRL was kept), per issuer.', labelNames: ['issuer'], registers: r }),
    crlPolls: new Counter({
      name: 'mtls_crl_polls_total',
      help: 'Polls of CRL files and URLs by kind (file/url) and result: parsed (new bytes loaded), not_modified (HTTP 304 or an unchanged file), unchanged (the same bytes again, not parsed), failed (not fetched or read).',
      labelNames: ['kind', 'result'],
      registers: r,
    }),
    feedConnected: new Gauge({ name: 'mtls_revocation_feed_connected', help: "1 while the device CA's revocation feed is connected (the lowest over workers: 0 if any worker lost it); absent without revocation.feed.url.", aggregator: 'min', registers: r }),
    feedEvents: new Counter({ name: 'mtls_revocation_feed_events_total', help: 'CRLs received on the revocation feed, by outcome: applied, unchanged (already held), waiting (its issuer is not known yet; applied once it is) or refused (did not verify; the previous CRL stays).', labelNames: ['outcome'], registers: r }),
    feedDisconnects: new Counter({ name: 'mtls_revocation_feed_disconnects_total', help: 'Revocation feed streams lost or refused (each followed by a reconnect with backoff); polling and OCSP keep running meanwhile.', registers: r }),
    serverCertExpiry: new Gauge({ name: 'mtls_server_cert_expiry_timestamp_seconds', help: 'notAfter of the serving certificate (Unix time; the earliest over workers).', aggregator: 'min', registers: r }),
    caCertExpiry: new Gauge({ name: 'mtls_ca_cert_expiry_timestamp_seconds', help: 'notAfter of each CA in the client CA bundle (Unix time; the earliest over workers).', labelNames: ['ca'], aggregator: 'min', registers: r }),
    requests: new Counter({
      name: 'mtls_requests_total',
      help: 'Requests answered, by route, method and status class (1xx..5xx), including the sidecar\'s own 4xx/5xx.',
      labelNames: ['route', 'method', 'status_class'],
      registers: r,
    }),
    requestDuration: new Histogram({ name: 'mtls_request_duration_seconds', help: 'Whole request time as the client sees it (after the handshake).', labelNames: ['route', 'method'], buckets: LATENCY_BUCKETS, registers: r }),
    upstreamDuration: new Histogram({ name: 'mtls_upstream_duration_seconds', help: 'Time to the upstream\'s response headers.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: r }),
    authorizationDenied: new Counter({
      name: 'mtls_authorization_denied_total',
      help: 'Requests and upgrades refused by authorization, by route (the rule\'s name; default when none matched) and reason (not_authorized, quarantined).',
      labelNames: ['route', 'reason'],
      registers: r,
    }),
    quarantineEntries: new Gauge({ name: 'mtls_quarantine_entries', help: 'Quarantine entries in force, by source (file, api; the largest over workers).', labelNames: ['source'], aggregator: 'max', registers: r }),
    quarantineLoads: new Counter({ name: 'mtls_quarantine_loads_total', help: 'Reads of quarantine.file that changed its content, by result (success, or failure: the previous entries stay).', labelNames: ['result'], registers: r }),
    upstreamErrors: new Counter({ name: 'mtls_upstream_errors_total', help: 'Upstream failures by kind (refused, reset, timeout, tls, dns, other).', labelNames: ['kind'], registers: r }),
    reloads: new Counter({ name: 'mtls_reloads_total', help: 'Certificate/config reloads by result (success/failure).', labelNames: ['result'], registers: r }),
    reloadLastSuccess: new Gauge({ name: 'mtls_reload_last_success_timestamp_seconds', help: 'Unix time of the last successful reload (or of start-up; the oldest over workers).', aggregator: 'min', registers: r }),
    logsSuppressed: new Counter({ name: 'mtls_logs_suppressed_total', help: 'Log lines dropped by the rate limiter, by event.', labelNames: ['event'], registers: r }),
    proxyProtocolAccepted: new Counter({
      name: 'mtls_proxy_protocol_accepted_total',
      help: "PROXY protocol headers believed (listen.proxyProtocol), by version (1, 2) and whose address stands: client (the header's) or socket (LOCAL health checks, UNKNOWN, AF_UNIX).",
      labelNames: ['version', 'source'],
      registers: r,
    }),
    proxyProtocolRefused: new Counter({
      name: 'mtls_proxy_protocol_refused_total',
      help: 'Connections closed before TLS by the PROXY protocol listener, by reason: untrusted_source (a header from outside trustedSources), missing_header (a trusted source sent none), invalid_header, timeout, truncated (a trusted peer left mid-header).',
      labelNames: ['reason'],
      registers: r,
    }),
    // Per-device limits: device ids stay out of every label (the admin endpoint lists the top ones).
    requestsLimited: new Counter({
      name: 'mtls_requests_limited_total',
      help: 'Requests (and upgrades) answered 429 by a per-device limit, by route and limit: rate (over its request rate) or device_connections (on a connection over the per-device or per-certificate connection limit). Also counted in mtls_requests_total.',
      labelNames: ['route', 'limit'],
      registers: r,
    }),
    connectionsRefused: new Counter({
      name: 'mtls_connections_refused_total',
      help: 'Client connections refused by a limit, by reason: max_connections (the global cap, closed before the TLS handshake) or device_connections (a verified connection over its device or certificate connection limit).',
      labelNames: ['reason'],
      registers: r,
    }),
    connectionsMax: new Gauge({ name: 'mtls_connections_max', help: 'The cap on open client connections (limits.maxConnections; summed over workers, each holding its share).', registers: r }),
    limitsTrackedDevices: new Gauge({ name: 'mtls_limits_tracked_devices', help: 'Devices the per-device limits track now (summed over workers; each is bounded by limits.perDevice.trackedDevices).', registers: r }),
    limitsStoreUp: new Gauge({ name: 'mtls_limits_store_up', help: '1 while the Redis holding the rate buckets answers; 0 while limits fall back to local buckets (the lowest over workers). Absent with store: local.', aggregator: 'min', registers: [] }), // registered by serve/device-limits.ts with store: redis only: a labelless gauge would otherwise read 0, "down"
    limitsStoreFallbacks: new Counter({ name: 'mtls_limits_store_fallback_total', help: 'Rate checks answered from a local bucket because Redis was unreachable, failed or timed out.', registers: r }),
    buildInfo: buildInfoGauge(r),
  };
}

/** The closed set of method label values: anything else is OTHER. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Method label value with bounded cardinality. Pure. */
export function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : 'OTHER';
}

/** `2xx`-style label. Pure. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100)]! : 'other';
}
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** The device CA's metrics (`mtls-sidecar ca serve`); same rules: closed label sets only. */
export interface CaMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'api' | 'route' | 'result'>;
  readonly requestDuration: Histogram<'api' | 'route'>;
  readonly certificatesIssued: Counter<'kind' | 'key_type'>;
  readonly codesCreated: Counter;
  readonly revocations: Counter<'reason'>;
  readonly ocspResponses: Counter<'status'>;
  readonly crlGenerations: Counter<'result'>;
  readonly crlEntries: Gauge;
  readonly crlNextUpdate: Gauge;
  readonly feedSubscribers: Gauge;
  readonly feedDropped: Counter<'reason'>;
}

/** Creates the CA's metrics on `registry` (a fresh one by default). Sync. */
export function createCaMetrics(registry: Registry = new Registry(), options: { processMetrics?: boolean } = {}): CaMetrics {
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'mtls_ca_requests_total',
      help: 'CA API requests by listener (enroll/admin/publish), route and result (ok, not_modified for a 304, or the stable error code).',
      labelNames: ['api', 'route', 'result'],
      registers: r,
    }),
    requestDuration: new Histogram({ name: 'mtls_ca_request_duration_seconds', help: 'CA API request time, by listener and route.', labelNames: ['api', 'route'], buckets: LATENCY_BUCKETS, registers: r }),
    certificatesIssued: new Counter({ name: 'mtls_ca_certificates_issued_total', help: 'Device certificates issued, by kind (enroll/renew) and key type.', labelNames: ['kind', 'key_type'], registers: r }),
    codesCreated: new Counter({ name: 'mtls_ca_codes_created_total', help: 'One-time enrollment codes created.', registers: r }),
    revocations: new Counter({ name: 'mtls_ca_revocations_total', help: 'Certificates revoked, by CRL reason.', labelNames: ['reason'], registers: r }),
    ocspResponses: new Counter({ name: 'mtls_ca_ocsp_responses_total', help: 'Certificate statuses the OCSP responder answered (good/revoked/unknown), and internal errors (internal).', labelNames: ['status'], registers: r }),
    crlGenerations: new Counter({ name: 'mtls_ca_crl_generations_total', help: 'CRL regenerations by result (success/failure; on failure the previous CRL is served).', labelNames: ['result'], registers: r }),
    crlEntries: new Gauge({ name: 'mtls_ca_crl_entries', help: 'Serials listed in the CRL being served.', registers: r }),
    crlNextUpdate: new Gauge({ name: 'mtls_ca_crl_next_update_timestamp_seconds', help: 'nextUpdate of the CRL being served (Unix time).', registers: r }),
    feedSubscribers: new Gauge({ name: 'mtls_ca_feed_subscribers', help: 'Revocation feed streams open now.', registers: r }),
    feedDropped: new Counter({ name: 'mtls_ca_feed_dropped_total', help: 'Revocation feed subscribers cut off for not reading (slow) or refused at maxSubscribers (capacity); they keep polling the CRL.', labelNames: ['reason'], registers: r }),
  };
}

/**
 * `mtls_sidecar_build_info{version,node,openssl} 1`: which build and runtime a series came from, for
 * dashboards and for `absent()` alerts. Reads the package version once; "unknown" if unreadable.
 */
function buildInfoGauge(registers: Registry[]): Gauge<'version' | 'node' | 'openssl'> {
  const gauge = new Gauge({ name: 'mtls_sidecar_build_info', help: 'Always 1; the labels name the build and the runtime.', labelNames: ['version', 'node', 'openssl'], aggregator: 'max', registers });
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // a build without its package.json still reports the runtime
  }
  gauge.set({ version, node: process.version, openssl: process.versions.openssl ?? 'unknown' }, 1);
  return gauge;
}
