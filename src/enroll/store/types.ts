/**
 * The device CA's persistent state behind one interface: enrollment codes, devices, issued
 * certificates and revocations. SQLite (better-sqlite3) is the default implementation; the
 * interface is async so a shared PostgreSQL can serve several CA replicas later.
 *
 * Contract for every implementation:
 * - Each method that writes is one transaction: after it resolves, a crash loses nothing it
 *   wrote; if it rejects, nothing of it was written.
 * - Codes are stored only as a hash (the caller hashes; the store never sees a code).
 * - Serials are lower-case hex without leading zeros stripped or added: exactly as issued.
 */

import type { CaRevocationReason } from '../../pki/index.js';

/** RFC 5280 CRLReason values the CA uses, by name (pki/reasons.ts lists them). */
export type RevocationReason = CaRevocationReason;

/** One pending (or spent) enrollment code. There is at most one per device: a new one replaces it. */
export interface CodeRecord {
  readonly deviceId: string;
  readonly userId: string | null;
  /** Hex hash of the code (HMAC-SHA-256 with the CA's pepper). */
  readonly codeHash: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** Failed attempts so far; at `maxAttempts` the code is dead. */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** Set once the code was redeemed for a certificate. */
  readonly usedAt: Date | null;
}

/** A certificate the CA issued. */
export interface CertificateRecord {
  readonly serialHex: string;
  readonly deviceId: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprintSha256: string;
  readonly der: Buffer;
  readonly issuedAt: Date;
  /** How it was obtained. */
  readonly kind: 'enroll' | 'renew';
  /** For a renewal: the serial it replaces. */
  readonly supersedes: string | null;
  readonly revokedAt: Date | null;
  readonly revocationReason: RevocationReason | null;
}

/** A device and its certificates, newest first. */
export interface DeviceRecord {
  readonly deviceId: string;
  readonly userId: string | null;
  readonly createdAt: Date;
  readonly certificates: readonly CertificateRecord[];
}

/** A row of the CRL. */
export interface RevokedEntry {
  readonly serialHex: string;
  readonly revokedAt: Date;
  readonly reason: RevocationReason;
}

/** What `redeemCode` found when it tried to spend the code. */
export type RedeemOutcome = 'ok' | 'no_code' | 'code_used' | 'code_expired' | 'code_locked';

/** A new certificate to record (revocation fields start empty). */
export type NewCertificate = Omit<CertificateRecord, 'revokedAt' | 'revocationReason'>;

export interface CaStore {
  /** Stores a new code for the device, replacing any earlier one (spent or not). */
  putCode(code: Omit<CodeRecord, 'attempts' | 'usedAt'>): Promise<void>;
  /** The device's current code, spent or not; undefined if none. */
  getCode(deviceId: string): Promise<CodeRecord | undefined>;
  /** Counts one failed attempt against the device's code; resolves to the new count (0 if no code). */
  recordFailedAttempt(deviceId: string): Promise<number>;
  /**
   * In one transaction: re-checks the code (exists, unused, not expired at `now`, under its attempt
   * limit), marks it used, creates the device if new (with the code's userId) and records the
   * certificate. On any outcome but 'ok' nothing is written, so a certificate that raced another
   * redemption is never recorded (and must never be handed out).
   */
  redeemCode(deviceId: string, now: Date, certificate: NewCertificate): Promise<RedeemOutcome>;
  /**
   * In one transaction: records a renewal's certificate and, if `revokeSuperseded`, revokes the
   * certificate it replaces (reason 'superseded', at `now`). Rejects if the old one is unknown.
   */
  recordRenewal(certificate: NewCertificate & { supersedes: string }, now: Date, revokeSuperseded: boolean): Promise<void>;
  /** One certificate by serial, or undefined. */
  getCertificate(serialHex: string): Promise<CertificateRecord | undefined>;
  /** One device with all its certificates, or undefined. */
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>;
  /** Devices ordered by creation, oldest first, paged. */
  listDevices(options: { limit: number; offset: number }): Promise<DeviceRecord[]>;
  /**
   * Revokes one certificate, or every unrevoked certificate of a device, in one transaction.
   * Already revoked certificates keep their first revocation. Resolves to the serials newly revoked.
   */
  revoke(target: { serialHex: string } | { deviceId: string }, reason: RevocationReason, at: Date): Promise<string[]>;
  /** Every revoked certificate that has not yet expired at `now` (expired ones may leave the CRL). */
  listRevoked(now: Date): Promise<RevokedEntry[]>;
  /** The next CRL number: strictly increasing across restarts (RFC 5280 §5.2.3). */
  nextCrlNumber(): Promise<bigint>;
  /** Closes the database. */
  close(): Promise<void>;
}
