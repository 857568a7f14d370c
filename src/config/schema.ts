/**
 * The one definition of the sidecar's YAML. Types derive from it; `config/sidecar.example.yaml`
 * documents every field with these defaults (a test keeps the two in step).
 *
 * Every object is strict: an unknown key is an error, because a typo in a security setting
 * (`requireClientAuthEKU`) must not silently fall back to a default.
 */
import { z } from 'zod';
import { bool, int } from './fields.js';
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

const listenSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: int(0, 65535).default(8443),
});

const tlsSchema = z.strictObject({
  cert: filePath(),
  key: filePath(),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  ciphers: z.string().min(1).default(DEFAULT_CIPHERS),
  handshakeTimeoutMs: int(100, 120_000).default(10_000),
  sessionTimeoutSeconds: int(0, 86_400).default(300),
});

const clientAuthSchema = z.strictObject({
  caBundle: z.array(filePath()).min(1, 'needs at least one CA file'),
  maxChainDepth: int(1, 10).default(3),
  requireClientAuthEku: bool().default(true),
  failureMode: z.enum(['reject', 'http']).default('reject'),
});

const deviceIdSourceSchema = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('uri'), prefix: z.string().min(1).default('urn:device:'), stripPrefix: bool().default(true) }),
  z.strictObject({ source: z.literal('spiffe') }),
  z.strictObject({ source: z.literal('dns') }),
  z.strictObject({ source: z.literal('cn') }),
  z.strictObject({ source: z.literal('serial') }),
]);

const headerNamesSchema = z.strictObject({
  verified: headerName().default('X-Client-Verified'),
  deviceId: headerName().default('X-Device-Id'),
  subject: headerName().default('X-Client-Cert-Subject'),
  issuer: headerName().default('X-Client-Cert-Issuer'),
  serial: headerName().default('X-Client-Cert-Serial'),
  fingerprint: headerName().default('X-Client-Cert-Fingerprint-SHA256'),
  notAfter: headerName().default('X-Client-Cert-Not-After'),
  sanUri: headerName().default('X-Client-Cert-SAN-URI'),
  sanDns: headerName().default('X-Client-Cert-SAN-DNS'),
  certPem: headerName().default('X-Client-Cert'),
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
    ]),
  headers: headerNamesSchema.prefault({}),
  includeCertPem: bool().default(false),
  xfcc: z
    .strictObject({
      enabled: bool().default(false),
      includeCert: bool().default(false),
      by: z.string().min(1).optional(),
    })
    .prefault({}),
  rfc9440: z.strictObject({ enabled: bool().default(false), includeChain: bool().default(true) }).prefault({}),
  stripHeaders: z.array(headerName()).default([]),
});

const upstreamSchema = z.strictObject({
  url: httpUrl(),
  ca: filePath().optional(),
  serverName: z.string().min(1).optional(),
  connectTimeoutMs: int(1, 600_000).default(5_000),
  responseTimeoutMs: int(1, 3_600_000).default(60_000),
  maxSockets: int(1, 65_536).default(256),
  keepAliveMs: int(0, 600_000).default(30_000),
  preserveHost: bool().default(true),
  forwardedHeaders: z.enum(['replace', 'append']).default('replace'),
});

const limitsSchema = z.strictObject({
  headersTimeoutMs: int(1_000, 600_000).default(20_000),
  requestTimeoutMs: int(0, 86_400_000).default(300_000),
  keepAliveTimeoutMs: int(0, 600_000).default(60_000),
  maxHeaderBytes: int(1_024, 1_048_576).default(16_384),
});

const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  accessLog: bool().default(true),
  rateLimit: z
    .strictObject({
      perSecond: int(1, 100_000).default(10),
      burst: int(1, 1_000_000).default(50),
      summaryIntervalSeconds: int(1, 3_600).default(10),
    })
    .prefault({}),
});

const adminSchema = z.strictObject({
  enabled: bool().default(true),
  host: z.string().min(1).default('0.0.0.0'),
  port: int(0, 65535).default(9090),
});

const workersSchema = z.union([z.literal('auto'), int(1, 256)]);

const reloadSchema = z.strictObject({
  intervalSeconds: int(0, 3_600).default(10),
});

const shutdownSchema = z.strictObject({
  timeoutSeconds: int(0, 3_600).default(25),
});

/** The whole configuration file. */
export const configSchema = z.strictObject({
  version: z.literal(1, { message: 'must be 1 (the only config version so far)' }),
  workers: workersSchema.default(1),
  listen: listenSchema.prefault({}),
  tls: tlsSchema,
  clientAuth: clientAuthSchema,
  identity: identitySchema.prefault({}),
  upstream: upstreamSchema,
  limits: limitsSchema.prefault({}),
  admin: adminSchema.prefault({}),
  log: logSchema.prefault({}),
  revocation: revocationSchema.prefault({}),
  reload: reloadSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
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

/** The dotted paths of every field that names a file, resolved against the config file's folder. */
export const FILE_PATH_FIELDS: readonly string[] = ['tls.cert', 'tls.key', 'clientAuth.caBundle', 'upstream.ca', 'revocation.crl.files'];
