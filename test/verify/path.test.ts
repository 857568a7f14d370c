// The chain-validation corpus: each case states the path the verifier must build (or the reason it
// must refuse), whatever order or junk the client sends. Models: Go's crypto/x509 path building,
// x509-limbo's look-alike and validity cases.
import t from 'tap';
import { generateKey } from '../../src/pki/index.js';
import { buildVerifiedPath, createTrustIndex } from '../../src/verify/index.js';
import { createChainCorpus, mint, type Minted } from '../fixtures/chain-corpus.js';

const c = await createChainCorpus();
const device = await c.device('urn:device:alpha');
const NOW = Date.now();
const names = (certs: readonly { fingerprint256: string }[], pool: Record<string, Minted>) =>
  certs.map((x) => Object.entries(pool).find(([, m]) => m.x509.fingerprint256 === x.fingerprint256)?.[0] ?? '?');

// Other shapes of hierarchy.
const root2 = await mint({ subject: 'CN=Corpus Root 2', ca: true });
const crossIssuing = await mint({ subject: 'CN=Corpus Issuing CA,O=mtls-sidecar tests', ca: true, issuer: root2, key: c.issuing.key, pathLen: 0 });
const expiredIssuing = await mint({ subject: 'CN=Expired Issuing', ca: true, issuer: c.root, fromDays: -10, toDays: -1 });
const futureIssuing = await mint({ subject: 'CN=Future Issuing', ca: true, issuer: c.root, fromDays: 2, toDays: 30 });
const mid = await mint({ subject: 'CN=Mid CA', ca: true, issuer: c.root });
const low = await mint({ subject: 'CN=Low CA', ca: true, issuer: mid });
const strictMid = await mint({ subject: 'CN=Strict Mid CA', ca: true, issuer: c.root, pathLen: 0 });
const underStrict = await mint({ subject: 'CN=Under Strict', ca: true, issuer: strictMid });
const notCa = await mint({ subject: 'CN=Not A CA', ca: false, issuer: c.root });
const pool: Record<string, Minted> = { root: c.root, issuing: c.issuing, lookAlike: c.lookAlike, root2, crossIssuing, expiredIssuing, futureIssuing, mid, low, strictMid, underStrict, notCa, device };

const leafUnder = (issuer: Minted) => mint({ subject: 'CN=leaf', issuer, uri: 'urn:device:x' });
const leaves = {
  expired: await leafUnder(expiredIssuing),
  future: await leafUnder(futureIssuing),
  deep: await leafUnder(low),
  strict: await leafUnder(underStrict),
  underNotCa: await leafUnder(notCa),
};

interface Case {
  name: string;
  leaf: Minted;
  sent: Minted[];
  bundle?: Minted[];
  depth?: number;
  path?: string[];
  reason?: string;
}

const cases: Case[] = [
  { name: 'honest chain', leaf: device, sent: [c.issuing], path: ['device', 'issuing', 'root'] },
  { name: 'root sent too', leaf: device, sent: [c.issuing, c.root], path: ['device', 'issuing', 'root'] },
  { name: 'look-alike before the real CA: the real one is used', leaf: device, sent: [c.lookAlike, c.issuing], path: ['device', 'issuing', 'root'] },
  { name: 'look-alike after the real CA', leaf: device, sent: [c.issuing, c.lookAlike], path: ['device', 'issuing', 'root'] },
  { name: 'look-alike alone (right names, wrong key)', leaf: device, sent: [c.lookAlike], reason: 'unknown_ca' },
  { name: 'nothing sent, CA not configured', leaf: device, sent: [], reason: 'unknown_ca' },
  { name: 'issuing CA configured, nothing sent: path continues to the root', leaf: device, sent: [], bundle: [c.root, c.issuing], path: ['device', 'issuing', 'root'] },
  { name: 'only the issuing CA configured: not an anchor', leaf: device, sent: [], bundle: [c.issuing], reason: 'unknown_ca' },
  { name: 'cross-signed copy under an untrusted root is skipped', leaf: device, sent: [crossIssuing, c.issuing], path: ['device', 'issuing', 'root'] },
  { name: 'cross-signed copy under the other trusted root', leaf: device, sent: [crossIssuing], bundle: [root2], path: ['device', 'crossIssuing', 'root2'] },
  { name: 'expired intermediate', leaf: leaves.expired, sent: [expiredIssuing], reason: 'expired' },
  { name: 'not-yet-valid intermediate', leaf: leaves.future, sent: [futureIssuing], reason: 'not_yet_valid' },
  { name: 'depth 3 within maxChainDepth 3', leaf: leaves.deep, sent: [low, mid], depth: 3, path: ['?', 'low', 'mid', 'root'] },
  { name: 'depth 3 beyond maxChainDepth 2', leaf: leaves.deep, sent: [low, mid], depth: 2, reason: 'chain_too_long' },
  { name: 'pathLen 0 with a CA below it', leaf: leaves.strict, sent: [underStrict, strictMid], reason: 'unknown_ca' },
  { name: 'issuer without the CA flag', leaf: leaves.underNotCa, sent: [notCa], reason: 'unknown_ca' },
  { name: 'duplicates and junk', leaf: device, sent: [c.lookAlike, c.lookAlike, root2, expiredIssuing, c.issuing, c.issuing], path: ['device', 'issuing', 'root'] },
];

for (const k of cases) {
  t.test(k.name, async (t) => {
    const trust = createTrustIndex((k.bundle ?? [c.root]).map((m) => m.x509));
    const r = buildVerifiedPath(k.leaf.x509, k.sent.map((m) => m.x509), trust, { now: NOW, maxCaCertificates: k.depth ?? 4 });
    if (k.path) {
      t.ok(r.ok, `builds a path (${r.ok ? '' : `${r.reason}: ${r.detail}`})`);
      if (r.ok) t.same(names(r.path.certificates, pool).slice(k.path[0] === '?' ? 1 : 0), k.path[0] === '?' ? k.path.slice(1) : k.path);
    } else {
      t.notOk(r.ok, 'refused');
      if (!r.ok) t.equal(r.reason, k.reason, r.detail);
    }
  });
}

t.test('the path window is the intersection of every validity', async (t) => {
  const short = await mint({ subject: 'CN=Short CA', ca: true, issuer: c.root, toDays: 2 });
  const leaf = await leafUnder(short);
  const r = buildVerifiedPath(leaf.x509, [short.x509], createTrustIndex([c.root.x509]), { now: NOW, maxCaCertificates: 4 });
  t.ok(r.ok);
  if (r.ok) t.equal(r.path.validUntilMs, Date.parse(short.x509.validTo), 'ends when the intermediate ends, before the leaf');
});

t.test('a flood of look-alikes is bounded, not exponential', async (t) => {
  const flood: Minted[] = [];
  for (let i = 0; i < 80; i++) {
    const key = await generateKey('p256');
    flood.push(await mint({ subject: 'CN=Corpus Issuing CA,O=mtls-sidecar tests', ca: true, key, issuer: { ...c.root, key }, ski: c.issuing.ski, aki: c.root.ski }));
  }
  const started = performance.now();
  const r = buildVerifiedPath(device.x509, flood.map((m) => m.x509), createTrustIndex([c.root.x509]), { now: NOW, maxCaCertificates: 4 });
  t.notOk(r.ok, 'refused');
  if (!r.ok) t.equal(r.reason, 'unknown_ca', r.detail);
  t.ok(performance.now() - started < 2_000, 'within the signature budget');
});
