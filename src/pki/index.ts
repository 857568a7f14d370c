export { pemBlocks, parseCertificateBundle } from './pem.js';
export {
  generateKey,
  issueCertificate,
  issueCrl,
  keyAlgorithmOfSpki,
  loadSigningIdentity,
  type SigningIdentity,
  type CrlSpec,
  type CrlReason,
  CRL_REASON_CODES,
  randomSerialHex,
  toPem,
  type CertificateSpec,
  type ExtendedKeyUsageName,
  type GeneratedKey,
  type IssuedCertificate,
  type KeyAlgorithm,
} from './issue.js';
export { escapeRdnValue, formatRfc4514 } from './dn.js';
export { parseSubjectAltName } from './san.js';
export { encodeHeaderToken, quoteXfccValue, sfBinary } from './header-encoding.js';
export { createPkcs12 } from './pkcs12.js';
export { createCsr, type CertificateRequest } from './csr.js';
