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
export { escapeRdnValue, formatRfc4514 } from './dn.js';
export { parseSubjectAltName } from './san.js';
export { encodeHeaderToken, quoteXfccValue, sfBinary } from './header-encoding.js';
export { createPkcs12 } from './pkcs12.js';
export { createCsr, readCertificateRequest, type CertificateRequest, type ReadCertificateRequest } from './csr.js';
export { issueCrl, type CrlSpec } from './crl-encode.js';
export { CA_REVOCATION_REASONS, CRL_REASON_CODES, type CaRevocationReason, type CrlReason } from './reasons.js';
export {
  KEY_USAGE,
  OID,
  crlDistributionPointUrls,
  extendedKeyUsages,
  keyUsageAllows,
  ocspResponderUrls,
  parseCertificate,
  readPathLengthConstraint,
  type CertExtension,
  type CertFields,
} from './x509-fields.js';
export { readAlgorithmIdentifier, readRsaPssParams, type RsaPssParams, type SignatureAlgorithm } from './algorithm-id.js';
export { collectRevokedSerials, parseCrlHeader, type CollectOptions, type CrlHeader, type CrlScope } from './crl-parse.js';
export { createSerialSetBuilder, type SerialSet, type SerialSetBuilder } from './serial-set.js';
// Serials and the few DER encodings the CA's OCSP responder assembles its answers from. The TLV
// reader itself stays inside pki/ (see asn1/index.ts).
export {
  NEGATIVE,
  caSerialHexOf,
  caSerialHexOfCertificate,
  serialHexOf,
  serialHexOfCertificate,
  serialKeyFromHex,
  serialKeyOf,
} from './asn1/index.js';
export { ecdsaSignatureToDer } from './asn1/index.js';
export {
  MAX_OCSP_REQUEST_BYTES,
  OCSP_CERT_ID_HASHES,
  encodeOcspResponse,
  encodeOcspResponseData,
  encodeOcspStatusOnly,
  encodeOcspTimes,
  encodeResponderIdByKey,
  encodeSignatureAlgorithmId,
  parseOcspRequest,
  type OcspCertId,
  type OcspCertStatus,
  type OcspTimes,
} from './ocsp-codec.js';
