/**
 * The one definition of the device CA's YAML (`mtls-sidecar ca serve --config`), with the same
 * conventions as the proxy's: strict objects, `version: 1`, `${ENV}`, paths relative to the file.
 * `config/ca.example.yaml` documents every field with these defaults (a test keeps them in step).
 *
 * Secure defaults: the admin API listens on loopback and refuses to start without a credential
 * (a token file or an admin client CA); codes live 10 minutes and die after 5 wrong guesses.
 */
import { z } from 'zod';
import { bool, int } from './fields.js';

const filePath = () => z.string().min(1, 'must be a file path');

const listen = (host: string, port: number) =>
  z.strictObject({ host: z.string().min(1).default(host), port: int(0, 65535).default(port) }).prefault({});

const serverTlsSchema = z.strictObject({
  cert: filePath(),
  key: filePath(),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
});

const baseUrl = () =>
  z.string().refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL without query or fragment');

/** Key types a device may enroll with (`rsa` means any RSA key of at least `rsaMinBits`). */
export const DEVICE_KEY_TYPES = ['p256', 'p384', 'ed25519', 'rsa'] as const;

const codesSchema = z.strictObject({
  ttlSeconds: int(30, 86_400).default(600),
  maxAttempts: int(1, 100).default(5),
  length: int(6, 32).default(8),
  pepperFile: filePath(),
});

const rateLimitSchema = z.strictObject({
  perMinute: int(1, 1_000_000).default(30),
  burst: int(1, 1_000_000).default(10),
  trackedAddresses: int(100, 10_000_000).default(100_000),
});

const enrollSchema = z.strictObject({
  listen: listen('0.0.0.0', 8444),
  tls: serverTlsSchema,
  maxBodyBytes: int(1_024, 1_048_576).default(16_384),
  requestTimeoutMs: int(100, 600_000).default(10_000),
  rateLimit: rateLimitSchema.prefault({}),
  codes: codesSchema,
});

const adminSchema = z
  .strictObject({
    listen: listen('127.0.0.1', 8445),
    tls: serverTlsSchema.optional(),
    tokenFile: filePath().optional(),
    clientCa: z.array(filePath()).min(1).optional(),
  })
  .refine((a) => a.tokenFile !== undefined || a.clientCa !== undefined, {
    message: 'needs tokenFile or clientCa: the admin API is never open',
  })
  .refine((a) => a.clientCa === undefined || a.tls !== undefined, { message: 'clientCa needs tls (client certificates need TLS)', path: ['clientCa'] });

const publishSchema = z.strictObject({
  listen: listen('0.0.0.0', 8080),
  baseUrl: baseUrl(),
  crlValiditySeconds: int(300, 30 * 86_400).default(86_400),
  ocsp: z.strictObject({
    signerCert: filePath(),
    signerKey: filePath(),
    validitySeconds: int(60, 7 * 86_400).default(3_600),
  }),
});

const issuanceSchema = z.strictObject({
  validityDays: int(1, 825).default(30),
  deviceIdPattern: z
    .string()
    .default('^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$')
    .refine((s) => {
      try {
        new RegExp(s, 'u');
        return true;
      } catch {
        return false;
      }
    }, 'must be a valid regular expression'),
  sanUriTemplate: z.string().includes('{deviceId}', { message: 'must contain {deviceId}' }).default('urn:device:{deviceId}'),
  subjectTemplate: z.string().includes('{deviceId}', { message: 'must contain {deviceId}' }).default('CN={deviceId}'),
  keyTypes: z.array(z.enum(DEVICE_KEY_TYPES)).min(1).default(['p256', 'p384', 'ed25519', 'rsa']),
  rsaMinBits: int(2048, 16_384).default(2048),
  revokeSupersededOnRenew: bool().default(true),
});

const pinsSchema = z.strictObject({
  signingKey: filePath(),
  domains: z.array(z.string().min(1)).min(1),
  includeSubdomains: bool().default(false),
  current: z.array(filePath()).min(1),
  next: z.array(filePath()).default([]),
  backup: z.array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be a base64 SHA-256 pin')).default([]),
  version: int(1, 2_147_483_647),
  validityDays: int(2, 365).default(30), // Android reads the expiration as a local date: < 2 days can't be expressed safely
});

/** The whole CA configuration file. */
export const caConfigSchema = z.strictObject({
  version: z.literal(1, { message: 'must be 1 (the only config version so far)' }),
  ca: z.strictObject({ cert: filePath(), key: filePath(), chain: z.array(filePath()).default([]) }),
  store: z.strictObject({ path: filePath() }),
  enroll: enrollSchema,
  admin: adminSchema,
  publish: publishSchema,
  issuance: issuanceSchema.prefault({}),
  pins: pinsSchema.optional(),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
});

export type CaConfig = z.infer<typeof caConfigSchema>;
export type CaIssuanceOptions = CaConfig['issuance'];
export type CaPinsOptions = NonNullable<CaConfig['pins']>;
export type DeviceKeyType = (typeof DEVICE_KEY_TYPES)[number];

/** The dotted paths of every field that names a file, resolved against the config file's folder. */
export const CA_FILE_PATH_FIELDS: readonly string[] = [
  'ca.cert',
  'ca.key',
  'ca.chain',
  'store.path',
  'enroll.tls.cert',
  'enroll.tls.key',
  'enroll.codes.pepperFile',
  'admin.tls.cert',
  'admin.tls.key',
  'admin.tokenFile',
  'admin.clientCa',
  'publish.ocsp.signerCert',
  'publish.ocsp.signerKey',
  'pins.signingKey',
  'pins.current',
  'pins.next',
];
