// The CA's one list of revocation reasons (pki/reasons.ts) against the SQLite store's CHECK
// constraint, which spells it out in a migration: every listed reason is stored and read back,
// and a reason outside the list is refused by the database itself.
import { join } from 'node:path';
import t from 'tap';
import { openSqliteStore } from '../../src/enroll/store/index.js';
import { CA_REVOCATION_REASONS, CRL_REASON_CODES } from '../../src/pki/index.js';

const at = (s: number) => new Date(Date.UTC(2030, 0, 1) + s * 1000);

t.test('every CA revocation reason is a CRLReason the store accepts', async (t) => {
  const store = openSqliteStore(join(t.testdir(), 'ca.db'));
  t.teardown(() => store.close());
  const enroll = async (n: number) => {
    const deviceId = `dev-${n}`;
    await store.putCode({ deviceId, userId: null, codeHash: `h-${n}`, createdAt: at(0), expiresAt: at(600), maxAttempts: 3 });
    const redeemed = await store.redeemCode(deviceId, at(1), {
      serialHex: `5e${n}`, deviceId, subject: `CN=${deviceId}`, notBefore: at(0), notAfter: at(86_400), fingerprintSha256: `${n}`.padStart(64, '0'),
      der: Buffer.of(0x30, 0x00), issuedAt: at(1), kind: 'enroll', supersedes: null,
    });
    t.equal(redeemed, 'ok', `${deviceId} enrolled`);
  };
  const reasons = [...CA_REVOCATION_REASONS];
  for (const [n, reason] of reasons.entries()) {
    t.ok(reason in CRL_REASON_CODES, `${reason} is an RFC 5280 CRLReason`);
    await enroll(n);
    t.same(await store.revoke({ serialHex: `5e${n}` }, reason, at(2)), [`5e${n}`], `revoked with ${reason}`);
  }
  t.same((await store.listRevoked(at(3))).map((e) => e.reason).sort(), reasons.sort(), 'each reason read back as written');
  await enroll(99);
  await t.rejects(store.revoke({ serialHex: '5e99' }, 'cACompromise' as never, at(4)), { message: /CHECK constraint failed/ }, 'a reason outside the list is refused by the CHECK constraint');
});
