// The device CA and the device simulator driven through the real CLI, as an operator and an app
// team would: ca init → ca serve (a child process) → a code from the admin API → device enroll →
// device renew → ca pins (parsed by python3's XML and plist readers) → SIGTERM exits 0.
import { execFile, spawn } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { freePort, waitForPort } from '../fixtures/net.js';
import { builtCli } from '../fixtures/built.js';

const run = promisify(execFile);
const CLI = builtCli();
const cli = (...args: string[]) => run(process.execPath, [CLI, ...args]).then(
  (r) => ({ code: 0, ...r }),
  (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
);

const dir = mkdtempSync(join(tmpdir(), 'mtls-cli-ca-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = join(dir, 'ca');
const [enrollPort, adminPort, publishPort] = [await freePort(), await freePort(), await freePort()];

t.test('ca init writes a CA with private files 0600 and never overwrites', async (t) => {
  const r = await cli('ca', 'init', '--dir', ca, '--name', 'Test Bank', '--hostname', 'localhost', '--base-url', `http://127.0.0.1:${publishPort}`);
  t.equal(r.code, 0, r.stderr);
  for (const f of ['root-ca.key', 'issuing-ca.key', 'ocsp-signer.key', 'server.key', 'pin-signing.key', 'pin-backup.key', 'code-pepper.key', 'admin-token']) {
    t.equal(statSync(join(ca, f)).mode & 0o777, 0o600, `${f} is 0600`);
  }
  const { stdout } = await run('openssl', ['verify', '-CAfile', join(ca, 'root-ca.pem'), join(ca, 'issuing-ca.pem')]);
  t.match(stdout, /OK/, 'openssl: the issuing CA chains to the root');
  const before = readFileSync(join(ca, 'issuing-ca.key'));
  const again = await cli('ca', 'init', '--dir', ca);
  t.equal(again.code, 2);
  t.match(again.stderr, /never overwrites/);
  t.same(readFileSync(join(ca, 'issuing-ca.key')), before, 'the key is untouched');
});

t.test('enroll and renew a device with the CLI against ca serve', async (t) => {
  const configFile = join(ca, 'ca.yaml');
  const config = parse(readFileSync(configFile, 'utf8'));
  config.enroll.listen = { host: '127.0.0.1', port: enrollPort };
  config.admin.listen = { host: '127.0.0.1', port: adminPort };
  config.publish.listen = { host: '127.0.0.1', port: publishPort };
  writeFileSync(configFile, stringify(config));

  const broken = join(ca, 'broken.yaml');
  writeFileSync(broken, stringify({ ...config, surprise: true }));
  const bad = await cli('ca', 'serve', '--config', broken);
  t.equal(bad.code, 2, 'a broken config exits 2');
  t.match(bad.stderr, /broken\.yaml:\d+: surprise: unknown field/);

  const server = spawn(process.execPath, [CLI, 'ca', 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
  t.teardown(() => void server.kill('SIGKILL'));
  await waitForPort(enrollPort);

  const token = readFileSync(join(ca, 'admin-token'), 'utf8').trim();
  const root = readFileSync(join(ca, 'root-ca.pem'), 'utf8');
  const made = await post(`https://127.0.0.1:${adminPort}/v1/admin/codes`, { deviceId: 'phone-9' }, root, token);
  t.equal(made.status, 201);
  const device = join(dir, 'phone');
  const url = `https://127.0.0.1:${enrollPort}`;
  const enrolled = await cli('device', 'enroll', '--url', url, '--ca-cert', join(ca, 'root-ca.pem'), '--device-id', 'phone-9', '--code', made.json.code, '--out', device);
  t.equal(enrolled.code, 0, enrolled.stderr);
  const first = /serial ([0-9a-f]+)/.exec(enrolled.stdout)?.[1];
  t.ok(first, 'prints the serial');
  t.equal(statSync(join(device, 'device.key')).mode & 0o777, 0o600);
  const san = await run('openssl', ['x509', '-in', join(device, 'device.pem'), '-noout', '-ext', 'subjectAltName']);
  t.match(san.stdout, /URI:urn:device:phone-9/, 'the device id is the SAN URI');
  const chained = await run('openssl', ['verify', '-CAfile', join(ca, 'root-ca.pem'), '-untrusted', join(device, 'chain.pem'), join(device, 'device.pem')]);
  t.match(chained.stdout, /OK/);

  const beforeReuse = readFileSync(join(device, 'device.pem'));
  const reused = await cli('device', 'enroll', '--url', url, '--ca-cert', join(ca, 'root-ca.pem'), '--device-id', 'phone-9', '--code', made.json.code, '--out', device);
  t.not(reused.code, 0, 'a used code fails');
  t.match(reused.stderr, /code_used/);
  t.same(readFileSync(join(device, 'device.pem')), beforeReuse, 'and the device files are untouched');

  const renewed = await cli('device', 'renew', '--url', url, '--ca-cert', join(ca, 'root-ca.pem'), '--dir', device);
  t.equal(renewed.code, 0, renewed.stderr);
  const second = /serial ([0-9a-f]+)/.exec(renewed.stdout)?.[1];
  t.ok(second && second !== first, 'renewal prints a new serial');

  server.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: exit 0');
});

t.test('ca pins: Android XML and iOS plist parse, the JWS verifies with the shipped key', async (t) => {
  const config = join(ca, 'ca.yaml');
  const android = await cli('ca', 'pins', '--config', config, '--format', 'android');
  t.equal(android.code, 0, android.stderr);
  const xmlFile = join(dir, 'nsc.xml');
  writeFileSync(xmlFile, android.stdout);
  const parsedXml = await run('python3', ['-c', `import json,sys,xml.etree.ElementTree as E
r=E.parse(sys.argv[1]).getroot(); ps=r.find('domain-config/pin-set')
print(json.dumps({'exp':ps.get('expiration'),'pins':[p.text for p in ps.findall('pin')],'domains':[d.text for d in r.findall('domain-config/domain')]}))`, xmlFile]);
  const nsc = JSON.parse(parsedXml.stdout);
  t.ok(nsc.pins.length >= 2, `Android pin-set has ${nsc.pins.length} pins (current + backup)`);
  t.match(nsc.exp, /^\d{4}-\d{2}-\d{2}$/);
  t.same(nsc.domains, ['localhost']);

  const ios = await cli('ca', 'pins', '--config', config, '--format', 'ios');
  const plistFile = join(dir, 'info.plist');
  writeFileSync(plistFile, `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0"><dict>${ios.stdout}</dict></plist>\n`);
  const parsedPlist = await run('python3', ['-c', `import json,sys,plistlib
d=plistlib.load(open(sys.argv[1],'rb'))['NSAppTransportSecurity']['NSPinnedDomains']['localhost']
print(json.dumps([x['SPKI-SHA256-BASE64'] for x in d['NSPinnedLeafIdentities']]))`, plistFile]);
  t.same(JSON.parse(parsedPlist.stdout).sort(), [...nsc.pins].sort(), 'iOS and Android list the same pins');

  const jws = (await cli('ca', 'pins', '--config', config, '--format', 'jws')).stdout.trim();
  const [h, p, s] = jws.split('.');
  const key = createPublicKey(readFileSync(join(ca, 'pin-signing.pub.pem')));
  t.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s!, 'base64url')), 'ES256 verifies with pin-signing.pub.pem');
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
  t.same(payload.pins.map((x: { sha256: string }) => x.sha256).sort(), [...nsc.pins].sort(), 'the signed set carries the same pins');
});


function post(url: string, body: unknown, ca: string, token: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, servername: 'localhost', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
