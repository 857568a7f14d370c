/**
 * ASN.1/DER for the rest of pki/: one reader (hostile input, explicit limits), one writer, time
 * and serial codecs. Other modules get what they need through pki/index.ts, which does not export
 * the TLV primitives: DER is walked only inside pki/ (test/architecture.test.ts checks it).
 */
export {
  MAX_CHILDREN,
  MAX_LENGTH_OCTETS,
  TAG,
  childrenOf,
  contentOf,
  contextTag,
  decodeOid,
  derError,
  encodingOf,
  expectTag,
  expectTlv,
  isCriticalFlag,
  readOid,
  readTlv,
  type Tlv,
} from './reader.js';
export { ecdsaSignatureToDer, encodeOid, encodeUnsignedInteger, tlv, tlvOfList } from './writer.js';
export { decodeTime, encodeCertificateTime, encodeGeneralizedTime } from './time.js';
export {
  NEGATIVE,
  caSerialHexOf,
  caSerialHexOfCertificate,
  serialContentOfHex,
  serialHexOf,
  serialHexOfCertificate,
  serialKeyFromHex,
  serialKeyOf,
} from './serial.js';
