/**
 * Checks a device's PKCS#10 request before anything is issued: it parses, its signature verifies
 * with the key it carries (proof of possession: the sender holds the private key), and that key
 * meets the policy. Only the public key is taken from it: the subject, SANs and extensions a CSR
 * asks for are ignored, because the device id comes from the enrollment code's binding.
 */
import { createPublicKey, webcrypto } from 'node:crypto';
import type { DeviceKeyType } from '../config/index.js';
import { decodePemOrBase64, readCertificateRequest } from '../pki/index.js';
import { refusal, type Outcome, type Refusal } from './refusals.js';

/** What issuing needs from an accepted CSR. */
export interface CheckedCsr {
  readonly keyType: DeviceKeyType;
  /** Bits for RSA, curve size for EC, 255 for Ed25519. */
  readonly keyBits: number;
  /** The public key, imported for the certificate generator. */
  readonly publicKey: webcrypto.CryptoKey;
}

/** The policy a CSR's key must meet. */
export interface KeyPolicy {
  readonly keyTypes: readonly DeviceKeyType[];
  readonly rsaMinBits: number;
}

const CSR_LABELS = /(?:NEW )?CERTIFICATE REQUEST/;

/** Decodes a CSR given as PEM text or base64 DER; undefined if it is neither. */
export function decodeCsr(input: string | Uint8Array): Buffer | undefined {
  return typeof input === 'string' ? decodePemOrBase64(input, CSR_LABELS) : Buffer.from(input);
}

/**
 * Parses and checks a CSR. Async (signature verification); never throws: every problem is a
 * `csr_invalid` or `key_policy` rejection whose message says what was wrong.
 */
export async function checkCsr(input: string | Uint8Array, policy: KeyPolicy): Promise<Outcome<{ csr: CheckedCsr }>> {
  const der = decodeCsr(input);
  if (!der) return refusal('csr_invalid', 'csr must be a PEM "CERTIFICATE REQUEST" or base64 DER');
  const csr = await readCertificateRequest(der);
  if (!csr) return refusal('csr_invalid', 'csr is not a well-formed PKCS#10 request');
  const key = describeKey(csr.spki);
  if (!key.ok) return key;
  if (!policy.keyTypes.includes(key.keyType)) return refusal('key_policy', `${key.keyType} keys are not accepted (allowed: ${policy.keyTypes.join(', ')})`);
  if (key.keyType === 'rsa' && key.keyBits < policy.rsaMinBits) return refusal('key_policy', `RSA keys need at least ${policy.rsaMinBits} bits, got ${key.keyBits}`);

  if (csr.signatureHash === 'SHA-1') return refusal('csr_invalid', 'csr is signed with SHA-1; use SHA-256 or stronger');
  let publicKey: webcrypto.CryptoKey;
  try {
    if (!(await csr.verify())) return refusal('csr_invalid', 'csr signature does not verify (no proof of possession of the key)');
    publicKey = await webcrypto.subtle.importKey('spki', csr.spki, importParams(key.keyType, key.curve), true, ['verify']);
  } catch {
    return refusal('csr_invalid', 'csr signature algorithm is not supported or the signature is malformed');
  }
  return { ok: true, csr: { keyType: key.keyType, keyBits: key.keyBits, publicKey } };
}

type KeyFacts = { ok: true; keyType: DeviceKeyType; keyBits: number; curve?: string };

/** Classifies a SubjectPublicKeyInfo with OpenSSL's parser (via KeyObject), which knows every type. */
function describeKey(spki: Buffer): KeyFacts | Refusal {
  let k: ReturnType<typeof createPublicKey>;
  try {
    k = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return refusal('key_policy', 'the CSR carries a key of an unknown type');
  }
  const d = k.asymmetricKeyDetails ?? {};
  switch (k.asymmetricKeyType) {
    case 'ec':
      if (d.namedCurve === 'prime256v1') return { ok: true, keyType: 'p256', keyBits: 256, curve: 'P-256' };
      if (d.namedCurve === 'secp384r1') return { ok: true, keyType: 'p384', keyBits: 384, curve: 'P-384' };
      return refusal('key_policy', `EC curve ${d.namedCurve ?? 'unknown'} is not accepted (P-256 or P-384)`);
    case 'ed25519':
      return { ok: true, keyType: 'ed25519', keyBits: 255 };
    case 'rsa':
      // A tiny public exponent (3) invites known attacks on careless padding; 65537 is universal.
      if (d.publicExponent !== undefined && d.publicExponent < 65_537n) return refusal('key_policy', 'RSA public exponent must be at least 65537');
      return { ok: true, keyType: 'rsa', keyBits: d.modulusLength ?? 0 };
    default:
      return refusal('key_policy', `${k.asymmetricKeyType ?? 'unknown'} keys are not accepted`);
  }
}

function importParams(type: DeviceKeyType, curve: string | undefined): webcrypto.AlgorithmIdentifier | webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams {
  if (type === 'ed25519') return { name: 'Ed25519' };
  if (type === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  return { name: 'ECDSA', namedCurve: curve! };
}
