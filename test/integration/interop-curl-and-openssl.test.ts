// Interop with clients nobody here wrote: curl (PEM and PKCS#12 client certificates) and
// `openssl s_client`, against the real sidecar.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { createPkcs12 } from '../../src/pki/index.js';
import { startSidecarWithEcho } from '../fixtures/sidecar.js';

const run = promisify(execFile);
const { pki, sc } = await startSidecarWithEcho(t, { clientAuth: { failureMode: 'http' } });
const caFile = pki.write('interop-ca.pem', pki.rootPem);

async function curl(args: string[]) {
  try {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--cacert', caFile, ...args, `https://localhost:${sc.port}/interop`]);
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

for (const alg of ['p256', 'rsa2048'] as const) {
  t.test(`curl with a ${alg} PEM client certificate`, async (t) => {
    const c = await pki.client({ alg, deviceId: `curl-${alg}` });
    const r = await curl(['--cert', c.certFile, '--key', c.keyFile]);
    t.equal(r.code, 0, r.stderr ?? 'curl failed');
    t.equal(JSON.parse(r.stdout).headers['x-device-id'], `curl-${alg}`);
  });
}

t.test('curl with a PKCS#12 bundle', async (t) => {
  const c = await pki.client({ deviceId: 'curl-p12' });
  const p12 = pki.write('curl.p12', await createPkcs12({ keyPem: c.keyPem, certPem: c.certPem, chainPem: [pki.intermediate.pem], password: 'pw' }));
  const r = await curl(['--cert-type', 'P12', '--cert', `${p12}:pw`]);
  t.equal(r.code, 0, r.stderr ?? 'curl failed');
  t.equal(JSON.parse(r.stdout).headers['x-device-id'], 'curl-p12');
});

t.test('curl without a certificate, and with an expired one, gets the JSON reason', async (t) => {
  const none = await curl([]);
  t.same(JSON.parse(none.stdout), { error: 'client_certificate_rejected', reason: 'no_certificate' });
  const old = await pki.client({ notBefore: new Date(Date.now() - 2e9), notAfter: new Date(Date.now() - 1e9) });
  const expired = await curl(['--cert', old.certFile, '--key', old.keyFile]);
  t.same(JSON.parse(expired.stdout), { error: 'client_certificate_rejected', reason: 'expired' });
});

t.test('curl refuses nothing it should not: TLS 1.2 and 1.3 both negotiate', async (t) => {
  const c = await pki.client();
  for (const v of [['--tlsv1.2', '--tls-max', '1.2'], ['--tlsv1.3']]) {
    const r = await curl([...v, '--cert', c.certFile, '--key', c.keyFile, '-o', '/dev/null', '-w', '%{http_code}']);
    t.equal(r.stdout, '200', v.join(' '));
  }
});

t.test('openssl s_client: handshake details and an HTTP exchange', async (t) => {
  const c = await pki.client({ deviceId: 'openssl-1' });
  // s_client sends only the first certificate of -cert; the intermediate goes in -cert_chain.
  const chainFile = pki.write('s_client-chain.pem', pki.intermediate.pem);
  const sClient = async (extra: string[], input: string, chain: string[] = ['-cert_chain', chainFile]) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${sc.port}`, '-servername', 'localhost', '-CAfile', caFile, '-cert', c.certFile, ...chain, '-key', c.keyFile, '-verify_return_error', ...extra], { timeout: 10_000 });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stdin!.end(input);
    await new Promise((r) => child.on('close', r));
    return out;
  };
  const details = await sClient([], 'Q\n');
  t.match(details, /Verify return code: 0 \(ok\)/, 'openssl verified our server certificate');
  t.match(details, /New, TLSv1\.3, Cipher is TLS_AES/);
  t.match(details, /Acceptable client certificate CA names[\s\S]*CN = Test Root CA/, 'we advertise the client CA');
  const http = await sClient(['-quiet', '-ign_eof'], 'GET /s_client HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  t.match(http, /HTTP\/1\.1 200 OK/);
  t.match(http, /"x-device-id": "openssl-1"/);
  const noChain = await sClient(['-quiet', '-ign_eof'], 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', []);
  t.match(noChain, /"reason":"unknown_ca"/, 'without its intermediate the device is not trusted');
});

t.test('openssl s_client offering only weak ciphers is refused', async (t) => {
  const c = await pki.client();
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${sc.port}`, '-tls1_2', '-cipher', 'AES128-SHA', '-cert', c.certFile, '-key', c.keyFile], { timeout: 10_000 }).then(
    (x) => ({ code: 0, out: x.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
  t.not(r.code, 0, 'no shared cipher');
});
