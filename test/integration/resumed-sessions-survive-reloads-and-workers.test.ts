// A resumed TLS session carries only the device certificate, not the intermediate the device sent
// at its full handshake. The verified path must still be rebuilt: after a reload that changed the
// CA bundle (same process), and on another worker than the one that saw the full handshake
// (workers share ticket keys, and relay path hints). Honest clients must not be locked out.
import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { mint } from '../fixtures/chain-corpus.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  t.test(`${version}: a session resumed after a reload that added a CA keeps its path`, async (t) => {
    const v = { minVersion: version, maxVersion: version };
    const bundle = pki.write(`resume-bundle-${version}.pem`, pki.rootPem);
    const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [bundle], failureMode: 'http' } });
    t.teardown(() => sc.close());
    const client = await pki.client({ deviceId: `resume-${version}` });
    const first = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, ...v });
    t.equal(first.status, 200, 'full handshake with the intermediate sent');
    writeFileSync(bundle, pki.rootPem + (await mint({ subject: `CN=Added ${version}`, ca: true })).pem);
    sc.sidecar.reload('test');
    const second = await call({ port: sc.port, ca: pki.rootPem, session: first.session, ...v });
    t.equal(second.reused, true, 'resumed');
    t.equal(second.status, 200, 'still verified');
  });
}

t.test('sessions resume on every worker', { skip: availableParallelism() < 2 ? 'needs 2 cores' : false }, async (t) => {
  const sc = await startCliSidecar(pki, echo.url, { workers: 2, clientAuth: { caBundle: [pki.caBundleFile], failureMode: 'http' } });
  t.teardown(() => sc.child.kill('SIGKILL'));
  await sc.waitForLog((l) => l.event === 'primary');
  for (let i = 0; i < 100 && sc.logs.filter((l) => l.event === 'listening').length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  const client = await pki.client({ deviceId: 'resume-workers' });
  const first = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  t.equal(first.status, 200);
  await new Promise((r) => setTimeout(r, 300)); // the hint travels worker → primary → worker
  const statuses: Array<number | undefined> = [];
  for (let i = 0; i < 12; i++) {
    const r = await call({ port: sc.port, ca: pki.rootPem, session: first.session, path: `/resumed/${i}` });
    t.equal(r.reused, true, `resumed ${i}`);
    statuses.push(r.status);
  }
  t.same(statuses, Array(12).fill(200), 'every resumed session verified');
  await new Promise((r) => setTimeout(r, 200));
  const pids = new Set(sc.logs.filter((l) => l.event === 'access' && String(l.path).startsWith('/resumed/')).map((l) => l.pid));
  t.equal(pids.size, 2, 'resumed sessions landed on both workers');
  sc.child.kill('SIGTERM');
  t.equal(await sc.exited, 0);
});
