// `workers: auto` starts one worker per core; connections are spread over them; the one admin
// endpoint reports metrics summed over all workers; SIGHUP reaches every worker; a crashed worker
// is replaced.
import { availableParallelism } from 'node:os';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { createTestPki } from '../fixtures/pki.js';

const cores = availableParallelism();
const pki = await createTestPki();
const echo = await startEchoUpstream();
const client = await pki.client({ deviceId: 'multi' });
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

t.test('workers: auto', { skip: cores < 2 ? 'needs at least 2 cores' : false }, async (t) => {
  const sc = await startCliSidecar(pki, echo.url, { workers: 'auto' });
  t.teardown(() => sc.child.kill('SIGKILL'));
  const primary = await sc.waitForLog((l) => l.event === 'primary');
  t.equal(primary.workers, cores, `one worker per core (${cores})`);
  await waitReady(sc.adminUrl);

  const N = 40;
  for (let i = 0; i < N; i++) {
    const r = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, path: `/spread/${i}` });
    t.equal(r.status, 200);
  }
  await new Promise((r) => setTimeout(r, 200));
  const pids = new Set(sc.logs.filter((l) => l.event === 'access').map((l) => l.pid));
  t.equal(pids.size, cores, `requests were served by ${pids.size} worker processes`);

  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  const accepted = /mtls_handshakes_total\{result="accepted",reason="none",tls_version="TLSv1\.3"\} (\d+)/.exec(metrics);
  t.equal(Number(accepted?.[1]), N, `handshakes summed over every worker: ${metrics.split("\n").filter((l) => l.startsWith("mtls_handshakes_total")).join(" | ")}`);

  sc.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 500));
  const reloads = sc.logs.filter((l) => l.event === 'reload' && l.result === 'success');
  t.equal(new Set(reloads.map((l) => l.pid)).size, cores, 'every worker reloaded on SIGHUP');

  // A worker that dies is replaced, and readiness comes back.
  const victim = [...pids][0] as number;
  process.kill(victim, 'SIGKILL');
  await sc.waitForLog((l) => l.event === 'worker_exit' && l.pid === victim);
  await waitReady(sc.adminUrl);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem })).status, 200, 'still serving');

  sc.child.kill('SIGTERM');
  t.equal(await sc.exited, 0);
});

async function waitReady(adminUrl: string) {
  for (let i = 0; i < 150; i++) {
    if (await fetch(`${adminUrl}/readyz`).then((r) => r.status === 200, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('never ready');
}
