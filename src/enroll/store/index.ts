/** The device CA's store: the `CaStore` contract and its SQLite implementation. */
export type {
  CaStore,
  CertificateRecord,
  CodeRecord,
  DeviceRecord,
  NewCertificate,
  RedeemOutcome,
  RevocationReason,
  RevokedEntry,
} from './types.js';
export { openSqliteStore } from './sqlite-store.js';
