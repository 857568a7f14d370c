/**
 * The `revocation:` config slice: documented defaults, nested defaults under a partial object,
 * strictness at every level, and value checks; the YAML in the file's header parses to the
 * same defaults.
 */
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { revocationSchema } from '../../src/config/revocation-schema.js';

const DEFAULTS = {
  mode: 'crl-then-ocsp',
  onUnknown: 'fail-closed',
  intermediates: 'if-published',
  maxTrackedCertificates: 100_000,
  crl: {
    files: [],
    urls: [],
    fetchDistributionPoints: true,
    maxDistributionPoints: 100,
    refreshIntervalSeconds: 3,
    filePollIntervalSeconds: 2,
    staleGraceSeconds: 3600,
    fetchTimeoutMs: 10_000,
    maxBytes: 67_108_864,
  },
  ocsp: {
    hash: 'sha1',
    timeoutMs: 2000,
    maxResponseBytes: 65_536,
    maxCacheEntries: 100_000,
    maxCacheTtlSeconds: 3600,
    maxGoodAgeSeconds: 30,
    maxAgeWithoutNextUpdateSeconds: 300,
    negativeCacheSeconds: 30,
    clockSkewSeconds: 300,
    nonce: false,
  },
  feed: { idleTimeoutSeconds: 45, reconnectMinMs: 500, reconnectMaxMs: 30_000 },
};

t.test('an empty slice gets every default', async (t) => {
  t.same(revocationSchema.parse({}), DEFAULTS);
});

t.test('a partial nested object keeps the other nested defaults', async (t) => {
  const parsed = revocationSchema.parse({ crl: { refreshIntervalSeconds: 60 }, ocsp: { nonce: true } });
  t.equal(parsed.crl.refreshIntervalSeconds, 60);
  t.equal(parsed.crl.staleGraceSeconds, 3600);
  t.equal(parsed.ocsp.nonce, true);
  t.equal(parsed.ocsp.timeoutMs, 2000);
});

t.test('unknown keys are errors at every level', async (t) => {
  for (const input of [{ modes: 'crl' }, { crl: { file: ['x'] } }, { ocsp: { timeout: 5 } }]) {
    const r = revocationSchema.safeParse(input);
    t.notOk(r.success, JSON.stringify(input));
    t.equal(r.error?.issues[0]?.code, 'unrecognized_keys');
  }
});

t.test('bad values are refused', async (t) => {
  const bad = [
    { mode: 'crl-only' },
    { onUnknown: 'ignore' },
    { crl: { urls: ['ldap://dir.example/cn=ca'] } },
    { crl: { refreshIntervalSeconds: 0 } },
    { crl: { staleGraceSeconds: -1 } },
    { crl: { fetchTimeoutMs: 1.5 } },
    { ocsp: { overrideUrl: 'not a url' } },
    { ocsp: { hash: 'md5' } },
    { ocsp: { maxCacheEntries: 0 } },
    { ocsp: { maxAgeWithoutNextUpdateSeconds: 0 } },
    { ocsp: { maxAgeWithoutNextUpdateSeconds: 1.5 } },
    { ocsp: { maxGoodAgeSeconds: 0 } },
  ];
  for (const input of bad) t.notOk(revocationSchema.safeParse(input).success, JSON.stringify(input));
  t.ok(revocationSchema.safeParse({ ocsp: { overrideUrl: 'http://ocsp.internal:8080/' } }).success);
});

t.test('the YAML example in the schema file parses to the defaults', async (t) => {
  const source = await readFile(new URL('../../src/config/revocation-schema.ts', import.meta.url), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(source)?.[1];
  t.ok(block, 'found the YAML block');
  const yaml = (block ?? '').replace(/^ \* ?/gm, '');
  const parsed = revocationSchema.parse((parseYaml(yaml) as { revocation: unknown }).revocation);
  t.same(parsed, DEFAULTS);
});
