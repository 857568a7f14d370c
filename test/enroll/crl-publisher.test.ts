/**
 * The device CA's CRL publisher: `openssl crl` (a peer nobody here wrote) verifies what it signs
 * and reads serials, reasons and the CRL number; our own CRL loader accepts it; generations are
 * coalesced and serialised; a failed regeneration keeps the previous CRL; the timer refreshes.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createCrlPublisher, type CrlPublisherOptions } from '../../src/enroll/crl-publisher.js';
import type { RevokedEntry } from '../../src/enroll/store/index.js';
import { generateKey, issueCertificate, issueCrl, randomSerialHex, type KeyAlgorithm, type SigningIdentity } from '../../src/pki/index.js';
import { loadCrls } from '../../src/revocation/crl-load.js';
import { serialKeyFromHex } from '../../src/pki/index.js';
import { createIssuerRegistry } from '../../src/revocation/issuer-registry.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'enroll-crl-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function buildCa(algorithm: KeyAlgorithm): Promise<SigningIdentity> {
  const rootKey = await generateKey(algorithm);
  const root = { ...(await issueCertificate({ subject: 'CN=CRL Test Root', key: rootKey, isCa: true, pathLength: 1 })), key: rootKey };
  const key = await generateKey(algorithm);
  return { ...(await issueCertificate({ subject: `CN=CRL Test Issuing CA ${algorithm}`, key, issuer: root, isCa: true, pathLength: 0 })), key };
}
const ca = await buildCa('p256');

/** A store stand-in: a revoked list the test edits, a CRL number counter, and call counts. */
function fakeStore(initial: RevokedEntry[] = []) {
  const s = {
    revoked: [...initial],
    number: 0n,
    listCalls: 0,
    failNext: undefined as Error | undefined,
    gate: undefined as Promise<void> | undefined,
    listRevoked: async (): Promise<RevokedEntry[]> => {
      s.listCalls++;
      const snapshot = [...s.revoked];
      if (s.gate) await s.gate;
      const fail = s.failNext;
      s.failNext = undefined;
      if (fail) throw fail;
      return snapshot;
    },
    nextCrlNumber: async () => ++s.number,
  };
  return s;
}
const entry = (reason: RevokedEntry['reason'], revokedAt = new Date('2024-01-02T03:04:05Z')): RevokedEntry => ({ serialHex: randomSerialHex(), revokedAt, reason });
const publisherOf = (store: ReturnType<typeof fakeStore>, extra: Partial<CrlPublisherOptions> = {}) =>
  createCrlPublisher({ issuer: ca, listRevoked: store.listRevoked, nextCrlNumber: store.nextCrlNumber, validitySeconds: 3_600, ...extra });

async function opensslCrl(der: Buffer, caPem: string): Promise<string> {
  const stamp = Math.random().toString(36).slice(2);
  await writeFile(join(dir, `${stamp}.der`), der);
  await writeFile(join(dir, `${stamp}-ca.pem`), caPem);
  try {
    const { stdout, stderr } = await run('openssl', ['crl', '-in', `${stamp}.der`, '-inform', 'DER', '-CAfile', `${stamp}-ca.pem`, '-noout', '-text'], { cwd: dir });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

const OPENSSL_REASON: Record<RevokedEntry['reason'], string> = {
  unspecified: '',
  keyCompromise: 'Key Compromise',
  affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  certificateHold: 'Certificate Hold',
  privilegeWithdrawn: 'Privilege Withdrawn',
};

t.test('openssl crl verifies it and reads every serial, reason, the CRL number and the dates', async (t) => {
  const entries = (Object.keys(OPENSSL_REASON) as RevokedEntry['reason'][]).map((r) => entry(r));
  const store = fakeStore(entries);
  store.number = 41n;
  const publisher = publisherOf(store, { now: () => new Date('2030-05-06T07:08:09.500Z') });
  const crl = await publisher.current();
  t.equal(crl.crlNumber, 42n);
  t.equal(crl.thisUpdate.toISOString(), '2030-05-06T07:08:09.000Z', 'whole seconds, as encoded');
  t.equal(crl.nextUpdate.getTime() - crl.thisUpdate.getTime(), 3_600_000);
  const text = await opensslCrl(crl.der, ca.pem);
  t.match(text, /verify OK/);
  t.match(text, /X509v3 CRL Number:\s+42\n/);
  t.match(text, /Last Update: May {2}6 07:08:09 2030 GMT/);
  t.match(text, /Next Update: May {2}6 08:08:09 2030 GMT/);
  t.match(text, /X509v3 Authority Key Identifier/);
  for (const e of entries) {
    const block = new RegExp(`Serial Number: ${e.serialHex.toUpperCase()}\\n\\s+Revocation Date: Jan {2}2 03:04:05 2024 GMT\\n(?<rest>(?:\\s{8,}.*\\n)*)`).exec(text);
    t.ok(block, `${e.reason}: ${e.serialHex} listed with its date`);
    const rest = block?.groups?.rest ?? '';
    if (e.reason === 'unspecified') t.notMatch(rest, /CRL Reason Code/, 'unspecified is not encoded');
    else t.match(rest, new RegExp(`X509v3 CRL Reason Code:\\s+${OPENSSL_REASON[e.reason]}`), `${e.reason} encoded`);
  }
});

t.test('our own CRL loader accepts it', async (t) => {
  const revoked = [entry('keyCompromise'), entry('superseded')];
  const store = fakeStore(revoked);
  const crl = await publisherOf(store).current();
  const issuers = createIssuerRegistry([new X509Certificate(ca.der)], 4);
  const { crls, failures } = await loadCrls(crl.der, { issuers, reuse: () => undefined, sliceMs: 5 });
  t.same(failures, []);
  const loaded = crls[0]!;
  t.equal(loaded.crlNumber, '01');
  t.equal(loaded.nextUpdate - loaded.thisUpdate, 3_600_000);
  for (const r of revoked) t.ok(loaded.serials.has(serialKeyFromHex(r.serialHex)), `${r.serialHex} revoked`);
  t.notOk(loaded.serials.has(serialKeyFromHex(randomSerialHex())), 'another serial is not');
});

t.test('P-384 and RSA issuers sign CRLs openssl verifies', async (t) => {
  for (const algorithm of ['p384', 'rsa2048'] as const) {
    const issuer = await buildCa(algorithm);
    const store = fakeStore([entry('keyCompromise')]);
    const crl = await createCrlPublisher({ issuer, listRevoked: store.listRevoked, nextCrlNumber: store.nextCrlNumber, validitySeconds: 60 }).current();
    const text = await opensslCrl(crl.der, issuer.pem);
    t.match(text, /verify OK/, `${algorithm}: verify OK`);
    t.match(text, algorithm === 'p384' ? /ecdsa-with-SHA384/ : /sha256WithRSAEncryption/);
  }
});

t.test('the first CRL is generated once for concurrent callers; regenerate() picks up a revocation', async (t) => {
  const store = fakeStore([entry('keyCompromise')]);
  const publisher = publisherOf(store);
  const [a, b, c] = await Promise.all([publisher.current(), publisher.current(), publisher.current()]);
  t.equal(store.listCalls, 1, 'one generation');
  t.equal(a, b);
  t.equal(b, c);
  t.equal(await publisher.current(), a, 'served from memory afterwards');
  const late = entry('superseded');
  store.revoked.push(late);
  await publisher.regenerate();
  const next = await publisher.current();
  t.equal(next.crlNumber, a.crlNumber + 1n);
  t.match(await opensslCrl(next.der, ca.pem), new RegExp(`Serial Number: ${late.serialHex.toUpperCase()}`));
});

t.test('regenerations during a generation coalesce into one that starts after it and sees the newest state', async (t) => {
  const store = fakeStore();
  const publisher = publisherOf(store);
  await publisher.current();
  let open!: () => void;
  store.gate = new Promise<void>((resolve) => (open = resolve));
  const first = publisher.regenerate(); // reads the store, then waits at the gate
  const added = entry('keyCompromise');
  store.revoked.push(added); // revoked after the first generation read the store
  const second = publisher.regenerate();
  const third = publisher.regenerate();
  t.equal(second, third, 'calls during a generation share the follow-up');
  t.not(first, second);
  store.gate = undefined;
  open();
  await Promise.all([first, second, third]);
  t.equal(store.listCalls, 3, 'initial + running + one follow-up');
  const crl = await publisher.current();
  t.equal(crl.crlNumber, 3n);
  t.match(await opensslCrl(crl.der, ca.pem), new RegExp(`Serial Number: ${added.serialHex.toUpperCase()}`), 'the late revocation is listed');
});

t.test('a failed regeneration keeps the previous CRL and reports the error', async (t) => {
  const errors: unknown[] = [];
  const store = fakeStore();
  const publisher = publisherOf(store, {
    onError: (err) => {
      errors.push(err);
      throw new Error('a throwing observer changes nothing');
    },
  });
  store.failNext = new Error('database is locked');
  await t.rejects(publisher.current(), /database is locked/, 'no CRL yet: current() rejects');
  const first = await publisher.current();
  store.failNext = new Error('database is locked again');
  await t.rejects(publisher.regenerate(), /locked again/);
  t.equal(await publisher.current(), first, 'the previous CRL stays served');
  t.match(errors, [{ message: 'database is locked' }, { message: 'database is locked again' }]);
  await publisher.regenerate();
  t.ok((await publisher.current()).crlNumber > first.crlNumber, 'recovers on the next regeneration');
});

t.test('the timer regenerates at half the validity, retries after a failure, and stops', async (t) => {
  const errors: unknown[] = [];
  const store = fakeStore();
  const publisher = publisherOf(store, { validitySeconds: 1, onError: (err) => errors.push(err) });
  t.teardown(() => publisher.stop());
  const first = await publisher.current();
  publisher.start();
  publisher.start(); // idempotent
  const waitFor = async (what: () => boolean, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end && !what(); ) await new Promise((r) => setTimeout(r, 20));
    return what();
  };
  t.ok(await waitFor(() => store.number > first.crlNumber, 1_500), 'regenerated without being asked');
  store.failNext = new Error('transient');
  t.ok(await waitFor(() => errors.length === 1, 1_500), 'a timed failure is reported');
  const afterFailure = store.number;
  t.ok(await waitFor(() => store.number > afterFailure, 2_500), 'and retried');
  publisher.stop();
  const stopped = store.listCalls;
  await new Promise((r) => setTimeout(r, 1_200));
  t.equal(store.listCalls, stopped, 'nothing after stop()');
});

t.test('issueCrl: CRL number range; callers without the new fields still work', async (t) => {
  const nextUpdate = new Date(Date.now() + 60_000);
  const big = await issueCrl({ issuer: ca, nextUpdate, crlNumber: 2n ** 159n - 1n });
  t.match(await opensslCrl(big.der, ca.pem), /X509v3 CRL Number:\s+(?:0x)?7F{39}/i);
  await t.rejects(issueCrl({ issuer: ca, nextUpdate, crlNumber: -1n }), RangeError);
  await t.rejects(issueCrl({ issuer: ca, nextUpdate, crlNumber: 2n ** 160n }), RangeError);
  await t.rejects(issueCrl({ issuer: ca, nextUpdate, revoked: [{ serialHex: '0a' }, { serialHex: '000A' }] }), /listed twice/);
  const plain = await opensslCrl((await issueCrl({ issuer: ca, nextUpdate, revoked: [{ serialHex: '0a1b' }] })).der, ca.pem);
  t.match(plain, /verify OK/);
  t.notMatch(plain, /CRL Number|Reason Code/);
  t.throws(() => createCrlPublisher({ issuer: ca, listRevoked: async () => [], nextCrlNumber: async () => 1n, validitySeconds: 0 }), RangeError);
});
