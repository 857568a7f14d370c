export { pemBlocks, parseCertificateBundle } from './pem.js';
export {
  generateKey,
  issueCertificate,
  issueCrl,
  type CrlSpec,
  randomSerialHex,
  toPem,
  type CertificateSpec,
  type ExtendedKeyUsageName,
  type GeneratedKey,
  type IssuedCertificate,
  type KeyAlgorithm,
} from './issue.js';
export { formatRfc4514 } from './dn.js';
export { parseSubjectAltName } from './san.js';
export { encodeHeaderToken, quoteXfccValue, sfBinary } from './header-encoding.js';
export { createPkcs12 } from './pkcs12.js';
