// With `workers: 2` the admin listener runs in the primary and the traffic in the workers: an
// admin-API quarantine must reach every worker (closing the connections each one holds), survive
// a worker's restart (the primary re-sends its entries), and — as documented — be gone after the
// sidecar restarts, while quarantine.file entries stay in force.
import { availableParallelism } from 'node:os';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { startCliSidecar, type CliSidecar } from '../fixtures/cli-process.js';
import { openKeepAlive, type KaConn } from '../fixtures/keep-alive.js';
import { createTestPki } from '../fixtures/pki.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
const bad = await pki.client({ deviceId: 'abusive-w' });
const filed = await pki.client({ deviceId: 'filed-w' });
const late = await pki.client({ deviceId: 'late-w' });
const TOKEN = 't'.repeat(48);
const tokenFile = pki.write('admin-token-w', TOKEN);
const quarantineFile = pki.write('quarantine-w.txt', `device:${filed.deviceId}\n`);
const config = { workers: 2, admin: { host: '127.0.0.1', port: 0, tokenFile }, quarantine: { file: quarantineFile } };
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

const status = async (sc: CliSidecar, who: { chainPem: string; keyPem: string }, path = '/') => (await call({ port: sc.port, ca: pki.rootPem, cert: who.chainPem, key: who.keyPem, path })).status;
const pidsOf = (sc: CliSidecar, prefix: string) => new Set(sc.logs.filter((l) => l.event === 'access' && String(l.path).startsWith(prefix)).map((l) => l.pid));
const admin = (sc: CliSidecar, method: string, path: string) => fetch(`${sc.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });

async function waitReady(adminUrl: string) {
  for (let i = 0; i < 150; i++) {
    if (await fetch(`${adminUrl}/readyz`).then((r) => r.status === 200, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('never ready');
}

t.test('an admin-API quarantine reaches every worker', { skip: availableParallelism() < 2 ? 'needs 2 cores' : false }, async (t) => {
  const sc = await startCliSidecar(pki, echo.url, config);
  t.teardown(() => sc.child.kill('SIGKILL'));
  await waitReady(sc.adminUrl);

  // Keep-alive connections until both workers hold some of them.
  const conns: KaConn[] = [];
  t.teardown(() => conns.forEach((c) => c.close()));
  for (let i = 0; i < 40 && pidsOf(sc, '/held/').size < 2; i++) {
    const c = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: bad.chainPem, key: bad.keyPem });
    conns.push(c);
    t.equal((await c.get(`/held/${i}`)).status, 200);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(pidsOf(sc, '/held/').size, 2, 'both workers hold connections of the device');
  t.equal(await status(sc, filed), 403, 'the file entry is in force in the workers');

  t.equal((await admin(sc, 'PUT', `/quarantine/device/${bad.deviceId}`)).status, 200);
  await Promise.all(conns.map((c) => (c.socket.destroyed ? undefined : new Promise((r) => c.socket.once('close', r)))));
  t.pass(`all ${conns.length} open connections, on both workers, were closed`);
  for (let i = 0; i < 12; i++) t.equal(await status(sc, bad, `/after/${i}`), 403);
  t.equal(pidsOf(sc, '/after/').size, 2, 'both workers refuse it');

  // A worker that dies is replaced, and the replacement gets the primary's entries.
  const victim = [...pidsOf(sc, '/after/')][0] as number;
  process.kill(victim, 'SIGKILL');
  await sc.waitForLog((l) => l.event === 'worker_exit' && l.pid === victim);
  // An entry added while the replacement is still starting (it has its init, it is not serving yet)
  // reaches it too.
  await new Promise((r) => setTimeout(r, 1_000));
  t.equal((await admin(sc, 'PUT', `/quarantine/device/${late.deviceId}`)).status, 200);
  await waitReady(sc.adminUrl);
  for (let i = 0; i < 12; i++) t.equal(await status(sc, late, `/late/${i}`), 403);
  t.equal(pidsOf(sc, '/late/').size, 2, 'both workers refuse the device added during the restart');
  for (let i = 0; i < 12; i++) t.equal(await status(sc, bad, `/respawned/${i}`), 403);
  const served = pidsOf(sc, '/respawned/');
  t.equal(served.size, 2, 'both workers, the new one included, refuse it');
  t.notOk(served.has(victim), 'the dead worker served none of them');

  // Admin-API entries are held in memory: a restart forgets them; file entries stay.
  sc.child.kill('SIGTERM');
  t.equal(await sc.exited, 0);
  const again = await startCliSidecar(pki, echo.url, config);
  t.teardown(() => again.child.kill('SIGKILL'));
  await waitReady(again.adminUrl);
  t.equal(await status(again, bad), 200, 'the API entries did not survive the restart (documented)');
  t.equal(await status(again, late), 200);
  t.equal(await status(again, filed), 403, 'the file entry did');
  t.same(await (await admin(again, 'GET', '/quarantine')).json(), { file: [{ kind: 'device', value: 'filed-w' }], api: [] });
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
});
