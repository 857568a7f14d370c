/**
 * Polling a CRL URL costs a parse only when the CRL changed, whatever serves it: nginx serving an
 * `openssl ca -gencrl` file (ETag and Last-Modified; its access log shows our If-None-Match and the
 * 304s), `python3 -m http.server` (Last-Modified only) and a server with no validators at all
 * (identical bytes → "unchanged", not parsed). Each then picks up a revocation. The device CA's
 * own /crl is in test/integration/ca-crl-conditional-requests.test.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { freePort } from '../fixtures/net.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { waitFor } from '../fixtures/wait.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());
const www = join(pki.dir, 'www');
mkdirSync(www);
/** `openssl ca -gencrl` straight into the served folder, as an operator's cron job would. */
const publishCrl = () => pki.genCrl('www/ca');
await publishCrl();
const trustedCas = [pki.root.x509, pki.ca.x509];

const children: ChildProcess[] = [];
t.teardown(() => {
  for (const child of children) child.kill('SIGKILL');
});

async function serving(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never answered`);
}

/** A checker polling `url` every second; `polls` records each poll's result. */
async function pollerOf(t: Test, url: string) {
  const polls: string[] = [];
  const revoked: string[] = [];
  const options = revocationSchema.parse({ mode: 'crl', crl: { urls: [url], refreshIntervalSeconds: 1, fetchDistributionPoints: false } });
  const checker = createRevocationChecker(options, { trustedCas, logger: captureLogger(), observer: { crlPolled: (_kind, result) => polls.push(result) } });
  t.teardown(() => checker.close());
  await checker.ready();
  checker.onRevoked((_issuer, serial) => revoked.push(serial));
  const count = (result: string) => polls.filter((p) => p === result).length;
  return { checker, polls, revoked, count };
}

/** Revokes a fresh certificate the checker has seen, re-publishes the CRL; resolves when the checker reports it. */
async function revokeAndSee(t: Test, poller: Awaited<ReturnType<typeof pollerOf>>, name: string): Promise<void> {
  const victim = await pki.issue(name);
  t.equal((await poller.checker.check(victim.x509, pki.ca.x509)).status, 'good');
  await new Promise((r) => setTimeout(r, 1_100)); // a new mtime second, like any real re-publication
  await pki.revoke(victim);
  await publishCrl();
  t.ok(await waitFor(() => poller.revoked.includes(victim.x509.serialNumber), 6_000), 'the revocation is picked up');
}

/** Polls `url` until the unchanged CRL shows as `quiet` twice without a second parse; then one revocation, one parse. */
async function oneParsePerChange(t: Test, url: string, quiet: 'not_modified' | 'unchanged', victim: string): Promise<void> {
  const poller = await pollerOf(t, url);
  t.ok(await waitFor(() => poller.count(quiet) >= 2, 8_000), `the unchanged CRL: ${quiet} (${poller.polls.join(', ')})`);
  t.equal(poller.count('parsed'), 1, 'parsed once');
  await revokeAndSee(t, poller, victim);
  t.equal(poller.count('parsed'), 2, 'parsed again once the CRL changed');
}

const nginx = spawnSync('nginx', ['-v']).status === 0;
t.test('nginx serving an openssl-made CRL file: If-None-Match, 304s, one parse per change', { skip: nginx ? false : 'nginx is not installed' }, async (t) => {
  const port = await freePort();
  const prefix = join(pki.dir, 'nginx');
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 64; }
http {
  log_format polls '$status "$http_if_none_match" "$http_if_modified_since"';
  access_log ${prefix}/access.log polls;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${www};
  }
}
`,
  );
  const child = spawn('nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], { stdio: 'ignore' });
  children.push(child);
  const url = `http://127.0.0.1:${port}/ca.pem`;
  await serving(url);
  await oneParsePerChange(t, url, 'not_modified', 'nginx-victim');
  const log = readFileSync(join(prefix, 'access.log'), 'utf8');
  t.match(log, /^304 "[^"-][^"]*" /m, 'nginx logged a 304 for a request carrying If-None-Match');
});

t.test('python3 -m http.server (Last-Modified only): If-Modified-Since, 304s, one parse per change', async (t) => {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', www, String(port)], { stdio: 'ignore' });
  children.push(child);
  const url = `http://127.0.0.1:${port}/ca.pem`;
  await serving(url);
  await oneParsePerChange(t, url, 'not_modified', 'python-victim');
});

t.test('a server without validators sending the same bytes: not parsed again', async (t) => {
  let conditional = 0;
  const server = await startHttpServer(async (req, _body, res) => {
    if (req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined) conditional++;
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(await readFile(join(www, 'ca.pem')));
  });
  t.teardown(() => server.close());
  await oneParsePerChange(t, `${server.url}/ca.crl`, 'unchanged', 'bare-victim');
  t.equal(conditional, 0, 'nothing to be conditional on');
});
