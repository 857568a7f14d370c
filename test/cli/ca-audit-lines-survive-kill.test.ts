// The CA's "certificate issued" lines are audit records: a device that holds a certificate must
// find it in the log even when the CA is killed with SIGKILL mid-burst. The log sink here is a
// pipe nobody reads, shrunk to one page: a CA that buffers lines in memory keeps answering while
// they pile up (and loses them on the kill); one that writes each line before answering stalls.
import { execFile, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { postEnrollment } from '../../src/device/enroll-client.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKey } from '../../src/pki/issue.js';
import { freePort, waitForPort } from '../fixtures/net.js';
import { builtCli } from '../fixtures/built.js';

const run = promisify(execFile);
const CLI = builtCli();
const DEVICES = 60;

const dir = mkdtempSync(join(tmpdir(), 'mtls-ca-audit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('every certificate a device received has its audit line after kill -9', async (t) => {
  const ca = join(dir, 'ca');
  const [enrollPort, adminPort, publishPort] = [await freePort(), await freePort(), await freePort()];
  await run(process.execPath, [CLI, 'ca', 'init', '--dir', ca, '--name', 'Audit Bank', '--base-url', `http://127.0.0.1:${publishPort}`]);
  const configFile = join(ca, 'ca.yaml');
  const config = parse(readFileSync(configFile, 'utf8'));
  config.enroll.listen = { host: '127.0.0.1', port: enrollPort };
  config.admin.listen = { host: '127.0.0.1', port: adminPort };
  config.publish.listen = { host: '127.0.0.1', port: publishPort };
  config.enroll.rateLimit = { perMinute: 100_000, burst: 100_000, trackedAddresses: 1000 };
  writeFileSync(configFile, stringify(config));

  // The CA's stdout: a FIFO held open for reading (never read until the CA is dead), one page big.
  const fifo = join(dir, 'stdout.fifo');
  await run('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  t.teardown(() => closeSync(reader));
  await run('python3', ['-c', 'import fcntl,os,sys; fd=os.open(sys.argv[1], os.O_RDWR); fcntl.fcntl(fd, 1031, 4096); print(fcntl.fcntl(fd, 1032))', fifo]);
  const writer = openSync(fifo, constants.O_WRONLY);
  const server = spawn(process.execPath, [CLI, 'ca', 'serve', '--config', configFile], { stdio: ['ignore', writer, 'pipe'] });
  closeSync(writer);
  const exited = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  t.teardown(() => void server.kill('SIGKILL'));
  await waitForPort(adminPort);

  const token = readFileSync(join(ca, 'admin-token'), 'utf8').trim();
  const root = readFileSync(join(ca, 'root-ca.pem'), 'utf8');
  const devices = await Promise.all(
    Array.from({ length: DEVICES }, async (_, i) => {
      const deviceId = `audit-${i}`;
      const made = await post(`https://127.0.0.1:${adminPort}/v1/admin/codes`, { deviceId }, root, token);
      const csr = await createCsr(await generateKey('p256'), `CN=${deviceId}`);
      return { deviceId, code: made.code as string, csr: csr.pem };
    }),
  );

  // All enrollments at once; whatever has answered after two seconds is what devices hold.
  const received: string[] = [];
  const calls = devices.map((d) =>
    postEnrollment({
      url: new URL(`https://127.0.0.1:${enrollPort}`),
      route: '/v1/enroll',
      body: { deviceId: d.deviceId, code: d.code, csr: d.csr },
      caPem: root,
      timeoutMs: 10_000,
      maxResponseBytes: 256 * 1024,
    }).then((r) => void received.push(r.serial), () => undefined),
  );
  await Promise.race([Promise.all(calls), new Promise((r) => setTimeout(r, 2_000))]);
  const heldByDevices = [...received];
  server.kill('SIGKILL');
  await exited;

  const logged = new Set<string>();
  let issuedLines = 0;
  for (const line of readAll(reader).split('\n')) {
    if (!line.startsWith('{')) continue;
    const record = JSON.parse(line) as { msg?: string; serial?: string };
    if (record.msg !== 'certificate issued') continue;
    issuedLines++;
    if (record.serial) logged.add(record.serial);
  }
  t.ok(heldByDevices.length > 0, `some devices got a certificate before the kill (${heldByDevices.length} of ${DEVICES})`);
  t.ok(issuedLines >= heldByDevices.length, `${issuedLines} issued lines for ${heldByDevices.length} certificates devices hold`);
  t.same(heldByDevices.filter((s) => !logged.has(s)), [], 'each held certificate is named by serial in an audit line');
});

function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65_536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}


function post(url: string, body: unknown, ca: string, token: string): Promise<{ code?: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, servername: 'localhost', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
