export { decodeDerOrPem, decodePemOrBase64, pemBlocks, parseCertificateBundle } from './pem.js';
export {
  generateKey,
  issueCertificate,
  keyAlgorithmOfSpki,
  loadSigningIdentity,
  type SigningIdentity,
  randomSerialHex,
  toPem,
  type CertificateSpec,
  type ExtendedKeyUsageName,
  type GeneratedKey,
  type IssuedCertificate,
  type KeyAlgorithm,
} from './issue.js';
export { escapeRdnValue, formatRfc4514, nameAttributes, type NameAttribute } from './dn.js';
export { formatIpv6, parseSubjectAltName } from './san.js';
export { encodeHeaderToken, quoteXfccValue, sfBinary } from './header-encoding.js';
export { createPkcs12 } from './pkcs12.js';
export { createCsr, readCertificateRequest, type CertificateRequest } from './csr.js';
export { issueCrl, type CrlSpec } from './crl-encode.js';
export { CA_REVOCATION_REASONS, CRL_REASON_CODES, type CaRevocationReason, type CrlReason } from './reasons.js';
export {
  KEY_USAGE,
  OID,
  certificatePolicyOids,
  crlDistributionPointUrls,
  extendedKeyUsages,
  keyUsageAllows,
  ocspResponderUrls,
  parseCertificate,
  readPathLengthConstraint,
  type CertFields,
} from './x509-fields.js';
export { readRsaPssParams, type SignatureAlgorithm } from './algorithm-id.js';
export { collectRevokedSerials, parseCrlHeader, type CrlScope } from './crl-parse.js';
export { createSerialSetBuilder, type SerialSet } from './serial-set.js';
// Serials (asn1/serial.ts states the convention). The TLV reader and writer stay inside pki/.
export {
  NEGATIVE,
  caSerialHexOf,
  caSerialHexOfCertificate,
  serialHexOf,
  serialHexOfCertificate,
  serialKeyFromHex,
  serialKeyOf,
} from './asn1/index.js';
// The CA's OCSP responder: its request reader and the pieces its answers are assembled from.
export { ecdsaSignatureToDer } from './asn1/index.js';
export {
  OCSP_CERT_ID_HASHES,
  encodeOcspResponse,
  encodeOcspResponseData,
  encodeOcspStatusOnly,
  encodeOcspTimes,
  encodeResponderIdByKey,
  encodeSignatureAlgorithmId,
  parseOcspRequest,
  type OcspCertId,
  type OcspTimes,
} from './ocsp-codec.js';
