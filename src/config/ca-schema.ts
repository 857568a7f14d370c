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
  z
    .strictObject({ host: z.string().min(1).default(host).describe('address to bind'), port: int(0, 65535).default(port).describe('TCP port') })
    .prefault({})
    .describe('bind address and port');

const serverTlsSchema = z.strictObject({
  cert: filePath().describe('server certificate (PEM, with its chain)'),
  key: filePath().describe('its private key'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('lowest TLS version accepted'),
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
  ttlSeconds: int(30, 86_400).default(600).describe('lifetime of a code; the admin API may ask for less, never more'),
  maxAttempts: int(1, 100).default(5).describe('wrong guesses before a code dies'),
  length: int(6, 32).default(8).describe('digits per code'),
  pepperFile: filePath().describe('secret (>= 32 characters) under which codes are hashed (HMAC-SHA-256)'),
});

const rateLimitSchema = z.strictObject({
  perMinute: int(1, 1_000_000).default(30).describe('sustained requests per minute per client address'),
  burst: int(1, 1_000_000).default(10).describe('requests allowed at once before the rate applies'),
  trackedAddresses: int(100, 10_000_000).default(100_000).describe('addresses remembered (least recently seen forgotten first)'),
});

const enrollSchema = z.strictObject({
  listen: listen('0.0.0.0', 8444),
  tls: serverTlsSchema.describe("the listener's TLS certificate"),
  maxBodyBytes: int(1_024, 1_048_576).default(16_384).describe('largest request body accepted'),
  requestTimeoutMs: int(100, 600_000).default(10_000).describe('time allowed for one request'),
  rateLimit: rateLimitSchema.prefault({}).describe('per client address, for every enrollment route'),
  codes: codesSchema.describe('one-time enrollment codes (created through the admin API, delivered out of band)'),
});

const adminSchema = z
  .strictObject({
    listen: listen('127.0.0.1', 8445),
    tls: serverTlsSchema.optional().describe('TLS for the admin listener; required with clientCa (without it: plain HTTP, keep it on loopback)'),
    tokenFile: filePath().optional().describe('file holding the bearer token (>= 32 characters); this or clientCa is required'),
    clientCa: z.array(filePath()).min(1).optional().describe('CA bundle(s) whose client certificates are admitted as admins; needs tls'),
  })
  .refine((a) => a.tokenFile !== undefined || a.clientCa !== undefined, {
    message: 'needs tokenFile or clientCa: the admin API is never open',
  })
  .refine((a) => a.clientCa === undefined || a.tls !== undefined, { message: 'clientCa needs tls (client certificates need TLS)', path: ['clientCa'] });

const publishSchema = z.strictObject({
  listen: listen('0.0.0.0', 8080),
  baseUrl: baseUrl().describe('public base URL of this listener, written into device certificates as <baseUrl>/crl and <baseUrl>/ocsp'),
  crlValiditySeconds: int(300, 30 * 86_400).default(86_400).describe('CRL lifetime; re-signed at half of it, and at once after a revocation'),
  ocsp: z
    .strictObject({
      signerCert: filePath().describe('delegated signer certificate (issued by the CA, with the OCSPSigning EKU)'),
      signerKey: filePath().describe('its private key'),
      validitySeconds: int(60, 7 * 86_400).default(3_600).describe('nextUpdate - thisUpdate of each response'),
    })
    .describe('the OCSP responder'),
  feed: z
    .strictObject({
      heartbeatSeconds: int(1, 300).default(15).describe('a comment line this often keeps idle streams alive and lets both ends see a dead one'),
      maxSubscribers: int(1, 1_000_000).default(10_000).describe('feed streams served at once; more are answered 503 (they keep polling the CRL)'),
      maxSubscribersPerAddress: int(1, 1_000_000).default(256).describe('feed streams one client address may hold, so one client cannot take every slot'),
      maxBufferedBytes: int(65_536, 1024 * 1024 * 1024).default(8 * 1024 * 1024).describe('bytes queued for one subscriber that does not read before it is cut off (it reconnects and loses nothing)'),
    })
    .prefault({})
    .describe('the revocation feed (GET /v1/crl/feed): each newly signed CRL pushed to subscribers as a Server-Sent Event'),
});

const issuanceSchema = z.strictObject({
  validityDays: int(1, 825).default(30).describe('lifetime of device certificates'),
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
    }, 'must be a valid regular expression')
    .describe('accepted device ids (a JavaScript regular expression)'),
  sanUriTemplate: z
    .string()
    .includes('{deviceId}', { message: 'must contain {deviceId}' })
    .default('urn:device:{deviceId}')
    .describe("the SAN URI carrying the device id (what the proxy's identity.deviceId uri rule reads)"),
  subjectTemplate: z
    .string()
    .includes('{deviceId}', { message: 'must contain {deviceId}' })
    .default('CN={deviceId}')
    .describe('the subject (RFC 4514; the device id is escaped); never taken from the CSR'),
  keyTypes: z.array(z.enum(DEVICE_KEY_TYPES)).min(1).default(['p256', 'p384', 'ed25519', 'rsa']).describe('device key types accepted'),
  rsaMinBits: int(2048, 16_384).default(2048).describe('smallest RSA key accepted'),
  revokeSupersededOnRenew: bool().default(true).describe('on renewal, revoke the certificate being replaced (reason superseded)'),
});

const pinsSchema = z.strictObject({
  signingKey: filePath().describe('P-256 key that signs the pin set (ES256); the app ships its public key'),
  domains: z.array(z.string().min(1)).min(1).describe('host names the pins apply to'),
  includeSubdomains: bool().default(false).describe('whether the pins cover subdomains too'),
  current: z.array(filePath()).min(1).describe("certificate or key files of the servers' current keys"),
  next: z.array(filePath()).default([]).describe('files of the keys you will rotate to next'),
  backup: z
    .array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be a base64 SHA-256 pin'))
    .default([])
    .describe('base64 SHA-256 pins of offline spare keys (Android requires at least one)'),
  version: int(1, 2_147_483_647).describe('increase whenever the set changes'),
  validityDays: int(2, 365).default(30).describe('lifetime of a signed set (and the Android pin-set expiration)'), // Android reads the expiration as a local date: < 2 days can't be expressed safely
});

/** The whole CA configuration file. */
export const caConfigSchema = z.strictObject({
  version: z.literal(1, { message: 'must be 1 (the only config version so far)' }).describe('config format version; 1 is the only one'),
  ca: z
    .strictObject({
      cert: filePath().describe('its certificate (PEM)'),
      key: filePath().describe('its private key (PEM, PKCS#8 or SEC1)'),
      chain: z.array(filePath()).default([]).describe('certificates sent after it with every issued certificate (e.g. the root)'),
    })
    .describe('the issuing CA: signs device certificates and the CRL'),
  store: z.strictObject({ path: filePath().describe('SQLite file') }).describe('where codes, devices, certificates and revocations are kept'),
  enroll: enrollSchema.describe('the enrollment listener: devices enroll and renew here'),
  admin: adminSchema.describe("the admin API, for the operator's backend only; never open: tokenFile or clientCa is required"),
  publish: publishSchema.describe('the publishing listener (plain HTTP): CRL and OCSP'),
  issuance: issuanceSchema.prefault({}).describe('what device certificates look like'),
  pins: pinsSchema.optional().describe('the dynamic pin set (GET /v1/pins); omit to serve none'),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .prefault({})
    .describe('logging'),
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
