/**
 * What the simulator checks in a CA's 201 answer before it saves anything. A device that stored
 * a certificate for someone else's key, or one its server would refuse, would fail later and far
 * from the cause; the simulator doubles as a conformance check of the CA, so it is strict.
 */
import { createPublicKey, type X509Certificate } from 'node:crypto';
import { SidecarError } from '../errors.js';
import { caSerialHexOfCertificate, parseCertificateBundle, pemBlocks, serialKeyFromHex } from '../pki/index.js';
import type { IssuedCertificate } from '../ca-protocol.js';

/** An answer that passed every check, normalised to clean PEM. */
export interface CheckedIssue {
  readonly deviceId: string;
  /** Lower-case hex, from the certificate. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The leaf alone. */
  readonly leafPem: string;
  /** The chain as sent: issuing CA, then its parents. */
  readonly chainPem: string;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Checks that `certificate` is exactly one certificate, for the key in `keyPem` (a private or
 * public PEM; only the public half is compared), not a CA, usable for TLS client authentication,
 * unexpired, signed by the first certificate of a non-empty `chain`, and that the JSON's serial,
 * validity and (if `expectDeviceId` is given) device id agree with it. Sync; throws `ERR_ENROLL`
 * fault `bad_response` naming the first check that failed.
 */
export function checkIssued(response: IssuedCertificate, keyPem: string, expectDeviceId?: string): CheckedIssue {
  const leafBlocks = pemBlocks(response.certificate, 'CERTIFICATE');
  const chainBlocks = pemBlocks(response.chain, 'CERTIFICATE');
  if (leafBlocks.length !== 1) fail(`"certificate" must hold exactly one PEM certificate, it holds ${leafBlocks.length}`);
  if (chainBlocks.length === 0) fail('"chain" holds no PEM certificate');
  let leaf: X509Certificate;
  let chain: X509Certificate[];
  try {
    [leaf] = parseCertificateBundle(response.certificate) as [X509Certificate];
    chain = parseCertificateBundle(response.chain);
  } catch (cause) {
    return fail(`a certificate does not parse: ${(cause as Error).message}`, cause);
  }
  const issuer = chain[0]!;

  const ours = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(ours)) fail('the certificate is not for the key this device generated');
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) fail(`the certificate is not signed by the first certificate of "chain" (${issuer.subject.replace(/\n/g, ', ')})`);
  if (leaf.ca) fail('the certificate is a CA certificate, not a device certificate');
  const eku = leaf.keyUsage; // Node names the extended key usage OIDs `keyUsage`
  if (Array.isArray(eku) && !eku.includes(CLIENT_AUTH)) fail('the certificate does not allow TLS client authentication (no clientAuth extended key usage)');

  const serial = caSerialHexOfCertificate(leaf);
  if (!sameSerial(response.serial, serial)) fail(`"serial" ${response.serial} is not the certificate's serial ${serial}`);
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (!sameSecond(response.notBefore, notBefore)) fail(`"notBefore" ${response.notBefore} is not the certificate's ${notBefore.toISOString()}`);
  if (!sameSecond(response.notAfter, notAfter)) fail(`"notAfter" ${response.notAfter} is not the certificate's ${notAfter.toISOString()}`);
  if (notAfter.getTime() <= Date.now()) fail(`the certificate expired at ${notAfter.toISOString()}`);
  if (expectDeviceId !== undefined && response.deviceId !== expectDeviceId) fail(`"deviceId" is ${JSON.stringify(response.deviceId)}, not the ${JSON.stringify(expectDeviceId)} enrolled`);

  return { deviceId: response.deviceId, serial, notBefore, notAfter, leafPem: leafBlocks[0]!, chainPem: chainBlocks.join('') };
}

/** Whether the CA's text of a serial (any case, colons tolerated) names the same number. */
function sameSerial(text: string, hex: string): boolean {
  try {
    return serialKeyFromHex(text.replace(/:/g, '')) === serialKeyFromHex(hex);
  } catch {
    return false;
  }
}

// Certificate times have whole seconds (UTCTime); the CA's JSON may carry its milliseconds.
function sameSecond(iso: string, date: Date): boolean {
  const t = Date.parse(iso);
  return Number.isFinite(t) && Math.floor(t / 1000) === Math.floor(date.getTime() / 1000);
}

function fail(message: string, cause?: unknown): never {
  throw new SidecarError('ERR_ENROLL', 'bad_response', `the CA's certificate was refused: ${message}`, cause === undefined ? undefined : { cause });
}
