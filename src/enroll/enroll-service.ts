/**
 * The device CA's rules, free of HTTP: one-time codes, enrollment, renewal, revocation and the
 * status the OCSP responder answers. Every refusal is a `Refusal` value; nothing is issued
 * before every check passed, and a certificate is returned only after the store recorded it
 * (so a crash can never leave a device holding a certificate the CA does not know). Inputs come
 * parsed by requests.ts's schemas (a `DeviceId` is branded: it matched the configured pattern).
 */
import type { CaConfig } from '../config/index.js';
import { codeMatches, generateCode, hashCode } from './codes.js';
import { checkCsr } from './csr-check.js';
import { issueDeviceCertificate, type DeviceIssuer } from './device-certificate.js';
import type { IssuedCertificate } from '../ca-protocol.js';
import { refusal, type Outcome } from './refusals.js';
import type { CreateCodeRequest, EnrollRequest, RenewRequest, RevokeRequest } from './requests.js';
import type { CaStore, CertificateRecord, DeviceRecord, NewCertificate, RevocationReason } from './store/index.js';


/** The OCSP answer for one serial. */
export type CertStatus = { status: 'good' } | { status: 'revoked'; revokedAt: Date; reason: RevocationReason } | { status: 'unknown' };

/** The client certificate a renewal came with, as the TLS layer saw it. */
export interface PeerCertificate {
  readonly serialHex: string;
  readonly fingerprintSha256: string;
  readonly chainVerified: boolean;
}

export interface EnrollServiceOptions {
  readonly store: CaStore;
  readonly issuer: DeviceIssuer;
  /** PEM of the issuing CA and its parents, sent with every certificate. */
  readonly chainPem: string;
  /** The HMAC key codes are hashed under. */
  readonly pepper: Buffer;
  readonly codes: CaConfig['enroll']['codes'];
  /** Called after any revocation (the CRL is regenerated). Must not throw. */
  readonly onRevoked: () => void;
  /**
   * Called once a certificate is recorded, before it is returned to the device (metrics and the
   * audit line). Must not throw.
   */
  readonly onIssued?: (record: NewCertificate, keyType: string) => void;
  readonly now?: () => Date;
}

export interface EnrollService {
  createCode(input: CreateCodeRequest): Promise<Outcome<{ deviceId: string; code: string; expiresAt: Date }>>;
  enroll(input: EnrollRequest): Promise<Outcome<{ result: IssuedCertificate }>>;
  /** `peer` is the TLS client certificate (and whether its chain verified against this CA), or undefined. */
  renew(peer: PeerCertificate | undefined, input: RenewRequest): Promise<Outcome<{ result: IssuedCertificate }>>;
  revoke(input: RevokeRequest): Promise<Outcome<{ revoked: string[] }>>;
  status(serialHex: string): Promise<CertStatus>;
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>;
  listDevices(limit: number, offset: number): Promise<DeviceRecord[]>;
}

/** Builds the service. Sync; the store and issuer are owned by the caller. */
export function createEnrollService(o: EnrollServiceOptions): EnrollService {
  const now = o.now ?? (() => new Date());
  const policy = { keyTypes: o.issuer.issuance.keyTypes, rsaMinBits: o.issuer.issuance.rsaMinBits };

  function toResult(record: CertificateRecord | { serialHex: string; deviceId: string; notBefore: Date; notAfter: Date }, pem: string): IssuedCertificate {
    return {
      deviceId: record.deviceId,
      serial: record.serialHex,
      notBefore: record.notBefore.toISOString(),
      notAfter: record.notAfter.toISOString(),
      certificate: pem,
      chain: o.chainPem,
    };
  }

  return {
    async createCode(input) {
      const ttl = input.ttlSeconds ?? o.codes.ttlSeconds;
      const code = generateCode(o.codes.length);
      const createdAt = now();
      const expiresAt = new Date(createdAt.getTime() + ttl * 1000);
      await o.store.putCode({
        deviceId: input.deviceId,
        userId: input.userId ?? null,
        codeHash: hashCode(o.pepper, input.deviceId, code),
        createdAt,
        expiresAt,
        maxAttempts: o.codes.maxAttempts,
      });
      return { ok: true, deviceId: input.deviceId, code, expiresAt };
    },

    async enroll(input) {
      const deviceId = input.deviceId;
      const stored = await o.store.getCode(deviceId);
      // Which code states are told apart, and when: "locked" before comparing (a locked code can't
      // be guessed further); "used"/"expired" only to someone who knows the code.
      if (!stored) return refusal('invalid_code', 'the code is not valid for this device');
      if (stored.attempts >= stored.maxAttempts) return refusal('code_locked', 'too many wrong attempts: ask for a new code');
      if (!codeMatches(o.pepper, deviceId, input.code, stored.codeHash)) {
        const attempts = await o.store.recordFailedAttempt(deviceId);
        return attempts >= stored.maxAttempts
          ? refusal('code_locked', 'too many wrong attempts: ask for a new code')
          : refusal('invalid_code', 'the code is not valid for this device');
      }
      if (stored.usedAt) return refusal('code_used', 'the code was already used');
      const at = now();
      if (stored.expiresAt.getTime() <= at.getTime()) return refusal('code_expired', 'the code has expired: ask for a new one');

      const checked = await checkCsr(input.csr, policy);
      if (!checked.ok) return checked;
      const issued = await issueDeviceCertificate(o.issuer, deviceId, checked.csr, 'enroll', null, at);
      const outcome = await o.store.redeemCode(deviceId, at, issued.record);
      if (outcome !== 'ok') {
        // Lost a race with another redemption: the certificate was never recorded, so it is dropped.
        return outcome === 'no_code' ? refusal('invalid_code', 'the code is not valid for this device') : refusal(outcome, 'the code can no longer be used');
      }
      o.onIssued?.(issued.record, checked.csr.keyType);
      return { ok: true, result: toResult(issued.record, issued.pem) };
    },

    async renew(peer, input) {
      if (!peer) return refusal('cert_required', 'renewal needs the current device certificate as the TLS client certificate');
      if (!peer.chainVerified) return refusal('unknown_certificate', 'the client certificate was not issued by this CA');
      const current = await o.store.getCertificate(peer.serialHex);
      // Serial and fingerprint both: a serial alone could be claimed by another CA the TLS layer trusts.
      if (!current || current.fingerprintSha256 !== peer.fingerprintSha256) return refusal('unknown_certificate', 'the client certificate is not known to this CA');
      if (current.revokedAt) return refusal('revoked', 'the client certificate is revoked');
      const at = now();
      if (current.notAfter.getTime() <= at.getTime()) return refusal('expired', 'the client certificate has expired: enroll again');
      const checked = await checkCsr(input.csr, policy);
      if (!checked.ok) return checked;
      const issued = await issueDeviceCertificate(o.issuer, current.deviceId, checked.csr, 'renew', current.serialHex, at);
      const revokeOld = o.issuer.issuance.revokeSupersededOnRenew;
      const renewed = { ...issued.record, supersedes: current.serialHex };
      await o.store.recordRenewal(renewed, at, revokeOld);
      if (revokeOld) o.onRevoked();
      o.onIssued?.(renewed, checked.csr.keyType);
      return { ok: true, result: toResult(issued.record, issued.pem) };
    },

    async revoke(input) {
      // Serials are stored as issued: lower-case hex without a leading zero digit (see randomSerialHex).
      const serialHex = input.serial?.toLowerCase().replace(/^0+(?=.)/, '');
      const deviceId = input.deviceId ?? '';
      const target = serialHex !== undefined ? { serialHex } : { deviceId };
      const known = serialHex !== undefined ? await o.store.getCertificate(serialHex) : await o.store.getDevice(deviceId);
      if (!known) return refusal('not_found', serialHex !== undefined ? 'no certificate with that serial' : 'no such device');
      const revoked = await o.store.revoke(target, input.reason, now());
      if (revoked.length) o.onRevoked();
      return { ok: true, revoked };
    },

    async status(serialHex) {
      const record = await o.store.getCertificate(serialHex);
      if (!record) return { status: 'unknown' };
      if (record.revokedAt) return { status: 'revoked', revokedAt: record.revokedAt, reason: record.revocationReason ?? 'unspecified' };
      return { status: 'good' };
    },

    getDevice: (deviceId) => o.store.getDevice(deviceId),
    listDevices: (limit, offset) => o.store.listDevices({ limit, offset }),
  };
}
