/**
 * Loads the server certificate, its key and the client CA bundle all-or-nothing: every file is
 * read and checked before anything is returned, so a caller (start-up or a reload) either gets
 * complete, consistent material or a SidecarError naming the file and what is wrong with it.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SidecarError } from '../errors.js';
import { parseCertificateBundle } from '../pki/index.js';

/** Checked TLS material, ready for `tls.createSecureContext`. */
export interface TlsMaterial {
  /** Server certificate followed by any chain certificates, PEM. */
  readonly certPem: string;
  readonly key: KeyObject;
  /** The key as read (PEM): what OpenSSL is given. Never logged. */
  readonly keyPem: string;
  /** The CA bundle as PEM strings (roots and configured intermediates). */
  readonly caPems: readonly string[];
  readonly serverCertificate: X509Certificate;
  readonly caCertificates: readonly X509Certificate[];
}

/** What to load: resolved paths. */
export interface TlsMaterialPaths {
  readonly cert: string;
  readonly key: string;
  readonly caBundle: readonly string[];
}

function fail(fault: string, message: string, cause?: unknown): never {
  throw new SidecarError('ERR_TLS_MATERIAL', fault, message, cause === undefined ? undefined : { cause });
}

function readText(file: string, what: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is a directory' : (cause as Error).message;
    fail(what, `${what} ${file} ${why}`, cause);
  }
  if (buf.includes(0)) fail(what, `${what} ${file} is binary (DER?); PEM is expected`);
  return buf.toString('utf8');
}

/**
 * Reads and cross-checks the files. Sync; throws SidecarError(ERR_TLS_MATERIAL) with `fault` set
 * to the config field at fault. `now` lets reload tests pin the clock.
 */
export function loadTlsMaterial(paths: TlsMaterialPaths, now: Date = new Date()): TlsMaterial {
  const certPem = readText(paths.cert, 'tls.cert');
  let chain: X509Certificate[];
  try {
    chain = parseCertificateBundle(certPem);
  } catch (cause) {
    fail('tls.cert', `tls.cert ${paths.cert}: ${(cause as Error).message}`, cause);
  }
  const serverCertificate = chain[0] ?? fail('tls.cert', `tls.cert ${paths.cert} holds no PEM CERTIFICATE block`);
  if (new Date(serverCertificate.validTo) <= now) fail('tls.cert', `tls.cert ${paths.cert} expired on ${serverCertificate.validTo}`);

  const keyPem = readText(paths.key, 'tls.key');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (cause) {
    // Without a passphrase callback OpenSSL reports an encrypted key as "interrupted or cancelled".
    const encrypted = /ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(keyPem) || (cause as NodeJS.ErrnoException).code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED';
    const msg = encrypted ? 'is encrypted; provide an unencrypted PKCS#8 or SEC1/PKCS#1 key' : 'is not a PEM private key';
    fail('tls.key', `tls.key ${paths.key} ${msg}`, cause);
  }
  if (!serverCertificate.checkPrivateKey(key)) {
    fail('tls.key', `tls.key ${paths.key} does not match the certificate in tls.cert ${paths.cert}`);
  }

  const caPems: string[] = [];
  const caCertificates: X509Certificate[] = [];
  for (const file of paths.caBundle) {
    const text = readText(file, 'clientAuth.caBundle');
    let certs: X509Certificate[];
    try {
      certs = parseCertificateBundle(text);
    } catch (cause) {
      fail('clientAuth.caBundle', `clientAuth.caBundle ${file}: ${(cause as Error).message}`, cause);
    }
    if (certs.length === 0) fail('clientAuth.caBundle', `clientAuth.caBundle ${file} holds no PEM CERTIFICATE block`);
    for (const c of certs) {
      if (!c.ca) fail('clientAuth.caBundle', `clientAuth.caBundle ${file}: ${c.subject.replace(/\n/g, ', ')} is not a CA certificate`);
      caPems.push(c.toString());
      caCertificates.push(c);
    }
  }
  return Object.freeze({ certPem, key, keyPem, caPems: Object.freeze(caPems), serverCertificate, caCertificates: Object.freeze(caCertificates) });
}
