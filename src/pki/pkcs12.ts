import { createHash, createPrivateKey, webcrypto, type KeyObject, type X509Certificate } from 'node:crypto';
import type * as asn1js from 'asn1js';
import type * as pkijs from 'pkijs';
import { SidecarError } from '../errors.js';
import { parseCertificateBundle } from './pem.js';

/** Inputs of {@link createPkcs12}. */
export interface CreatePkcs12Options {
  /** The leaf's private key, unencrypted PEM (PKCS#8, SEC1 or PKCS#1). */
  keyPem: string;
  /** The leaf certificate; further certificates in the same PEM are treated as its chain. */
  certPem: string;
  /** Intermediate (and optionally root) certificates, leaf-side first; each entry may hold several PEM blocks. */
  chainPem?: string[];
  /** Protects both the key and the MAC; non-empty, well-formed Unicode without NUL. */
  password: string;
  /** Stored as the PKCS#9 friendlyName of the key and the leaf (what keychains show); BMP characters only. */
  friendlyName?: string;
}

// Both the PBKDF2 of the PBES2 bags and the PKCS#12 MAC KDF run this many rounds. OpenSSL 3.0's
// default is 2048 and the JDK's since 12 is 10000; an offline guesser attacks whichever is
// cheaper, so both get the same count. Far higher counts make every reader (curl, Node at each
// reload, a device) pay on every load for little gain against a weak password.
const ITERATIONS = 10_000;

const OID_PKCS8_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const OID_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';

/**
 * Builds a password-protected PKCS#12 (PFX) bundle holding one private key, its certificate and
 * an optional chain, in the layout OpenSSL 3 writes by default, so that OpenSSL, curl, Node's
 * `tls.createSecureContext({ pfx, passphrase })` and the JDK (8u301+) can read it:
 *
 * - the key in a PKCS8ShroudedKeyBag, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC;
 * - the certificates (leaf first, then the chain in the given order) in a SafeContents
 *   encrypted the same way;
 * - an HMAC-SHA256 MAC over the whole, keyed by the PKCS#12 KDF (RFC 7292 appendix B);
 * - localKeyId (SHA-1 of the leaf's DER, as OpenSSL computes it) and, if given, friendlyName
 *   on both the key and the leaf, which Windows, macOS and Java use to pair them.
 *
 * Async (WebCrypto). Fails closed: rejects with a `SidecarError` `ERR_PKI` and writes nothing
 * when the key or a certificate cannot be parsed, a PEM holds no certificate, the key does not
 * match the leaf, or the password or friendlyName cannot be encoded identically by every reader.
 * Works for any key type Node can export as PKCS#8; tested with ECDSA P-256 and RSA. Never logs
 * or keeps the key or the password. Readers that predate PBES2/AES in PKCS#12 (older Windows and
 * macOS keychains, Java before 8u301) cannot open the result: a deliberate choice over the
 * legacy RC2/3DES-SHA1 layout.
 */
export async function createPkcs12(options: CreatePkcs12Options): Promise<Buffer> {
  // Loaded here, not at import: only the dev PKI and the device simulator make PKCS#12 files.
  const [asn1js, pkijs] = await Promise.all([import('asn1js'), import('pkijs')]);
  const password = encodePassword(options.password);
  const key = parsePrivateKey(options.keyPem);
  const [leaf, ...rest] = parseCertificates(options.certPem, 'certPem');
  if (leaf === undefined) throw pkiError('certPem', 'certPem holds no certificate'); // unreachable; narrows the type
  const chain = [...rest, ...(options.chainPem ?? []).flatMap((pem, i) => parseCertificates(pem, `chainPem[${i}]`))];
  if (!leaf.checkPrivateKey(key)) {
    throw pkiError('keyPem', 'the private key does not match the certificate in certPem');
  }

  // A private engine passed to every call: pkijs would otherwise use the engine it keeps in a
  // process-wide global (set when it is imported), which another module may have replaced.
  const engine = new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'] });
  const pbes2 = {
    password,
    contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 },
    hmacHashAlgorithm: 'SHA-256',
    iterationCount: ITERATIONS,
  };

  // Separate instances for the key bag and the leaf's bag: pkijs objects are mutable.
  const localKeyId = createHash('sha1').update(leaf.raw).digest();
  const friendlyName = options.friendlyName === undefined ? undefined : checkFriendlyName(options.friendlyName);
  const bagAttributes = (): pkijs.Attribute[] => [
    new pkijs.Attribute({ type: OID_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(localKeyId) })] }),
    ...(friendlyName === undefined
      ? []
      : [new pkijs.Attribute({ type: OID_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: friendlyName })] })]),
  ];

  const shrouded = new pkijs.PKCS8ShroudedKeyBag({
    parsedValue: pkijs.PrivateKeyInfo.fromBER(toArrayBuffer(key.export({ type: 'pkcs8', format: 'der' }))),
  });
  await shrouded.makeInternalValues(pbes2, engine);
  const keyBag = new pkijs.SafeBag({ bagId: OID_PKCS8_SHROUDED_KEY_BAG, bagValue: shrouded, bagAttributes: bagAttributes() });

  // certValue is set from the original DER (no parsedValue), so pkijs never re-encodes a
  // certificate: a re-encoding that is not byte-identical would break its signature.
  const certBags = [leaf, ...chain].map(
    (cert, i) =>
      new pkijs.SafeBag({
        bagId: OID_CERT_BAG,
        bagValue: new pkijs.CertBag({
          certId: OID_X509_CERTIFICATE,
          certValue: new asn1js.OctetString({ valueHex: toArrayBuffer(cert.raw) }),
        }),
        ...(i === 0 ? { bagAttributes: bagAttributes() } : {}),
      }),
  );

  const authenticatedSafe = new pkijs.AuthenticatedSafe({
    parsedValue: {
      safeContents: [
        { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) }, // password-encrypted
        { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [keyBag] }) }, // the bag is already shrouded
      ],
    },
  });
  await authenticatedSafe.makeInternalValues({ safeContents: [{ ...pbes2 }, {}] }, engine);

  const pfx = new pkijs.PFX({ parsedValue: { integrityMode: 0, authenticatedSafe } });
  await pfx.makeInternalValues(
    { password, iterations: ITERATIONS, pbkdf2HashAlgorithm: 'SHA-256', hmacHashAlgorithm: 'SHA-256' },
    engine,
  );
  return Buffer.from(pfx.toSchema().toBER(false));
}

// Readers derive the PBES2 key from the password's UTF-8 bytes and the MAC key from its
// BMPString (UTF-16BE) form. A lone surrogate has neither, and OpenSSL and Node hand the password
// on as a C string that ends at the first NUL, so such passwords would open in one reader and not
// in another. An empty password is rejected because OpenSSL treats "" and "no password" alike.
function encodePassword(password: string): ArrayBuffer {
  const bytes = Buffer.from(password, 'utf8');
  if (password.length === 0 || password.includes('\0') || bytes.toString('utf8') !== password) {
    throw pkiError('password', 'the password must be non-empty, well-formed Unicode without NUL');
  }
  return toArrayBuffer(bytes);
}

// friendlyName is a BMPString; OpenSSL refuses to parse one holding surrogate pairs, so a
// character outside the Basic Multilingual Plane would make the whole file unreadable.
function checkFriendlyName(name: string): string {
  if (/[\uD800-\uDFFF\0]/.test(name)) {
    throw pkiError('friendlyName', 'friendlyName must hold only Basic Multilingual Plane characters and no NUL');
  }
  return name;
}

function parsePrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (cause) {
    throw pkiError('keyPem', 'cannot parse keyPem (an unencrypted PEM private key is expected)', cause);
  }
}

function parseCertificates(pem: string, field: string): X509Certificate[] {
  let certs: X509Certificate[];
  try {
    certs = parseCertificateBundle(pem);
  } catch (cause) {
    throw pkiError(field, `cannot parse ${field}`, cause);
  }
  if (certs.length === 0) throw pkiError(field, `${field} holds no certificate`);
  return certs;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

function pkiError(fault: string, message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_PKI', fault, `PKCS#12: ${message}`, cause === undefined ? undefined : { cause });
}
