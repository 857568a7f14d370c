/**
 * The device CA's CRL is cheap to poll. curl (a peer nobody here wrote) gets a strong ETag, a
 * Last-Modified and `no-cache`, then a 304 for its If-None-Match (a list, W/, `*`), for HEAD and
 * for `-z`; after a revocation a 200 with a new ETag. A CRL signed within the same second as the
 * one before is not 304'd on a date alone. The sidecar's side of it:
 * test/integration/crl-polling-against-the-device-ca.test.ts.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { enrollDevice } from '../../src/device/index.js';
import { startTestCa, type TestCa } from '../fixtures/device-ca.js';

const run = promisify(execFile);

interface CurlReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

let calls = 0;
/** curl against the CA's /crl; headers and body from curl's own files. */
async function curl(ca: TestCa, ...args: string[]): Promise<CurlReply> {
  const n = calls++;
  const headerFile = join(ca.dir, `curl-${n}.headers`);
  const bodyFile = join(ca.dir, `curl-${n}.body`);
  await run('curl', ['-sS', '--max-time', '10', '-D', headerFile, '-o', bodyFile, ...args, `${ca.ca.publishUrl}/crl`]);
  const [statusLine = '', ...lines] = readFileSync(headerFile, 'utf8').trim().split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  let body = Buffer.alloc(0);
  try {
    body = readFileSync(bodyFile);
  } catch {
    // curl writes no file for an empty body
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

async function enrollOne(ca: TestCa, deviceId: string) {
  return enrollDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, deviceId, code: await ca.code(deviceId), outDir: join(ca.dir, deviceId) });
}

async function revoke(ca: TestCa, deviceId: string): Promise<void> {
  const r = await ca.admin('POST', '/v1/admin/revoke', { deviceId, reason: 'keyCompromise' });
  if (r.status !== 200) throw new Error(`revoke ${deviceId}: ${r.status}`);
}

/** Waits until the CA serves a CRL whose ETag differs from `etag` (re-signing follows the revocation). */
async function nextCrl(ca: TestCa, etag: string): Promise<CurlReply> {
  for (let i = 0; i < 100; i++) {
    const r = await curl(ca);
    if (r.headers.etag !== etag) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('the CA did not re-sign its CRL');
}

const notModifiedCount = async (ca: TestCa): Promise<number> => {
  const metric = await ca.ca.metrics.requests.get();
  return metric.values.find((v) => v.labels.route === 'crl' && v.labels.result === 'not_modified')?.value ?? 0;
};

const ca = await startTestCa();
t.teardown(() => ca.close());

t.test('curl: validators, then 304 for If-None-Match, HEAD and -z; 200 with a new ETag after a revocation', async (t) => {
  const first = await curl(ca);
  t.equal(first.status, 200);
  t.equal(first.headers['content-type'], 'application/pkix-crl');
  t.match(first.headers.etag, /^"[^"]+"$/, 'a strong ETag');
  t.ok(Date.parse(first.headers['last-modified']!) > 0, 'Last-Modified is an HTTP date');
  t.equal(first.headers['cache-control'], 'no-cache', 'caches in between must re-validate');
  t.same(first.body, (await ca.publish('GET', '/crl')).body, 'the CRL itself');
  const etag = first.headers.etag!;

  const same = await curl(ca, '-H', `If-None-Match: ${etag}`);
  t.equal(same.status, 304);
  t.equal(same.body.length, 0, 'no body');
  t.equal(same.headers.etag, etag, 'the 304 carries the ETag');
  t.equal(same.headers['cache-control'], 'no-cache');
  t.equal((await curl(ca, '-H', `If-None-Match: "elsewhere", W/${etag}`)).status, 304, 'a list, weak comparison');
  t.equal((await curl(ca, '-H', 'If-None-Match: *')).status, 304);
  t.equal((await curl(ca, '-I', '-H', `If-None-Match: ${etag}`)).status, 304, 'HEAD');
  t.equal((await curl(ca, '-z', first.headers['last-modified']!)).status, 304, 'curl -z (If-Modified-Since)');
  t.equal((await curl(ca, '-H', 'If-None-Match: "elsewhere"', '-z', first.headers['last-modified']!)).status, 200, 'If-None-Match decides over the date');
  t.equal((await curl(ca, '-H', 'If-None-Match: "elsewhere"')).status, 200);
  t.ok((await notModifiedCount(ca)) >= 5, "the CA's metrics count the 304s as not_modified");

  await enrollOne(ca, 'curl-phone');
  await revoke(ca, 'curl-phone');
  const after = await nextCrl(ca, etag);
  t.equal(after.status, 200);
  t.not(after.headers.etag, etag, 'a new ETag');
  t.equal((await curl(ca, '-H', `If-None-Match: ${etag}`)).status, 200, 'the old ETag gets the new CRL');
  t.equal((await curl(ca, '-z', first.headers['last-modified']!)).status, 200, 'so does the old date');
  t.equal((await curl(ca, '-H', `If-None-Match: ${after.headers.etag}`)).status, 304, 'and the new ETag a 304');
});

t.test('two CRLs signed in the same second: the date alone never gets a 304', async (t) => {
  const second = new Date(Math.floor(Date.now() / 1000) * 1000);
  const frozen = await startTestCa(undefined, { now: () => second });
  t.teardown(() => frozen.close());
  const first = await curl(frozen);
  await enrollOne(frozen, 'frozen-phone');
  await revoke(frozen, 'frozen-phone');
  const after = await nextCrl(frozen, first.headers.etag!);
  t.equal(after.headers['last-modified'], first.headers['last-modified'], 'same Last-Modified (CRL times are whole seconds)');
  t.equal((await curl(frozen, '-z', first.headers['last-modified']!)).status, 200, 'the date cannot tell the two apart: the CRL in full');
  t.equal((await curl(frozen, '-H', `If-None-Match: ${after.headers.etag}`)).status, 304, 'the ETag can');
});
