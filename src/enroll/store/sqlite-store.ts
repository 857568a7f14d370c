/**
 * The CA store on SQLite (better-sqlite3). One file, one connection per store instance; several
 * instances (or processes) may share a file: every write takes the write lock up front.
 */
import Database from 'better-sqlite3';
import { SidecarError } from '../../errors.js';
import type { CaStore, CertificateRecord, CodeRecord, DeviceRecord, NewCertificate, RedeemOutcome, RevocationReason, RevokedEntry } from './types.js';

/**
 * Schema migrations: entry i takes `PRAGMA user_version` from i to i + 1. Append only; never edit
 * a released step (a database already past it would not see the change). The first step's CHECK
 * on revocation_reason spells out pki's CA_REVOCATION_REASONS; a reason added there needs a step
 * here too (test/enroll/revocation-reasons.test.ts revokes with every one).
 */
const MIGRATIONS: readonly string[] = Object.freeze([
  `CREATE TABLE codes (
     device_id TEXT PRIMARY KEY,
     user_id TEXT,
     code_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL,
     used_at INTEGER
   ) STRICT;
   CREATE TABLE devices (
     device_id TEXT PRIMARY KEY,
     user_id TEXT,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE certificates (
     serial_hex TEXT PRIMARY KEY,
     device_id TEXT NOT NULL REFERENCES devices (device_id),
     subject TEXT NOT NULL,
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     fingerprint_sha256 TEXT NOT NULL UNIQUE,
     der BLOB NOT NULL,
     issued_at INTEGER NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('enroll', 'renew')),
     supersedes TEXT REFERENCES certificates (serial_hex),
     revoked_at INTEGER,
     revocation_reason TEXT CHECK (revocation_reason IN ('unspecified', 'keyCompromise', 'affiliationChanged',
       'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn')),
     CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
   ) STRICT;
   CREATE INDEX certificates_device_id ON certificates (device_id);
   CREATE INDEX certificates_revoked_at ON certificates (revoked_at);
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
   INSERT INTO meta (key, value) VALUES ('crl_number', 0);`,
]);

interface CodeRow {
  device_id: string;
  user_id: string | null;
  code_hash: string;
  created_at: number;
  expires_at: number;
  attempts: number;
  max_attempts: number;
  used_at: number | null;
}
interface DeviceRow {
  device_id: string;
  user_id: string | null;
  created_at: number;
}
interface CertificateRow {
  serial_hex: string;
  device_id: string;
  subject: string;
  not_before: number;
  not_after: number;
  fingerprint_sha256: string;
  der: Buffer;
  issued_at: number;
  kind: 'enroll' | 'renew';
  supersedes: string | null;
  revoked_at: number | null;
  revocation_reason: RevocationReason | null;
}

const CERT_COLUMNS = `serial_hex, device_id, subject, not_before, not_after, fingerprint_sha256, der, issued_at, kind,
  supersedes, revoked_at, revocation_reason`;

/**
 * Opens (creating if absent) the SQLite database at `path` (':memory:' for a throwaway one) and
 * migrates it to the current schema. Synchronous. Throws a SidecarError `ERR_STORE` (fault
 * 'store.path') if the file cannot be opened or is not a database (its parent directory is never
 * created), or (fault 'store.schema') if its schema is newer than this code knows; nothing is
 * left open then. Every method of the returned store rejects with a SidecarError `ERR_STORE`.
 *
 * Beyond the CaStore contract: `redeemCode` rejects if the certificate is for another device, and
 * `recordRenewal` also rejects if the superseded certificate belongs to another device. A redeemed
 * code with a user id sets the device's user id (re-enrollment by a new owner); one without keeps it.
 */
export function openSqliteStore(path: string): CaStore {
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (cause) {
    throw new SidecarError('ERR_STORE', 'store.path', `store: cannot open the database ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    // WAL: readers (OCSP, CRL) never block the writer. FULL: each commit is fsynced before it
    // returns, so a crash or power loss after a method resolves loses no certificate or revocation
    // (WAL's default NORMAL may lose the last commits on power loss).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, path);
    return createStore(db);
  } catch (cause) {
    db.close();
    if (cause instanceof SidecarError) throw cause;
    throw new SidecarError('ERR_STORE', 'store.path', `store: cannot open the database ${path}: ${(cause as Error).message}`, { cause });
  }
}

function migrate(db: Database.Database, path: string): void {
  const version = (): number => db.pragma('user_version', { simple: true }) as number;
  const tooNew = (v: number) =>
    new SidecarError('ERR_STORE', 'store.schema',
      `store: ${path} has schema version ${v}, newer than this program knows (${MIGRATIONS.length}): run a newer mtls-sidecar`);
  if (version() > MIGRATIONS.length) throw tooNew(version());
  if (version() === MIGRATIONS.length) return;
  // Immediate: two processes opening a fresh file migrate one after the other; the second
  // re-reads the version under the lock and finds nothing to do.
  db.transaction(() => {
    const from = version();
    if (from > MIGRATIONS.length) throw tooNew(from);
    for (let v = from; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`); // in the transaction: a failed step leaves the old version
    }
  }).immediate();
}

function createStore(db: Database.Database): CaStore {
  const s = {
    getCode: db.prepare<[string], CodeRow>('SELECT * FROM codes WHERE device_id = ?'),
    putCode: db.prepare<[string, string | null, string, number, number, number]>(`INSERT INTO codes (device_id, user_id, code_hash, created_at, expires_at, attempts, max_attempts, used_at)
      VALUES (?, ?, ?, ?, ?, 0, ?, NULL)
      ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id, code_hash = excluded.code_hash,
        created_at = excluded.created_at, expires_at = excluded.expires_at, attempts = 0,
        max_attempts = excluded.max_attempts, used_at = NULL`),
    failAttempt: db.prepare<[string], { attempts: number }>('UPDATE codes SET attempts = attempts + 1 WHERE device_id = ? RETURNING attempts'),
    markUsed: db.prepare<[number, string]>('UPDATE codes SET used_at = ? WHERE device_id = ?'),
    upsertDevice: db.prepare(`INSERT INTO devices (device_id, user_id, created_at) VALUES (?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET user_id = coalesce(excluded.user_id, devices.user_id)`),
    getDevice: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE device_id = ?'),
    listDevices: db.prepare<[number, number], DeviceRow>('SELECT * FROM devices ORDER BY created_at, rowid LIMIT ? OFFSET ?'),
    insertCert: db.prepare(`INSERT INTO certificates (${CERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`),
    getCert: db.prepare<[string], CertificateRow>(`SELECT ${CERT_COLUMNS} FROM certificates WHERE serial_hex = ?`),
    certsOfDevice: db.prepare<[string], CertificateRow>(
      `SELECT ${CERT_COLUMNS} FROM certificates WHERE device_id = ? ORDER BY issued_at DESC, rowid DESC`),
    revokeSerial: db.prepare<[number, string, string], { serial_hex: string }>(`UPDATE certificates
      SET revoked_at = ?, revocation_reason = ? WHERE serial_hex = ? AND revoked_at IS NULL RETURNING serial_hex`),
    revokeDevice: db.prepare<[number, string, string], { serial_hex: string }>(`UPDATE certificates
      SET revoked_at = ?, revocation_reason = ? WHERE device_id = ? AND revoked_at IS NULL RETURNING serial_hex`),
    listRevoked: db.prepare<[number], { serial_hex: string; revoked_at: number; revocation_reason: RevocationReason }>(
      `SELECT serial_hex, revoked_at, revocation_reason FROM certificates
       WHERE revoked_at IS NOT NULL AND not_after >= ? ORDER BY revoked_at, serial_hex`),
    // safeIntegers: the CRL number is a bigint end to end (RFC 5280 allows up to 20 octets).
    nextCrl: db.prepare<[], { value: bigint }>(`UPDATE meta SET value = value + 1 WHERE key = 'crl_number' RETURNING value`).safeIntegers(),
  };

  const insertCertificate = (c: NewCertificate) =>
    s.insertCert.run(c.serialHex, c.deviceId, c.subject, ms(c.notBefore), ms(c.notAfter), c.fingerprintSha256, c.der,
      ms(c.issuedAt), c.kind, c.supersedes);
  const deviceOf = (row: DeviceRow): DeviceRecord => ({
    deviceId: row.device_id,
    userId: row.user_id,
    createdAt: new Date(row.created_at),
    certificates: s.certsOfDevice.all(row.device_id).map(toCertificate),
  });

  const putCode = db.transaction((c: Omit<CodeRecord, 'attempts' | 'usedAt'>) => {
    s.putCode.run(c.deviceId, c.userId, c.codeHash, ms(c.createdAt), ms(c.expiresAt), c.maxAttempts);
  });
  const failAttempt = db.transaction((deviceId: string) => s.failAttempt.get(deviceId)?.attempts ?? 0);
  const nextCrl = db.transaction(() => s.nextCrl.get());
  // Writes run as IMMEDIATE transactions: a deferred one that read first could not upgrade to a
  // write while another connection holds the lock (SQLITE_BUSY at once, busy_timeout or not).
  const redeem = db.transaction((deviceId: string, now: number, c: NewCertificate): RedeemOutcome => {
    if (c.deviceId !== deviceId) throw storeError('redeemCode', `the certificate is for device ${c.deviceId}, not ${deviceId}`);
    const code = s.getCode.get(deviceId);
    if (!code) return 'no_code';
    if (code.used_at !== null) return 'code_used';
    if (code.attempts >= code.max_attempts) return 'code_locked';
    if (code.expires_at <= now) return 'code_expired';
    s.markUsed.run(now, deviceId);
    s.upsertDevice.run(deviceId, code.user_id, now);
    insertCertificate(c);
    return 'ok';
  });
  const renew = db.transaction((c: NewCertificate & { supersedes: string }, now: number, revokeOld: boolean) => {
    const old = s.getCert.get(c.supersedes);
    if (!old) throw storeError('recordRenewal', `the superseded certificate ${c.supersedes} is unknown`);
    if (old.device_id !== c.deviceId) throw storeError('recordRenewal', `the superseded certificate ${c.supersedes} belongs to device ${old.device_id}, not ${c.deviceId}`);
    insertCertificate(c);
    if (revokeOld) s.revokeSerial.run(now, 'superseded', c.supersedes);
  });
  const revoke = db.transaction((target: { serialHex: string } | { deviceId: string }, reason: RevocationReason, at: number) => {
    const rows = 'serialHex' in target ? s.revokeSerial.all(at, reason, target.serialHex) : s.revokeDevice.all(at, reason, target.deviceId);
    return rows.map((r) => r.serial_hex);
  });
  // Reads of a device and its certificates share one snapshot.
  const readDevice = db.transaction((deviceId: string) => {
    const row = s.getDevice.get(deviceId);
    return row && deviceOf(row);
  });
  const readDevices = db.transaction((limit: number, offset: number) => s.listDevices.all(limit, offset).map(deviceOf));

  /** Runs `fn` and turns a throw into a rejection with a SidecarError. */
  const run = async <T>(method: string, fn: () => T): Promise<T> => {
    try {
      return fn();
    } catch (cause) {
      if (cause instanceof SidecarError) throw cause;
      throw storeError(method, (cause as Error).message, cause);
    }
  };

  return {
    putCode: (c) => run('putCode', () => putCode.immediate(c)),
    getCode: (deviceId) => run('getCode', () => {
      const row = s.getCode.get(deviceId);
      return row && toCode(row);
    }),
    recordFailedAttempt: (deviceId) => run('recordFailedAttempt', () => failAttempt.immediate(deviceId)),
    redeemCode: (deviceId, now, c) => run('redeemCode', () => redeem.immediate(deviceId, ms(now), c)),
    recordRenewal: (c, now, revokeOld) => run('recordRenewal', () => renew.immediate(c, ms(now), revokeOld)),
    getCertificate: (serialHex) => run('getCertificate', () => {
      const row = s.getCert.get(serialHex);
      return row && toCertificate(row);
    }),
    getDevice: (deviceId) => run('getDevice', () => readDevice(deviceId)),
    listDevices: ({ limit, offset }) => run('listDevices', () => {
      if (!Number.isSafeInteger(limit) || limit < 0 || !Number.isSafeInteger(offset) || offset < 0) {
        throw storeError('listDevices', `limit and offset must be whole numbers >= 0 (got ${limit}, ${offset})`);
      }
      return readDevices(limit, offset);
    }),
    revoke: (target, reason, at) => run('revoke', () => revoke.immediate(target, reason, ms(at))),
    listRevoked: (now) => run('listRevoked', () =>
      s.listRevoked.all(ms(now)).map((r) => ({ serialHex: r.serial_hex, revokedAt: new Date(r.revoked_at), reason: r.revocation_reason } satisfies RevokedEntry))),
    nextCrlNumber: () => run('nextCrlNumber', () => {
      const row = nextCrl.immediate();
      if (!row) throw storeError('nextCrlNumber', 'the crl_number counter is missing');
      return row.value;
    }),
    close: () => run('close', () => {
      if (db.open) db.close();
    }),
  };
}

/** Milliseconds since the epoch; an invalid Date would otherwise be stored as NULL. `run` names the method. */
function ms(d: Date): number {
  const t = d.getTime();
  if (!Number.isFinite(t)) throw new RangeError('an invalid Date cannot be stored');
  return t;
}

function storeError(method: string, detail: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_STORE', `store.${method}`, `store: ${method}: ${detail}`, cause === undefined ? undefined : { cause });
}

function toCode(r: CodeRow): CodeRecord {
  return {
    deviceId: r.device_id,
    userId: r.user_id,
    codeHash: r.code_hash,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    usedAt: r.used_at === null ? null : new Date(r.used_at),
  };
}

function toCertificate(r: CertificateRow): CertificateRecord {
  return {
    serialHex: r.serial_hex,
    deviceId: r.device_id,
    subject: r.subject,
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    fingerprintSha256: r.fingerprint_sha256,
    der: r.der,
    issuedAt: new Date(r.issued_at),
    kind: r.kind,
    supersedes: r.supersedes,
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
    revocationReason: r.revocation_reason,
  };
}
