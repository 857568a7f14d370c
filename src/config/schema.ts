/**
 * The one definition of the sidecar's YAML. Types derive from it; `config/sidecar.example.yaml`
 * documents every field with these defaults (a test keeps the two in step).
 *
 * Every object is strict: an unknown key is an error, because a typo in a security setting
 * (`requireClientAuthEKU`) must not silently fall back to a default.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { bool, int } from './fields.js';
import { authorizationSchema, quarantineSchema } from './authorization-schema.js';
import { revocationSchema } from './revocation-schema.js';

const filePath = () => z.string().min(1, 'must be a file path');

/** An HTTP header name (RFC 9110 token). */
const headerName = () => z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be a valid HTTP header name');

const httpUrl = () =>
  z.string().refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL');

/** Modern AEAD-only suites; TLS 1.3 suites are always the three standard ones. */
export const DEFAULT_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** An IPv4 or IPv6 network in CIDR form, or a single address. */
const cidr = () =>
  z.string().refine((s) => {
    const [address = '', prefix, extra] = s.split('/');
    const version = isIP(address);
    if (version === 0 || extra !== undefined) return false;
    return prefix === undefined || (/^(0|[1-9][0-9]{0,2})$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
  }, 'must be an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)');

const proxyProtocolSchema = z
  .strictObject({
    enabled: bool().default(false).describe('read a PROXY protocol v1/v2 header (AWS NLB, HAProxy send-proxy) before TLS'),
    trustedSources: z
      .array(cidr())
      .default([])
      .describe('load balancer addresses (CIDRs): connections from them must send a header; from anywhere else a header is refused'),
    headerTimeoutMs: int(100, 60_000).default(5_000).describe('the header (or, from other sources, the first bytes) must arrive within this long'),
  })
  .refine((p) => !p.enabled || p.trustedSources.length > 0, {
    message: 'enabled needs trustedSources: the load balancers whose headers are believed',
    path: ['trustedSources'],
  });

const listenSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0').describe('address to bind; "::" for dual stack'),
  port: int(0, 65535).default(8443).describe('TCP port clients connect to'),
  proxyProtocol: proxyProtocolSchema.prefault({}).describe('client addresses from a load balancer in front (off by default)'),
});

const tlsSchema = z.strictObject({
  cert: filePath().describe('server certificate, PEM, optionally followed by its intermediate chain'),
  key: filePath().describe('its private key, unencrypted PEM (PKCS#8, SEC1 or PKCS#1); must match the certificate'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('lowest TLS version accepted'),
  ciphers: z.string().min(1).default(DEFAULT_CIPHERS).describe('OpenSSL cipher list (TLS 1.2 suites and TLS 1.3 suite names)'),
  handshakeTimeoutMs: int(100, 120_000).default(10_000).describe('a client that has not finished its handshake by then is dropped'),
  sessionTimeoutSeconds: int(0, 86_400).default(300).describe('lifetime of TLS session tickets (resumption); 0 disables resumption'),
});

const clientAuthSchema = z.strictObject({
  caBundle: z.array(filePath()).min(1, 'needs at least one CA file').describe('PEM files of the CAs whose client certificates are accepted'),
  maxChainDepth: int(1, 10).default(3).describe('most CA certificates above the client certificate, the root included'),
  requireClientAuthEku: bool()
    .default(true)
    .describe('the client certificate must carry the clientAuth extended key usage (false: one with no EKU at all passes too)'),
  failureMode: z
    .enum(['reject', 'http'])
    .default('reject')
    .describe('what a refused client gets: the connection closed after the handshake, or 401/403 to every request'),
});

const deviceIdSourceSchema = z.discriminatedUnion('source', [
  z.strictObject({
    source: z.literal('uri'),
    prefix: z.string().min(1).default('urn:device:').describe('a SAN URI starting with this matches'),
    stripPrefix: bool().default(true).describe('the device id is what follows the prefix'),
  }),
  z.strictObject({ source: z.literal('spiffe') }),
  z.strictObject({ source: z.literal('dns') }),
  z.strictObject({ source: z.literal('cn') }),
  z.strictObject({ source: z.literal('serial') }),
]);

const headerNamesSchema = z.strictObject({
  verified: headerName().default('X-Client-Verified').describe('always "SUCCESS" on a forwarded request'),
  deviceId: headerName().default('X-Device-Id').describe('the device id'),
  subject: headerName().default('X-Client-Cert-Subject').describe('subject DN, RFC 4514'),
  issuer: headerName().default('X-Client-Cert-Issuer').describe('issuer DN, RFC 4514'),
  serial: headerName().default('X-Client-Cert-Serial').describe('serial number, upper-case hex'),
  fingerprint: headerName().default('X-Client-Cert-Fingerprint-SHA256').describe('SHA-256 of the certificate DER, lower-case hex'),
  notAfter: headerName().default('X-Client-Cert-Not-After').describe('expiry, ISO 8601 UTC'),
  sanUri: headerName().default('X-Client-Cert-SAN-URI').describe('SAN URIs, comma-separated'),
  sanDns: headerName().default('X-Client-Cert-SAN-DNS').describe('SAN DNS names, comma-separated'),
  certPem: headerName().default('X-Client-Cert').describe('URL-encoded PEM of the certificate (with includeCertPem)'),
});

const identitySchema = z.strictObject({
  deviceId: z
    .array(deviceIdSourceSchema)
    .min(1)
    .default([
      { source: 'uri', prefix: 'urn:device:', stripPrefix: true },
      { source: 'spiffe' },
      { source: 'dns' },
      { source: 'cn' },
      { source: 'serial' },
    ])
    .describe('rules picking the device id from the certificate (uri, spiffe, dns, cn, serial); the first that matches wins'),
  headers: headerNamesSchema.prefault({}).describe('names of the headers set on every forwarded request'),
  includeCertPem: bool().default(false).describe('also send the client certificate in headers.certPem'),
  xfcc: z
    .strictObject({
      enabled: bool().default(false),
      includeCert: bool().default(false).describe('add Cert="<url-encoded PEM>"'),
      by: z.string().min(1).optional().describe("By=<URI>: the sidecar's own identity (e.g. its SPIFFE id)"),
    })
    .prefault({})
    .describe('Envoy-compatible X-Forwarded-Client-Cert'),
  rfc9440: z
    .strictObject({
      enabled: bool().default(false),
      includeChain: bool().default(true).describe('also send Client-Cert-Chain (the intermediates)'),
    })
    .prefault({})
    .describe('RFC 9440 Client-Cert / Client-Cert-Chain fields'),
  stripHeaders: z.array(headerName()).default([]).describe('more inbound header names to remove from every request'),
});

const upstreamSchema = z.strictObject({
  url: httpUrl().describe('http:// or https:// base URL of the unchanged API'),
  ca: filePath().optional().describe("PEM CA bundle verifying an https upstream (default: Node's built-in roots)"),
  serverName: z.string().min(1).optional().describe("TLS server name verified on an https upstream (default: the URL's host)"),
  connectTimeoutMs: int(1, 600_000).default(5_000).describe('connecting may take this long before the request fails with 504'),
  responseTimeoutMs: int(1, 3_600_000).default(60_000).describe('the upstream may stay silent this long before the request fails with 504'),
  maxSockets: int(1, 65_536).default(256).describe('most pooled keep-alive connections to the upstream'),
  keepAliveMs: int(0, 600_000).default(30_000).describe('TCP keep-alive initial delay of pooled connections'),
  preserveHost: bool().default(true).describe("keep the client's Host header (false: send the upstream URL's host)"),
  forwardedHeaders: z
    .enum(['replace', 'append'])
    .default('replace')
    .describe("X-Forwarded-*: replace the client's (spoofable) values, or append to a trusted proxy's"),
});

const routeRateSchema = z.strictObject({
  requestsPerSecond: int(1, 1_000_000).describe('sustained requests per second per device on this route'),
  burst: int(1, 1_000_000).optional().describe('requests a device may send at once (default: requestsPerSecond)'),
});

const perDeviceLimitsSchema = z.strictObject({
  requestsPerSecond: int(0, 1_000_000).default(0).describe('sustained requests per second per device (token bucket); 0: no rate limit'),
  burst: int(1, 1_000_000).optional().describe('requests a device may send at once (default: requestsPerSecond)'),
  key: z.enum(['deviceId', 'fingerprint']).default('deviceId').describe('what a rate bucket belongs to: the device id, or the certificate (its SHA-256 fingerprint)'),
  maxConnections: int(0, 1_000_000).default(0).describe('open connections per device id; 0: unlimited'),
  maxConnectionsPerCertificate: int(0, 1_000_000).default(0).describe('open connections per client certificate (fingerprint); 0: unlimited'),
  trackedDevices: int(100, 10_000_000).default(100_000).describe('devices tracked per process (least recently seen forgotten first), bounding memory'),
});

const redisLimitsSchema = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .describe('redis://[:password@]host:port[/db] or rediss:// (TLS)'),
  commandTimeoutMs: int(5, 5_000).default(50).describe('a bucket check slower than this falls back to the local bucket'),
  keyPrefix: z.string().min(1).max(64).default('mtls:rl:').describe('prefix of every key (several deployments may share one Redis)'),
});

const limitsSchema = z.strictObject({
  headersTimeoutMs: int(1_000, 600_000).default(20_000).describe('the request headers must arrive within this long'),
  requestTimeoutMs: int(0, 86_400_000).default(300_000).describe('the whole request must arrive within this long; 0 disables it'),
  keepAliveTimeoutMs: int(0, 600_000).default(60_000).describe('an idle keep-alive connection is closed after this long'),
  maxHeaderBytes: int(1_024, 1_048_576).default(16_384).describe('largest request header block; larger gets 431'),
  maxConnections: z
    .union([z.literal('auto'), int(1, 10_000_000)])
    .default('auto')
    .describe('open client connections per sidecar (shared among workers); past it a new one is closed before its handshake. auto: sized from memoryBudgetMiB, else the cgroup memory limit, else the machine memory'),
  memoryBudgetMiB: int(32, 1_048_576).optional().describe('the memory maxConnections: auto sizes from (default: the container memory limit read from the cgroup)'),
  perDevice: perDeviceLimitsSchema.prefault({}).describe('per-device request rate and concurrent connections; off by default'),
  routes: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a route name (letters, digits, _ . -)'), routeRateSchema)
    .default({})
    .describe('per-route request rates replacing perDevice.requestsPerSecond/burst for requests of that route (route names from the policy rules)'),
  store: z.enum(['local', 'redis']).default('local').describe('where request-rate buckets live: local (each process its own) or redis (one limit across replicas)'),
  redis: redisLimitsSchema.optional().describe('the Redis holding the buckets (required with store: redis)'),
});

const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  accessLog: bool().default(true).describe('one line per request'),
  rateLimit: z
    .strictObject({
      perSecond: int(1, 100_000).default(10).describe('sustained lines per second per event'),
      burst: int(1, 1_000_000).default(50).describe('burst before the rate applies'),
      summaryIntervalSeconds: int(1, 3_600).default(10).describe('how often the summary of suppressed lines is written'),
    })
    .prefault({})
    .describe('limit on lines a client can cause in bulk (refused handshakes, upstream errors)'),
});

const adminSchema = z.strictObject({
  enabled: bool().default(true),
  host: z.string().min(1).default('0.0.0.0').describe('address to bind (all interfaces by default, so Prometheus can scrape the pod)'),
  port: int(0, 65535).default(9090).describe('TCP port'),
  tokenFile: filePath()
    .optional()
    .describe('file holding the bearer token (>= 32 characters) that the quarantine endpoints require; without it they are off'),
});

const workersSchema = z.union([z.literal('auto'), int(1, 256)]);

const reloadSchema = z.strictObject({
  intervalSeconds: int(0, 3_600).default(10).describe('seconds between content checks; 0 disables polling (SIGHUP still reloads)'),
});

const shutdownSchema = z.strictObject({
  timeoutSeconds: int(0, 3_600).default(25).describe('requests still running this long after SIGTERM/SIGINT are cut'),
});

/** The whole configuration file. */
export const configSchema = z.strictObject({
  version: z.literal(1, { message: 'must be 1 (the only config version so far)' }).describe('config format version; 1 is the only one'),
  workers: workersSchema.default(1).describe('worker processes sharing the data port: a number, or auto (one per CPU the process may use)'),
  listen: listenSchema.prefault({}).describe('the mTLS data listener'),
  tls: tlsSchema.describe('the server side of TLS'),
  clientAuth: clientAuthSchema.describe('client certificates (always required)'),
  identity: identitySchema.prefault({}).describe('what the upstream learns about the client'),
  upstream: upstreamSchema.describe('where verified requests go'),
  limits: limitsSchema
    .prefault({})
    .refine((l) => l.store !== 'redis' || l.redis !== undefined, { message: 'store: redis needs redis.url', path: ['redis'] })
    .describe('bounds on what a client may hold or send'),
  admin: adminSchema.prefault({}).describe('the admin listener: /metrics, /healthz, /readyz (plain HTTP, keep it off the public network)'),
  log: logSchema.prefault({}).describe('logging (JSON lines on stdout)'),
  authorization: authorizationSchema
    .optional()
    .describe('who may call which route; absent: every client the CA bundle and revocation accept may call every path (no route rules)'),
  quarantine: quarantineSchema.prefault({}).describe('devices refused everywhere, their open connections closed, without revoking their certificates'),
  revocation: revocationSchema.prefault({}).describe('revocation of client certificates (CRL, OCSP); on by default and failing closed'),
  reload: reloadSchema.prefault({}).describe('hot reload of tls.cert, tls.key and clientAuth.caBundle'),
  shutdown: shutdownSchema.prefault({}).describe('graceful shutdown on SIGTERM/SIGINT'),
}).superRefine((c, ctx) => {
  // A misspelt route name would silently leave that route at the per-device default rate.
  const named = new Set(['default', ...(c.authorization?.routes ?? []).map((r) => r.name)]);
  for (const name of Object.keys(c.limits.routes)) {
    if (!named.has(name)) ctx.addIssue({ code: 'custom', path: ['limits', 'routes', name], message: `no route "${name}" in authorization.routes (nor "default")` });
  }
});

export type SidecarConfig = z.infer<typeof configSchema>;
export type ListenOptions = SidecarConfig['listen'];
export type TlsOptions = SidecarConfig['tls'];
export type ClientAuthOptions = SidecarConfig['clientAuth'];
export type IdentityOptions = SidecarConfig['identity'];
export type DeviceIdSource = IdentityOptions['deviceId'][number];
export type HeaderNames = IdentityOptions['headers'];
export type UpstreamOptions = SidecarConfig['upstream'];
export type LimitsOptions = SidecarConfig['limits'];
export type AdminOptions = SidecarConfig['admin'];
export type LogOptions = SidecarConfig['log'];
export type RevocationOptions = SidecarConfig['revocation'];
export type { AuthorizationOptions, QuarantineOptions } from './authorization-schema.js';

/** The dotted paths of every field that names a file, resolved against the config file's folder. */
export const FILE_PATH_FIELDS: readonly string[] = ['tls.cert', 'tls.key', 'clientAuth.caBundle', 'upstream.ca', 'revocation.crl.files', 'quarantine.file', 'admin.tokenFile'];
