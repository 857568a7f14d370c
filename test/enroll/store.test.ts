// The SQLite CaStore against a real file in a temp dir: every method, each redeem outcome, races
// between two connections, persistence across reopen and across a SIGKILLed writer.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { openSqliteStore, type CaStore, type NewCertificate } from '../../src/enroll/store/index.js';
import { SidecarError } from '../../src/errors.js';
import { built } from '../fixtures/built.js';

const T0 = Date.UTC(2030, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const DAY = 86_400;

let serial = 0;
/** A certificate with a fresh serial and fingerprint. */
function cert(deviceId: string, over: Partial<NewCertificate> = {}): NewCertificate {
  const n = ++serial;
  return {
    serialHex: `5e${n.toString(16)}`,
    deviceId,
    subject: `CN=${deviceId}`,
    notBefore: at(0),
    notAfter: at(30 * DAY),
    fingerprintSha256: n.toString(16).padStart(64, '0'),
    der: Buffer.from([0x30, 0x03, 0x02, 0x01, n & 0xff]),
    issuedAt: at(0),
    kind: 'enroll',
    supersedes: null,
    ...over,
  };
}

function code(deviceId: string, over: { userId?: string | null; expiresAt?: Date; maxAttempts?: number; createdAt?: Date } = {}) {
  return { deviceId, userId: 'user-1', codeHash: `hash-${deviceId}`, createdAt: at(0), expiresAt: at(600), maxAttempts: 3, ...over };
}

function file(t: Test): string {
  return join(t.testdir(), 'ca.db');
}

function open(t: Test, path = file(t)): CaStore {
  const store = openSqliteStore(path);
  t.teardown(() => store.close());
  return store;
}

/** Enrolls a device; resolves to its certificate. */
async function enrolled(store: CaStore, deviceId: string, over: Partial<NewCertificate> = {}) {
  const c = cert(deviceId, over);
  await store.putCode(code(deviceId));
  if ((await store.redeemCode(deviceId, at(1), c)) !== 'ok') throw new Error('enroll failed');
  return c;
}

const storeError = (reason: string | RegExp) => ({ name: 'SidecarError', code: 'ERR_STORE', fault: reason });

t.test('a new file is created in WAL mode at schema version 1; :memory: works too', async (t) => {
  const path = file(t);
  await open(t, path).close();
  const raw = new Database(path, { readonly: true });
  t.teardown(() => raw.close());
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(raw.pragma('user_version', { simple: true }), 1);
  const tables = raw.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").all().map((r) => r.name);
  t.match(tables, ['certificates', 'certificates_device_id', 'certificates_revoked_at', 'codes', 'devices', 'meta']);
  const mem = open(t, ':memory:');
  t.equal(await mem.nextCrlNumber(), 1n);
});

t.test('an existing version-0 database is migrated; reopening a current one changes nothing', async (t) => {
  const path = file(t);
  new Database(path).close(); // an empty database: user_version 0
  const store = open(t, path);
  await enrolled(store, 'dev-a');
  await store.close();
  const again = open(t, path);
  t.equal((await again.getDevice('dev-a'))?.certificates.length, 1);
});

t.test('a schema newer than this code knows is refused, naming both versions', async (t) => {
  const path = file(t);
  const raw = new Database(path);
  raw.pragma('user_version = 2');
  raw.close();
  t.throws(() => openSqliteStore(path), { ...storeError('store.schema'), message: /schema version 2, newer than this program knows \(1\)/ });
  const check = new Database(path);
  t.equal(check.pragma('user_version', { simple: true }), 2, 'left unchanged');
  check.close();
});

t.test('a database in a directory that does not exist fails clearly, creating nothing', async (t) => {
  const dir = join(t.testdir(), 'missing');
  const path = join(dir, 'ca.db');
  t.throws(() => openSqliteStore(path), { ...storeError('store.path'), message: new RegExp(`cannot open the database ${path}: .*directory does not exist`) });
  t.notOk(existsSync(dir));
});

t.test('a file that is not a database fails clearly', async (t) => {
  const path = join(t.testdir(), 'ca.db');
  writeFileSync(path, 'this is not sqlite, just some text that is long enough to have a header'.repeat(20));
  t.throws(() => openSqliteStore(path), { ...storeError('store.path'), message: /cannot open the database .*not a database/ });
});

t.test('codes: put, get, replace; failed attempts are counted', async (t) => {
  const store = open(t);
  t.equal(await store.getCode('dev-a'), undefined);
  t.equal(await store.recordFailedAttempt('dev-a'), 0, 'no code: 0, and nothing created');
  t.equal(await store.getCode('dev-a'), undefined);

  await store.putCode(code('dev-a'));
  t.same(await store.getCode('dev-a'), { ...code('dev-a'), attempts: 0, usedAt: null });
  t.equal(await store.recordFailedAttempt('dev-a'), 1);
  t.equal(await store.recordFailedAttempt('dev-a'), 2);
  t.equal((await store.getCode('dev-a'))?.attempts, 2);

  t.equal(await store.redeemCode('dev-a', at(5), cert('dev-a')), 'ok');
  t.same((await store.getCode('dev-a'))?.usedAt, at(5), 'a spent code stays readable');

  const replacement = code('dev-a', { userId: null, createdAt: at(100), expiresAt: at(900), maxAttempts: 5 });
  await store.putCode({ ...replacement, codeHash: 'hash-2' });
  t.same(await store.getCode('dev-a'), { ...replacement, codeHash: 'hash-2', attempts: 0, usedAt: null }, 'the new code replaces the spent one, attempts reset');
});

t.test('redeemCode: ok records the code as used, the device with the code\'s user, and the certificate', async (t) => {
  const store = open(t);
  await store.putCode(code('dev-a', { userId: 'alice' }));
  const c = cert('dev-a');
  t.equal(await store.redeemCode('dev-a', at(10), c), 'ok');
  t.same((await store.getCode('dev-a'))?.usedAt, at(10));
  const device = await store.getDevice('dev-a');
  t.same(device, { deviceId: 'dev-a', userId: 'alice', createdAt: at(10), certificates: [{ ...c, revokedAt: null, revocationReason: null }] });
  const got = await store.getCertificate(c.serialHex);
  t.ok(got && Buffer.isBuffer(got.der) && got.der.equals(c.der), 'the DER comes back byte for byte');
});

t.test('redeemCode: each refusal writes nothing', async (t) => {
  const store = open(t);
  const refused = async (deviceId: string, now: Date, expected: string) => {
    const c = cert(deviceId);
    const before = await store.getCode(deviceId);
    t.equal(await store.redeemCode(deviceId, now, c), expected, `${deviceId}: ${expected}`);
    t.equal(await store.getCertificate(c.serialHex), undefined, `${deviceId}: no certificate recorded`);
    t.same(await store.getCode(deviceId), before, `${deviceId}: code unchanged`);
  };
  await refused('dev-none', at(1), 'no_code');
  t.equal(await store.getDevice('dev-none'), undefined, 'no device created');

  await store.putCode(code('dev-used'));
  t.equal(await store.redeemCode('dev-used', at(1), cert('dev-used')), 'ok');
  await refused('dev-used', at(2), 'code_used');

  await store.putCode(code('dev-locked', { maxAttempts: 2 }));
  await store.recordFailedAttempt('dev-locked');
  await store.recordFailedAttempt('dev-locked');
  await refused('dev-locked', at(1), 'code_locked');
  t.equal(await store.getDevice('dev-locked'), undefined);

  await store.putCode(code('dev-exp', { expiresAt: at(600) }));
  await refused('dev-exp', at(600), 'code_expired'); // expiresAt is exclusive
  t.equal(await store.redeemCode('dev-exp', at(599), cert('dev-exp')), 'ok', 'a millisecond before is fine');

  // Both spent and locked: "used" is reported first.
  await store.putCode(code('dev-both', { maxAttempts: 1 }));
  t.equal(await store.redeemCode('dev-both', at(1), cert('dev-both')), 'ok');
  await store.recordFailedAttempt('dev-both');
  await refused('dev-both', at(2), 'code_used');
});

t.test('redeemCode rejects a certificate for another device, or a duplicate fingerprint, writing nothing', async (t) => {
  const store = open(t);
  await store.putCode(code('dev-a'));
  await t.rejects(store.redeemCode('dev-a', at(1), cert('dev-b')), storeError('store.redeemCode'));
  const first = await enrolled(store, 'dev-b');
  const dup = cert('dev-a', { fingerprintSha256: first.fingerprintSha256 });
  await t.rejects(store.redeemCode('dev-a', at(1), dup), { ...storeError('store.redeemCode'), message: /UNIQUE/ });
  t.equal((await store.getCode('dev-a'))?.usedAt, null, 'the code is still unspent');
  t.equal(await store.getDevice('dev-a'), undefined, 'no device');
  t.equal(await store.redeemCode('dev-a', at(2), cert('dev-a')), 'ok', 'and can still be redeemed');
});

t.test('re-enrollment with a new code: the device is kept, its user follows the code, newest certificate first', async (t) => {
  const store = open(t);
  const first = await enrolled(store, 'dev-a');
  await store.putCode(code('dev-a', { userId: 'bob' }));
  const second = cert('dev-a', { issuedAt: at(50) });
  t.equal(await store.redeemCode('dev-a', at(50), second), 'ok');
  let device = await store.getDevice('dev-a');
  t.equal(device?.userId, 'bob');
  t.same(device?.createdAt, at(1), 'created when first enrolled');
  t.same(device?.certificates.map((c) => c.serialHex), [second.serialHex, first.serialHex]);

  await store.putCode(code('dev-a', { userId: null }));
  t.equal(await store.redeemCode('dev-a', at(60), cert('dev-a', { issuedAt: at(60) })), 'ok');
  device = await store.getDevice('dev-a');
  t.equal(device?.userId, 'bob', 'a code without a user keeps the known one');
});

t.test('two racing redemptions of one code, on two connections: exactly one is recorded', async (t) => {
  const path = file(t);
  const a = open(t, path);
  const b = open(t, path);
  await a.putCode(code('dev-a'));
  const ca = cert('dev-a');
  const cb = cert('dev-a');
  const outcomes = await Promise.all([a.redeemCode('dev-a', at(1), ca), b.redeemCode('dev-a', at(1), cb)]);
  t.same([...outcomes].sort(), ['code_used', 'ok']);
  const device = await b.getDevice('dev-a');
  t.equal(device?.certificates.length, 1);
  const winner = outcomes[0] === 'ok' ? ca : cb;
  const loser = outcomes[0] === 'ok' ? cb : ca;
  t.equal(device?.certificates[0]?.serialHex, winner.serialHex);
  t.equal(await a.getCertificate(loser.serialHex), undefined, 'the loser\'s certificate was never recorded');
});

t.test('recordRenewal records the new certificate and optionally revokes the old one', async (t) => {
  const store = open(t);
  const old = await enrolled(store, 'dev-a');
  const keep = cert('dev-a', { kind: 'renew', supersedes: old.serialHex, issuedAt: at(20) });
  await store.recordRenewal({ ...keep, supersedes: old.serialHex }, at(20), false);
  t.same(await store.getCertificate(keep.serialHex), { ...keep, revokedAt: null, revocationReason: null });
  t.equal((await store.getCertificate(old.serialHex))?.revokedAt, null, 'not revoked when not asked');

  const next = cert('dev-a', { kind: 'renew', supersedes: keep.serialHex, issuedAt: at(30) });
  await store.recordRenewal({ ...next, supersedes: keep.serialHex }, at(30), true);
  const superseded = await store.getCertificate(keep.serialHex);
  t.same([superseded?.revokedAt, superseded?.revocationReason], [at(30), 'superseded']);
  t.same((await store.getDevice('dev-a'))?.certificates.map((c) => c.serialHex), [next.serialHex, keep.serialHex, old.serialHex]);

  // An already revoked predecessor keeps its first revocation.
  await store.revoke({ serialHex: next.serialHex }, 'keyCompromise', at(40));
  const last = cert('dev-a', { kind: 'renew', supersedes: next.serialHex, issuedAt: at(50) });
  await store.recordRenewal({ ...last, supersedes: next.serialHex }, at(50), true);
  const first = await store.getCertificate(next.serialHex);
  t.same([first?.revokedAt, first?.revocationReason], [at(40), 'keyCompromise']);
});

t.test('recordRenewal rejects an unknown or foreign predecessor, writing nothing', async (t) => {
  const store = open(t);
  const other = await enrolled(store, 'dev-b');
  await enrolled(store, 'dev-a');
  const orphan = cert('dev-a', { kind: 'renew', supersedes: 'ffff' });
  await t.rejects(store.recordRenewal({ ...orphan, supersedes: 'ffff' }, at(5), true), { ...storeError('store.recordRenewal'), message: /ffff is unknown/ });
  t.equal(await store.getCertificate(orphan.serialHex), undefined);
  const foreign = cert('dev-a', { kind: 'renew', supersedes: other.serialHex });
  await t.rejects(store.recordRenewal({ ...foreign, supersedes: other.serialHex }, at(5), true), { ...storeError('store.recordRenewal'), message: /belongs to device dev-b/ });
  t.equal(await store.getCertificate(foreign.serialHex), undefined);
  t.equal((await store.getCertificate(other.serialHex))?.revokedAt, null, 'the other device\'s certificate was not revoked');
});

t.test('getDevice and listDevices: unknown is undefined; oldest first; paged', async (t) => {
  const store = open(t);
  t.equal(await store.getDevice('nope'), undefined);
  t.equal(await store.getCertificate('abc'), undefined);
  for (const [i, id] of ['dev-c', 'dev-a', 'dev-b'].entries()) {
    await store.putCode(code(id));
    await store.redeemCode(id, at(i + 1), cert(id));
  }
  t.same((await store.listDevices({ limit: 10, offset: 0 })).map((d) => d.deviceId), ['dev-c', 'dev-a', 'dev-b']);
  const page = await store.listDevices({ limit: 1, offset: 1 });
  t.same(page.map((d) => [d.deviceId, d.certificates.length]), [['dev-a', 1]]);
  t.same(await store.listDevices({ limit: 5, offset: 3 }), []);
  t.same(await store.listDevices({ limit: 0, offset: 0 }), []);
  await t.rejects(store.listDevices({ limit: -1, offset: 0 }), storeError('store.listDevices'));
  await t.rejects(store.listDevices({ limit: 1, offset: 0.5 }), storeError('store.listDevices'));
});

t.test('revoke by serial: newly revoked only; the first revocation stands; unknown is []', async (t) => {
  const store = open(t);
  const c = await enrolled(store, 'dev-a');
  t.same(await store.revoke({ serialHex: c.serialHex }, 'keyCompromise', at(100)), [c.serialHex]);
  t.same(await store.revoke({ serialHex: c.serialHex }, 'unspecified', at(200)), []);
  const got = await store.getCertificate(c.serialHex);
  t.same([got?.revokedAt, got?.revocationReason], [at(100), 'keyCompromise']);
  t.same(await store.revoke({ serialHex: 'dead' }, 'unspecified', at(100)), []);
});

t.test('revoke by device: every unrevoked certificate of that device only; unknown device is []', async (t) => {
  const store = open(t);
  const a1 = await enrolled(store, 'dev-a');
  const a2 = cert('dev-a', { kind: 'renew', supersedes: a1.serialHex });
  await store.recordRenewal({ ...a2, supersedes: a1.serialHex }, at(10), false);
  const a3 = cert('dev-a', { kind: 'renew', supersedes: a2.serialHex });
  await store.recordRenewal({ ...a3, supersedes: a2.serialHex }, at(11), false);
  const b1 = await enrolled(store, 'dev-b');
  await store.revoke({ serialHex: a1.serialHex }, 'superseded', at(50));
  t.same((await store.revoke({ deviceId: 'dev-a' }, 'cessationOfOperation', at(100))).sort(), [a2.serialHex, a3.serialHex].sort());
  const reasons = (await store.getDevice('dev-a'))?.certificates.map((c) => [c.serialHex, c.revocationReason, c.revokedAt?.getTime()]);
  t.same(reasons?.sort(), [
    [a1.serialHex, 'superseded', at(50).getTime()],
    [a2.serialHex, 'cessationOfOperation', at(100).getTime()],
    [a3.serialHex, 'cessationOfOperation', at(100).getTime()],
  ].sort());
  t.equal((await store.getCertificate(b1.serialHex))?.revokedAt, null, 'another device is untouched');
  t.same(await store.revoke({ deviceId: 'dev-a' }, 'unspecified', at(200)), [], 'nothing left to revoke');
  t.same(await store.revoke({ deviceId: 'nope' }, 'unspecified', at(200)), []);
});

t.test('listRevoked: revoked and not yet expired at now (notAfter == now still listed)', async (t) => {
  const store = open(t);
  const live = await enrolled(store, 'dev-a', { notAfter: at(1000) });
  const edge = await enrolled(store, 'dev-b', { notAfter: at(500) });
  const gone = await enrolled(store, 'dev-c', { notAfter: at(499) });
  await enrolled(store, 'dev-d', { notAfter: at(1000) }); // never revoked
  await store.revoke({ serialHex: edge.serialHex }, 'keyCompromise', at(20));
  await store.revoke({ serialHex: live.serialHex }, 'privilegeWithdrawn', at(30));
  await store.revoke({ serialHex: gone.serialHex }, 'unspecified', at(10));
  t.same(await store.listRevoked(at(500)), [
    { serialHex: edge.serialHex, revokedAt: at(20), reason: 'keyCompromise' },
    { serialHex: live.serialHex, revokedAt: at(30), reason: 'privilegeWithdrawn' },
  ]);
  t.same((await store.listRevoked(at(0))).length, 3);
  t.same(await store.listRevoked(at(2000)), []);
});

t.test('CRL numbers start at 1, are bigints, and keep increasing across a reopen', async (t) => {
  const path = file(t);
  const store = openSqliteStore(path);
  t.equal(await store.nextCrlNumber(), 1n);
  t.equal(await store.nextCrlNumber(), 2n);
  await store.close();
  const again = open(t, path);
  t.equal(await again.nextCrlNumber(), 3n);
});

t.test('failures are rejections with ERR_STORE, never synchronous throws', async (t) => {
  const store = openSqliteStore(file(t));
  const bad = store.putCode(code('dev-a', { expiresAt: new Date(Number.NaN) }));
  t.type(bad, Promise);
  await t.rejects(bad, { ...storeError('store.putCode'), message: /invalid Date/ });
  t.equal(await store.getCode('dev-a'), undefined);
  await store.close();
  await store.close(); // idempotent
  const closed = store.getCode('dev-a');
  t.type(closed, Promise);
  await t.rejects(closed, storeError('store.getCode'));
  await t.rejects(store.nextCrlNumber(), SidecarError);
});

/** Writes `body` as a script in `dir` for a child node, with `openSqliteStore` of the built dist/ imported. */
function storeScript(dir: string, name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `import { openSqliteStore } from ${JSON.stringify(pathToFileURL(built('enroll/store/index.js')).href)};\n${body}`);
  return file;
}

t.test('a write that resolved survives a SIGKILL of the writer right after', async (t) => {
  // SIGKILL tests the process crash; synchronous = FULL is what covers a power loss (not testable here).
  const dir = t.testdir();
  const path = join(dir, 'ca.db');
  const c = cert('dev-crash');
  const script = storeScript(dir, 'crash.mjs', `
const store = openSqliteStore(process.argv[2]);
const at = (s) => new Date(${T0} + s * 1000);
await store.putCode({ deviceId: 'dev-crash', userId: 'u', codeHash: 'h', createdAt: at(0), expiresAt: at(600), maxAttempts: 3 });
const c = ${JSON.stringify({ ...c, der: c.der.toString('hex') })};
const outcome = await store.redeemCode('dev-crash', at(1), { ...c, notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter), issuedAt: new Date(c.issuedAt), der: Buffer.from(c.der, 'hex') });
if (outcome !== 'ok') throw new Error(outcome);
const revoked = await store.revoke({ serialHex: c.serialHex }, 'keyCompromise', at(2));
if (revoked.length !== 1) throw new Error('not revoked');
process.kill(process.pid, 'SIGKILL');
`);
  const child = spawnSync(process.execPath, [script, path], { encoding: 'utf8', timeout: 30_000 });
  t.equal(child.signal, 'SIGKILL', `the writer was killed (stderr: ${child.stderr})`);
  t.ok(statSync(`${path}-wal`).size > 0, 'the writes were still only in the WAL, never checkpointed');
  const store = open(t, path);
  const got = await store.getCertificate(c.serialHex);
  t.same(got, { ...c, revokedAt: at(2), revocationReason: 'keyCompromise' });
  t.same((await store.getCode('dev-crash'))?.usedAt, at(1));
  t.same(await store.listRevoked(at(3)), [{ serialHex: c.serialHex, revokedAt: at(2), reason: 'keyCompromise' }]);
});

t.test('four processes race to redeem one code: one ok, three code_used, none fails on a busy lock', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'ca.db');
  const setup = open(t, path);
  await setup.putCode(code('dev-race'));
  // Each child opens its own connection, then all start at the same wall-clock instant.
  const script = storeScript(dir, 'race.mjs', `
const [path, n, go] = process.argv.slice(2);
const store = openSqliteStore(path);
while (Date.now() < Number(go)) {}
const c = { serialHex: 'ace' + n, deviceId: 'dev-race', subject: 'CN=x', notBefore: new Date(${T0}), notAfter: new Date(${T0 + 1e9}),
  fingerprintSha256: 'f'.repeat(63) + n, der: Buffer.from([n]), issuedAt: new Date(${T0}), kind: 'enroll', supersedes: null };
try {
  console.log(await store.redeemCode('dev-race', new Date(${T0 + 1000}), c));
} catch (err) {
  console.log('error: ' + err.message);
}
await store.close();
`);
  const go = Date.now() + 1500;
  const results = await Promise.all([1, 2, 3, 4].map((n) => new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [script, path, String(n), String(go)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('close', () => resolve(out.trim()));
  })));
  t.same([...results].sort(), ['code_used', 'code_used', 'code_used', 'ok'], results.join(', '));
  const device = await setup.getDevice('dev-race');
  t.equal(device?.certificates.length, 1, 'exactly one certificate recorded');
  t.equal(device?.certificates[0]?.serialHex, `ace${results.indexOf('ok') + 1}`, 'the winner\'s');
});
