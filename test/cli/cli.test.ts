// The command line as an operator meets it: --help, --version, check-config's exit codes and
// messages, and serve's refusal to start on bad input. Runs the built dist/cli.js (fixtures/built.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createTestPki } from '../fixtures/pki.js';
import { builtCli } from '../fixtures/built.js';

const run = promisify(execFile);
const cli = builtCli();
const pki = await createTestPki();
t.teardown(() => pki.cleanup());

async function sidecar(args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function config(extra = ''): string {
  return pki.write(
    `cfg-${Math.random().toString(36).slice(2)}.yaml`,
    `version: 1\ntls:\n  cert: ${pki.serverCertFile}\n  key: ${pki.serverKeyFile}\nclientAuth:\n  caBundle: [${pki.caBundleFile}]\nupstream:\n  url: http://127.0.0.1:9\nadmin:\n  port: 0\n${extra}`,
  );
}

t.test('--help and --version', async (t) => {
  const help = await sidecar(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /mtls-sidecar serve --config FILE/);
  t.match(help.stdout, /check-config FILE/);
  const version = await sidecar(['--version']);
  t.equal(version.code, 0);
  t.equal(version.stdout.trim(), JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version);
});

t.test('check-config: 0 for a good config', async (t) => {
  const r = await sidecar(['check-config', config()]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /: ok/);
});

t.test('check-config: 2 with the field and line of a bad config', async (t) => {
  const file = config('limits:\n  maxHeaderByte: 10\n');
  const r = await sidecar(['check-config', file]);
  t.equal(r.code, 2);
  t.match(r.stderr, `${file}:12: limits.maxHeaderByte: unknown field`);
});

t.test('check-config: 2 when a certificate file is missing or the key does not match', async (t) => {
  const text = readFileSync(config(), 'utf8').replace(pki.serverKeyFile, pki.write('nokey.key', 'x'));
  const bad = pki.write('bad-key.yaml', text);
  const r = await sidecar(['check-config', bad]);
  t.equal(r.code, 2);
  t.match(r.stderr, /tls\.key .* is not a PEM private key/);
  const gone = pki.write('gone.yaml', readFileSync(config(), 'utf8').replace(pki.caBundleFile, '/nonexistent/ca.pem'));
  const r2 = await sidecar(['check-config', gone]);
  t.equal(r2.code, 2);
  t.match(r2.stderr, 'clientAuth.caBundle /nonexistent/ca.pem does not exist');
});

t.test('check-config and serve: 2 for a bad quarantine file or admin token, naming the field', async (t) => {
  const badList = config(`quarantine:\n  file: ${pki.write('q-bad.txt', 'device:ok\nfingerprint:123\n')}\n`);
  for (const command of ['check-config', 'serve']) {
    const r = await sidecar(command === 'serve' ? ['serve', '--config', badList] : ['check-config', badList]);
    t.equal(r.code, 2, command);
    t.match(r.stderr, /quarantine\.file .*q-bad\.txt: line 2: a fingerprint/, command);
  }
  const shortToken = config(`  tokenFile: ${pki.write('short-token', 'too-short')}\n`);
  const r = await sidecar(['check-config', shortToken]);
  t.equal(r.code, 2);
  t.match(r.stderr, /admin\.tokenFile .* at least 32 characters/);
  const good = config(`  tokenFile: ${pki.write('good-token', 'x'.repeat(32))}\nquarantine:\n  file: ${pki.write('q-good.txt', '# none\n')}\n`);
  t.equal((await sidecar(['check-config', good])).code, 0);
});

t.test('check-config: a missing config file is a clear error', async (t) => {
  const r = await sidecar(['check-config', '/nonexistent.yaml']);
  t.equal(r.code, 2);
  t.match(r.stderr, /cannot read config \/nonexistent\.yaml/);
});

t.test('serve without --config refuses and points at dev', async (t) => {
  const r = await sidecar(['serve']);
  t.equal(r.code, 2);
  t.match(r.stderr, /serve needs --config FILE/);
});

t.test('unknown command and unknown flag', async (t) => {
  t.equal((await sidecar(['frobnicate'])).code, 2);
  const flag = await sidecar(['serve', '--confg', 'x']);
  t.equal(flag.code, 2);
  t.match(flag.stderr, /Unknown option '--confg'/);
});

t.test('serve: a port in use is a clear error, exit 1', async (t) => {
  const net = await import('node:net');
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as import('node:net').AddressInfo).port;
  const file = config(`listen:\n  host: 127.0.0.1\n  port: ${port}\n`);
  const r = await sidecar(['serve', '--config', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, `cannot listen on 127.0.0.1:${port} (listen): the port is already in use`);
});


t.test('check-config and serve: the same exit status and message for the same config problem', async (t) => {
  const problems = {
    'an unreadable upstream.ca': pki.write('up-ca.yaml', readFileSync(config(), 'utf8').replace('url: http://127.0.0.1:9', 'url: https://127.0.0.1:9\n  ca: /nonexistent/upstream-ca.pem')),
    'a missing CA bundle file': pki.write('gone-ca.yaml', readFileSync(config(), 'utf8').replace(pki.caBundleFile, '/nonexistent/ca.pem')),
  };
  for (const [problem, file] of Object.entries(problems)) {
    const checked = await sidecar(['check-config', file]);
    const served = await sidecar(['serve', '--config', file]);
    t.equal(checked.code, 2, `check-config exits 2 for ${problem}: ${checked.stderr}`);
    t.equal(served.code, 2, `serve exits 2 for ${problem}: ${served.stderr}`);
    t.equal(checked.stderr, served.stderr, `the same message for ${problem}`);
  }
});
