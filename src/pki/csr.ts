/**
 * PKCS#10 certificate signing requests, made in-process over Node's WebCrypto, for the device
 * simulator (and any test that needs a request a real device would send).
 */
import { webcrypto } from 'node:crypto';
import type * as x509 from '@peculiar/x509';
import { loadPeculiarX509 } from './peculiar.js';
import { SidecarError } from '../errors.js';
import { toPem, type GeneratedKey, type KeyAlgorithm } from './issue.js';

/** A signed PKCS#10 request as PEM (`CERTIFICATE REQUEST`, what OpenSSL writes) and as DER. */
export interface CertificateRequest {
  readonly pem: string;
  readonly der: Buffer;
}

/**
 * Creates a PKCS#10 request for `key`'s public key, signed with its private key (the proof of
 * possession a CA checks), with the given RFC 4514 `subject` (e.g. `CN=device-42`; escape values
 * that hold `,+"\<>;=`) and no requested extensions: a CA decides those itself.
 *
 * Signatures: ECDSA with SHA-256 for P-256 and SHA-384 for P-384, RSASSA-PKCS#1 v1.5 with SHA-256
 * for RSA (the hash the key was generated for). Async; fails closed with a `SidecarError`
 * `ERR_PKI` (fault `subject` for a subject that does not parse, `csr` if signing fails).
 * Never writes, logs or keeps the key.
 */
export async function createCsr(key: GeneratedKey, subject: string): Promise<CertificateRequest> {
  const x509 = await loadPeculiarX509();
  let name: x509.Name;
  try {
    name = new x509.Name(subject);
  } catch (cause) {
    throw new SidecarError('ERR_PKI', 'subject', `CSR: cannot parse the subject "${subject}" as an RFC 4514 name`, { cause });
  }
  if (name.toJSON().length === 0) throw new SidecarError('ERR_PKI', 'subject', 'CSR: the subject is empty');
  try {
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name, keys: key.keys, signingAlgorithm: csrSigningAlgorithm(key.algorithm) },
      webcrypto as never,
    );
    const der = Buffer.from(csr.rawData);
    return { pem: toPem('CERTIFICATE REQUEST', der), der };
  } catch (cause) {
    throw new SidecarError('ERR_PKI', 'csr', `CSR: cannot sign the request with the ${key.algorithm} key: ${(cause as Error).message}`, { cause });
  }
}

function csrSigningAlgorithm(algorithm: KeyAlgorithm): webcrypto.Algorithm | webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams {
  switch (algorithm) {
    case 'p256':
      return { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams;
    case 'p384':
      return { name: 'ECDSA', hash: 'SHA-384' } as webcrypto.EcdsaParams;
    case 'rsa2048':
    case 'rsa3072':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    default: {
      const unknown: never = algorithm;
      throw new TypeError(`unsupported key algorithm ${String(unknown)}`);
    }
  }
}

/** A PKCS#10 request as read, before any check. */
export interface ReadCertificateRequest {
  /** DER SubjectPublicKeyInfo of the requested key. */
  readonly spki: Buffer;
  /** WebCrypto name of the signature's hash (e.g. 'SHA-256'), when the algorithm has one. */
  readonly signatureHash: string | undefined;
  /** Checks the request's self-signature (proof of possession). Async; rejects for an unsupported algorithm or a malformed signature. */
  verify(): Promise<boolean>;
}

/**
 * Reads a DER PKCS#10 request. Async (loads @peculiar/x509 on first use); resolves undefined for
 * input that is not a well-formed request. Checks nothing: the CA's policy does (enroll/csr-check.ts).
 */
export async function readCertificateRequest(der: Uint8Array): Promise<ReadCertificateRequest | undefined> {
  const x509 = await loadPeculiarX509();
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
  } catch {
    return undefined;
  }
  return {
    spki: Buffer.from(csr.publicKey.rawData),
    signatureHash: (csr.signatureAlgorithm as { hash?: { name?: string } }).hash?.name,
    verify: () => csr.verify(webcrypto as never),
  };
}
