/**
 * The device simulator: enrolls and renews the way a phone app does, so app teams and tests can
 * try the CA end to end. The key pair is generated here, on the "device"; only a CSR leaves it.
 * Nothing in the device folder changes unless the CA issued a certificate and it passed
 * {@link checkIssued}.
 */
import { readFile } from 'node:fs/promises';
import { SidecarError } from '../errors.js';
import { createCsr, createPkcs12, escapeRdnValue, generateKey, keyAlgorithmOfSpki, parseCertificateBundle, type GeneratedKey, type KeyAlgorithm } from '../pki/index.js';
import { checkIssued, type CheckedIssue } from './check-issued.js';
import { prepareDeviceDir, readDeviceFiles, writeDeviceFiles, type DeviceFiles } from './device-files.js';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_MS, postEnrollment, type EnrollmentRequest } from './enroll-client.js';

/**
 * The password of `device.p12` when none is given. A documented, public demo value: the same
 * folder holds the key unencrypted in `device.key`, so the bundle's password protects nothing
 * there; it only has to be known to whoever imports the bundle. Pass your own for anything else.
 */
export const DEFAULT_P12_PASSWORD = 'device-simulator';

/** Options shared by enroll and renew. */
export interface DeviceCallOptions {
  /** The CA's enrollment listener, `https://host:port`. */
  readonly url: string;
  /** PEM file the CA's server certificate must chain to. */
  readonly caCertFile: string;
  /** The new key's type. Enroll: default `p256` (what phone keystores make). Renew: default the current key's type. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Protects `device.p12`; default {@link DEFAULT_P12_PASSWORD}. */
  readonly p12Password?: string;
  /** Whole-call deadline in ms; default 15000. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Largest CA answer read; default 256 KiB. */
  readonly maxResponseBytes?: number;
}

/** Options of {@link enrollDevice}. */
export interface EnrollDeviceOptions extends DeviceCallOptions {
  readonly deviceId: string;
  /** The one-time enrollment code the CA's admin API gave out for this device id. */
  readonly code: string;
  /** The device folder; created (0700) if missing. */
  readonly outDir: string;
}

/** Options of {@link renewDevice}. */
export interface RenewDeviceOptions extends DeviceCallOptions {
  /** A device folder written by {@link enrollDevice} (or an earlier renewal). */
  readonly dir: string;
}

/** A certificate the device now holds, and where its files are. */
export interface DeviceEnrollment extends DeviceFiles {
  readonly deviceId: string;
  /** Lower-case hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyAlgorithm: KeyAlgorithm;
}

/**
 * Enrolls a new device: generates a key pair locally, sends a CSR (subject `CN=<deviceId>`, which
 * the CA ignores) with the one-time code to `POST /v1/enroll`, checks the answer, and writes
 * `device.key`, `device.pem`, `chain.pem` and `device.p12` into `outDir`, replacing any earlier
 * enrollment there only once the new one succeeded. Async. Rejects with a `SidecarError`:
 * `ERR_USAGE` for bad options, `ERR_TLS_MATERIAL` for an unreadable `caCertFile`, `ERR_ENROLL`
 * for a failed call (fault = the CA's error code such as `invalid_code`, or `network`, `tls`,
 * `aborted`, `bad_response`) or an unwritable folder (`device_files`). On any rejection the
 * folder's existing files are untouched. Never logs the key, the code or the password.
 */
export async function enrollDevice(options: EnrollDeviceOptions): Promise<DeviceEnrollment> {
  if (typeof options.deviceId !== 'string' || options.deviceId.length === 0) throw usage('deviceId', 'a device id is required');
  if (typeof options.code !== 'string' || options.code.length === 0) throw usage('code', 'an enrollment code is required');
  const base = await prepareCall(options);
  await prepareDeviceDir(options.outDir);
  const key = await generateKey(options.keyAlgorithm ?? 'p256');
  const csr = await createCsr(key, `CN=${escapeRdnValue(options.deviceId)}`);
  const response = await postEnrollment({
    ...base,
    route: '/v1/enroll',
    body: { deviceId: options.deviceId, code: options.code, csr: csr.pem },
  });
  return save(options.outDir, key, checkIssued(response, key.privateKeyPem, options.deviceId), options.p12Password);
}

/**
 * Renews a device's certificate with key rotation: reads `device.key` and `device.pem` from
 * `dir`, generates a NEW key pair, sends its CSR to `POST /v1/renew` over mutual TLS with the
 * current key and certificate (leaf and chain) as the client certificate, and replaces the four
 * files once the answer passed the checks. The CA takes the device id from the current
 * certificate. Async; rejects like {@link enrollDevice} (plus `ERR_TLS_MATERIAL` when the current
 * files are missing or the key does not match), and leaves the current files untouched when it
 * does: they remain usable unless the CA itself revoked them.
 */
export async function renewDevice(options: RenewDeviceOptions): Promise<DeviceEnrollment> {
  const base = await prepareCall(options);
  const current = await readDeviceFiles(options.dir);
  await prepareDeviceDir(options.dir);
  const key = await generateKey(options.keyAlgorithm ?? currentAlgorithm(current.leaf.publicKey.export({ type: 'spki', format: 'der' })));
  // Node prints the subject one RFC 2253-escaped attribute a line; the CA ignores it anyway.
  const csr = await createCsr(key, current.leaf.subject.split('\n').find((rdn) => rdn.startsWith('CN=')) ?? 'CN=device');
  const response = await postEnrollment({
    ...base,
    route: '/v1/renew',
    body: { csr: csr.pem },
    client: { certPem: current.certPem, keyPem: current.keyPem },
  });
  return save(options.dir, key, checkIssued(response, key.privateKeyPem), options.p12Password);
}

type CallBase = Omit<EnrollmentRequest, 'route' | 'body' | 'client'>;

async function prepareCall(options: DeviceCallOptions): Promise<CallBase> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw usage('url', `"${options.url}" is not a URL`);
  }
  if (url.protocol !== 'https:') throw usage('url', `the CA URL must be https:, got ${url.protocol}`);
  if (url.username || url.password || url.search || url.hash) throw usage('url', 'the CA URL must not carry credentials, a query or a fragment');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw usage('timeoutMs', 'timeoutMs must be a positive whole number');
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes <= 0) throw usage('maxResponseBytes', 'maxResponseBytes must be a positive whole number');
  let caPem: string;
  try {
    caPem = await readFile(options.caCertFile, 'utf8');
    if (parseCertificateBundle(caPem).length === 0) throw new Error('it holds no PEM certificate');
  } catch (cause) {
    throw new SidecarError('ERR_TLS_MATERIAL', 'caCertFile', `cannot use ${options.caCertFile} as the CA bundle: ${(cause as Error).message}`, { cause });
  }
  return { url, caPem, timeoutMs, maxResponseBytes, ...(options.signal ? { signal: options.signal } : {}) };
}

async function save(dir: string, key: GeneratedKey, issued: CheckedIssue, p12Password = DEFAULT_P12_PASSWORD): Promise<DeviceEnrollment> {
  const certPem = issued.leafPem + issued.chainPem;
  let p12: Buffer;
  try {
    p12 = await createPkcs12({ keyPem: key.privateKeyPem, certPem: issued.leafPem, chainPem: [issued.chainPem], password: p12Password, friendlyName: issued.deviceId.replace(/[\uD800-\uDFFF\0]/g, '?') });
  } catch (cause) {
    throw new SidecarError('ERR_ENROLL', 'device_files', `the CA issued serial ${issued.serial}, but its PKCS#12 bundle could not be made: ${(cause as Error).message}`, { cause });
  }
  try {
    const files = await writeDeviceFiles(dir, { keyPem: key.privateKeyPem, certPem, chainPem: issued.chainPem, p12 });
    return { ...files, deviceId: issued.deviceId, serial: issued.serial, notBefore: issued.notBefore, notAfter: issued.notAfter, keyAlgorithm: key.algorithm };
  } catch (cause) {
    const fault = cause instanceof SidecarError ? cause.fault : 'device_files';
    throw new SidecarError('ERR_ENROLL', fault, `the CA issued serial ${issued.serial}, but it could not be saved: ${(cause as Error).message}`, { cause });
  }
}

function currentAlgorithm(spki: Buffer): KeyAlgorithm {
  try {
    return keyAlgorithmOfSpki(spki);
  } catch {
    return 'p256'; // a key type this simulator cannot make (e.g. Ed25519 from elsewhere)
  }
}

function usage(fault: string, message: string): SidecarError {
  return new SidecarError('ERR_USAGE', fault, message);
}
