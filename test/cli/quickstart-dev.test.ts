// The README's first command, as a new user runs it: `mtls-sidecar dev` creates the throwaway
// PKI, starts the echo and the sidecar, and prints a curl line that works — run here verbatim.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { freePort } from '../fixtures/net.js';
import { builtCli } from '../fixtures/built.js';

const run = promisify(execFile);
const cli = builtCli();
const cwd = mkdtempSync(join(tmpdir(), 'mtls-quickstart-'));
t.teardown(() => rmSync(cwd, { recursive: true, force: true }));


t.test('dev prints a curl line that returns the echo with identity headers', async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, [cli, 'dev', '--port', String(port), '--admin-port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGTERM'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no curl line in time:\n${out}`)), 30_000);
    child.stdout.on('data', () => {
      const m = /^\s+(curl --cacert \S+ --cert \S+ --key \S+ https:\/\/\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const args = line.split(' ').slice(1);
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args], { cwd });
  const echo = JSON.parse(stdout);
  t.equal(echo.headers['x-client-verified'], 'SUCCESS');
  t.equal(echo.headers['x-device-id'], 'dev-device-1');
  t.equal(echo.url, '/hello');

  // The second curl line it prints: no certificate, so the JSON reason, and nothing forwarded.
  const none = await run('curl', ['-sS', '--max-time', '10', '--cacert', join(cwd, '.dev-pki/ca.pem'), `https://localhost:${port}/hello`]);
  t.same(JSON.parse(none.stdout), { error: 'client_certificate_rejected', reason: 'no_certificate' });

  // Keys are private to the user; the PKCS#12 bundle works with curl too.
  for (const f of ['device.key', 'server.key', 'device.p12']) t.equal(statSync(join(cwd, '.dev-pki', f)).mode & 0o777, 0o600, `${f} is 0600`);
  const p12 = await run('curl', ['-sS', '--max-time', '10', '--cacert', join(cwd, '.dev-pki/ca.pem'), '--cert-type', 'P12', '--cert', `${join(cwd, '.dev-pki/device.p12')}:dev-only`, `https://localhost:${port}/p12`]);
  t.equal(JSON.parse(p12.stdout).headers['x-device-id'], 'dev-device-1');

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0, 'SIGTERM stops it cleanly');
});
