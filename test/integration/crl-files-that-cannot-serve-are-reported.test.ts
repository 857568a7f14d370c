// A configured CRL file that is missing, garbage or signed by nobody trusted leaves every client
// refused (fail-closed) — so check-config refuses it, naming the field, and /readyz says not ready.
// A CRL of an issuer not in the bundle is fine (it may be a client-sent intermediate's).
// With workers, the primary's /readyz reports the workers' revocation sources too.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { issueCrl } from '../../src/pki/index.js';
import { mint } from '../fixtures/chain-corpus.js';
import { createTestPki } from '../fixtures/pki.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import { builtCli } from '../fixtures/built.js';

const run = promisify(execFile);
const cli = builtCli();
const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

const nextUpdate = new Date(Date.now() + 86_400_000);
const rogue = await mint({ subject: 'CN=Test Root CA,O=mtls-sidecar tests', ca: true }); // the root's name, another key
const files = {
  good: pki.write('good.crl', (await issueCrl({ issuer: pki.root, nextUpdate })).pem),
  intermediate: pki.write('intermediate.crl', (await issueCrl({ issuer: pki.intermediate, nextUpdate })).pem),
  missing: join(pki.dir, 'missing.crl'),
  garbage: pki.write('garbage.crl', 'this is not a CRL\n'),
  forged: pki.write('forged.crl', (await issueCrl({ issuer: rogue, nextUpdate })).pem),
};

async function checkConfig(crl: string) {
  const file = pki.write(
    `crl-cfg-${Math.random().toString(36).slice(2)}.yaml`,
    `version: 1\ntls:\n  cert: ${pki.serverCertFile}\n  key: ${pki.serverKeyFile}\nclientAuth:\n  caBundle: [${pki.caBundleFile}]\nupstream:\n  url: http://127.0.0.1:9\nrevocation:\n  mode: crl\n  crl:\n    files: [${crl}]\n`,
  );
  try {
    const { stdout } = await run(process.execPath, [cli, 'check-config', file], { timeout: 20_000 });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, out: e.stderr };
  }
}

async function readiness(crl: string) {
  const sc = await startTestSidecar(pki, echo.url, { revocation: { mode: 'crl', crl: { files: [crl], fetchDistributionPoints: false } } });
  try {
    const r = await fetch(`${sc.adminUrl}/readyz`);
    return { status: r.status, body: (await r.json()) as { checks: Record<string, boolean> } };
  } finally {
    await sc.close();
  }
}

for (const [name, ok] of [['good', true], ['intermediate', true], ['missing', false], ['garbage', false], ['forged', false]] as const) {
  t.test(`${name} CRL file`, async (t) => {
    const c = await checkConfig(files[name]);
    if (ok) t.equal(c.code, 0, `check-config ok: ${c.out}`);
    else {
      t.equal(c.code, 2, 'check-config exits 2');
      t.match(c.out, /revocation\.crl\.files\[0\]/, `names the field: ${c.out.trim()}`);
    }
    const r = await readiness(files[name]);
    t.equal(r.status, ok ? 200 : 503, `/readyz ${ok ? 'ready' : 'not ready'}`);
    t.equal(r.body.checks.revocationSourcesLoaded, ok);
  });
}

t.test('a CRL file broken after a good load keeps readiness: its last CRL is still in use', async (t) => {
  const file = pki.write('later-broken.crl', (await issueCrl({ issuer: pki.root, nextUpdate })).pem);
  const sc = await startTestSidecar(pki, echo.url, { revocation: { mode: 'crl', crl: { files: [file], filePollIntervalSeconds: 1, fetchDistributionPoints: false } } });
  t.teardown(() => sc.close());
  t.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200, 'ready after the good load');
  pki.write('later-broken.crl', 'truncated by a bad deploy\n');
  await new Promise((r) => setTimeout(r, 2_500));
  t.ok(sc.logs.some((l) => String(l.msg).startsWith('CRL rejected')), 'the broken file was read and refused');
  t.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200, 'still ready: the last good CRL answers');
});

// With workers the primary serves /readyz; it must carry the workers' revocation check too.
for (const [name, ok] of [['garbage', false], ['good', true]] as const) {
  t.test(`${name} CRL file with workers: 2: the primary's /readyz says so`, async (t) => {
    const sc = await startCliSidecar(pki, echo.url, { workers: 2, revocation: { mode: 'crl', crl: { files: [files[name]], fetchDistributionPoints: false } } });
    t.teardown(() => void process.kill(-sc.child.pid!, 'SIGKILL'));
    let body: { ready: boolean; checks: Record<string, boolean> } = { ready: false, checks: {} };
    let status = 0;
    for (let i = 0; i < 150 && !body.checks.workersListening; i++) {
      const r = await fetch(`${sc.adminUrl}/readyz`);
      [status, body] = [r.status, (await r.json()) as typeof body];
      if (!body.checks.workersListening) await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(body.checks.workersListening, 'both workers listen');
    t.equal(body.checks.revocationSourcesLoaded, ok, `revocationSourcesLoaded: ${JSON.stringify(body.checks)}`);
    t.equal(status, ok ? 200 : 503);
  });
}
