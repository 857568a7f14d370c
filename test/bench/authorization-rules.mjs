/**
 * What route rules cost on the hot path: the same sidecar (workers: 1, revocation none, no access
 * log) without `authorization` and with 50 route rules, under the same keep-alive load, in
 * alternating rounds so a busy machine shifts both alike:
 *
 *   npm run build && node test/bench/authorization-rules.mjs [--rounds 3] [--seconds 3] [--connections 16]
 *
 * With rules, the benchmark's request matches the 50th rule only, so every request walks 49
 * prefix rules that do not match, then passes a global allow-list (issuer fingerprint) and the
 * rule's own matchers (an OU glob, then a SAN URI prefix): the worst case short of a miss. Its
 * path holds `%7e` and `//`, so it also goes through the normaliser's slow branch; a second
 * "rules, plain path" column shows the common case. Figures: requests/s and the sidecar's CPU per
 * request (µs, from /proc: the figure that does not depend on how busy the rest of the machine
 * is), median over rounds, and the ratio to "off". On a shared machine those rounds swing by
 * ±20 %, more than the effect measured, so the script also times the added work alone, in this
 * process: normalising the target and judging it against the 50 rules (the same compiled code the
 * pipeline runs), against the check done without rules, per call, over a million calls; set
 * against the CPU a whole request costs, that share is the overhead. Results go to test/bench/results/.
 * Not part of the test suite (tap ignores test/bench/); every child is killed at the end.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' }, connections: { type: 'string', default: '16' } } });
const ROUNDS = Math.min(10, Number(args.rounds));
const SECONDS = Math.min(30, Number(args.seconds));
const CONNECTIONS = Number(args.connections);
const WORK = mkdtempSync(join(os.tmpdir(), 'mtls-authz-bench-'));
const children = new Set();
const killAll = () => children.forEach((c) => c.kill('SIGKILL'));
process.on('exit', () => {
  killAll();
  rmSync(WORK, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(cmd, argv) {
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/** The first JSON line a child prints. */
function firstJson(child) {
  return new Promise((res, rej) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i !== -1) res(JSON.parse(buf.slice(0, i)));
    });
    child.once('exit', (code) => rej(new Error(`exited ${code} without output`)));
  });
}
const freePort = () =>
  new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => r(port));
    });
  });
const cpuSeconds = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (100 per second on Linux)
};

// --- PKI ------------------------------------------------------------------------------------------
const { generateKey, issueCertificate } = await import(join(ROOT, 'dist/pki/index.js'));
const caKey = await generateKey('p256');
const ca = await issueCertificate({ subject: 'CN=bench root CA,O=mtls-sidecar bench', key: caKey, isCa: true });
const serverKey = await generateKey('p256');
const server = await issueCertificate({ subject: 'CN=localhost', key: serverKey, issuer: { ...ca, key: caKey }, san: { dns: ['localhost'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'] });
const clientKey = await generateKey('p256');
const client = await issueCertificate({ subject: 'CN=bench-device,OU=fleet-7,O=mtls-sidecar bench', key: clientKey, issuer: { ...ca, key: caKey }, san: { uri: ['urn:device:bench-device'] }, extendedKeyUsage: ['clientAuth'] });
const F = { ca: join(WORK, 'ca.pem'), cert: join(WORK, 'server.pem'), key: join(WORK, 'server.key'), clientCert: join(WORK, 'client.pem'), clientKey: join(WORK, 'client.key') };
writeFileSync(F.ca, ca.pem);
writeFileSync(F.cert, server.pem);
writeFileSync(F.key, serverKey.privateKeyPem, { mode: 0o600 });
writeFileSync(F.clientCert, client.pem);
writeFileSync(F.clientKey, clientKey.privateKeyPem, { mode: 0o600 });
const caFingerprint = new X509Certificate(ca.pem).fingerprint256;

// --- targets --------------------------------------------------------------------------------------
const upstream = run(process.execPath, [join(HERE, 'upstream.mjs')]);
const UPSTREAM_PORT = (await firstJson(upstream)).port;

function rulesYaml() {
  const routes = [];
  for (let i = 1; i < 50; i++) routes.push(`    - { name: r${i}, path: { prefix: /api/v${i} }, methods: [GET, POST], allow: [{ subject: { ou: ops } }] }`);
  routes.push(`    - name: bench
      path: { prefix: /bench }
      methods: [GET]
      allow:
        - { subject: { ou: { glob: "fleet-*" } }, sanUri: { prefix: "urn:device:" } }`);
  return `authorization:
  default: deny
  allow:
    - issuer: { fingerprintSha256: "${caFingerprint}" }
  routes:
${routes.join('\n')}
`;
}

async function startSidecar(name, withRules) {
  const port = await freePort();
  const file = join(WORK, `${name}.yaml`);
  writeFileSync(
    file,
    `version: 1
workers: 1
listen: { host: 127.0.0.1, port: ${port} }
tls: { cert: ${JSON.stringify(F.cert)}, key: ${JSON.stringify(F.key)} }
clientAuth: { caBundle: [${JSON.stringify(F.ca)}] }
upstream: { url: "http://127.0.0.1:${UPSTREAM_PORT}" }
limits: { keepAliveTimeoutMs: 300000 }
admin: { enabled: false }
log: { level: warn, accessLog: false }
revocation: { mode: none }
${withRules ? rulesYaml() : ''}`,
  );
  const child = run(process.execPath, [join(ROOT, 'dist/cli.js'), 'serve', '--config', file]);
  child.stdout.on('data', (d) => process.env.BENCH_DEBUG && process.stderr.write(d));
  for (let i = 0; i < 100; i++) {
    if ((await probe(port, '/bench/probe')) === 200) return { name, port, pid: child.pid };
    await sleep(100);
  }
  throw new Error(`${name} never answered 200`);
}

function probe(port, path) {
  return new Promise((res) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(F.ca), cert: readFileSync(F.clientCert), key: readFileSync(F.clientKey) }, () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
    );
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => res(0));
    s.on('close', () => res(Number(got.slice(9, 12)) || 0));
  });
}

async function measure(target, path) {
  const argv = [join(HERE, 'load.mjs'), '--port', String(target.port), '--tls', '--cert', F.clientCert, '--key', F.clientKey, '--ca', F.ca, '--path', path, '--connections', String(CONNECTIONS), '--warmup', '1', '--duration', String(SECONDS)];
  const startAt = Date.now() + 200;
  const load = run(process.execPath, [...argv, '--start-at', String(startAt)]);
  await sleep(startAt + 1000 - Date.now());
  const cpu0 = cpuSeconds(target.pid);
  const result = await firstJson(load);
  const cpu = cpuSeconds(target.pid) - cpu0; // the window plus the client's few ms of teardown
  if (result.non2xx > 0) throw new Error(`${target.name} ${path}: ${result.non2xx} non-2xx answers`);
  return { rps: result.rps, cpuUsPerRequest: (cpu * 1e6) / result.responses, p50Ms: result.latency?.p50Ms };
}

// --- the added work alone -------------------------------------------------------------------------
const { parseConfig } = await import(join(ROOT, 'dist/config/index.js'));
const { compileAuthorizer } = await import(join(ROOT, 'dist/policy/index.js'));
const { extractIdentity } = await import(join(ROOT, 'dist/identity/index.js'));
const { isForwardableTarget, normalizeTarget } = await import(join(ROOT, 'dist/proxy/request-target.js'));
const base0 = `version: 1\ntls: { cert: a, key: b }\nclientAuth: { caBundle: [c] }\nupstream: { url: "http://x" }\n`;
const authorizer = compileAuthorizer(parseConfig(base0 + rulesYaml(), join(WORK, 'x.yaml'), {}).authorization);
const identity = extractIdentity(new X509Certificate(client.pem), [new X509Certificate(ca.pem)], [{ source: 'uri', prefix: 'urn:device:', stripPrefix: true }]);
function nsPerCall(fn) {
  const N = 1_000_000;
  for (let i = 0; i < 100_000; i++) fn(); // warm-up: let V8 optimise
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn();
  return Number(process.hrtime.bigint() - t0) / N;
}
let sink = 0;
const isolated = {
  'off (isForwardableTarget)': nsPerCall(() => (sink += isForwardableTarget('/bench/items/42') ? 1 : 0)),
  'rules, plain path': nsPerCall(() => {
    const t = normalizeTarget('/bench/items/42');
    sink += authorizer.authorize(identity, 'GET', t.path).allowed ? 1 : 0;
  }),
  'rules, normalised path': nsPerCall(() => {
    const t = normalizeTarget('/bench//items/%7e42');
    sink += authorizer.authorize(identity, 'GET', t.path).allowed ? 1 : 0;
  }),
  'rules, first rule matches': nsPerCall(() => {
    const t = normalizeTarget('/api/v1/x');
    sink += authorizer.authorize(identity, 'GET', t.path).allowed ? 1 : 0;
  }),
};
if (sink === 0) throw new Error('nothing was allowed');
console.error('per call, in isolation (ns):', Object.fromEntries(Object.entries(isolated).map(([k, v]) => [k, Math.round(v)])));

const off = await startSidecar('off', false);
const on = await startSidecar('rules', true);
const columns = [
  { name: 'off', target: off, path: '/bench/items/42' },
  { name: 'rules, normalised path', target: on, path: '/bench//items/%7e42' },
  { name: 'rules, plain path', target: on, path: '/bench/items/42' },
];
const samples = Object.fromEntries(columns.map((c) => [c.name, []]));
// One unmeasured pass first (a fresh sidecar needs load before its hot paths are optimised), then
// rounds in a rotating order, so no column is always the one measured first.
for (const c of columns) await measure(c.target, c.path);
for (let round = 1; round <= ROUNDS; round++) {
  for (const c of [...columns.slice(round % columns.length), ...columns.slice(0, round % columns.length)]) {
    const s = await measure(c.target, c.path);
    samples[c.name].push(s);
    console.error(`round ${round} ${c.name.padEnd(24)} ${s.rps.toFixed(0).padStart(7)} req/s  ${s.cpuUsPerRequest.toFixed(1).padStart(6)} µs CPU/request`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = { rps: median(samples.off.map((s) => s.rps)), cpu: median(samples.off.map((s) => s.cpuUsPerRequest)) };
console.log(`\n50 route rules vs none (workers: 1, ${CONNECTIONS} keep-alive connections, ${ROUNDS} rounds of ${SECONDS} s, medians)`);
console.log('| | req/s | CPU µs/request | req/s vs off | CPU/request vs off |\n|---|---|---|---|---|');
const summary = {};
for (const c of columns) {
  const rps = median(samples[c.name].map((s) => s.rps));
  const cpu = median(samples[c.name].map((s) => s.cpuUsPerRequest));
  summary[c.name] = { rps, cpuUsPerRequest: cpu, samples: samples[c.name] };
  console.log(`| ${c.name} | ${rps.toFixed(0)} | ${cpu.toFixed(1)} | ${((rps / base.rps) * 100).toFixed(1)} % | ${((cpu / base.cpu) * 100).toFixed(1)} % |`);
}
console.log('\nThe added work alone (normalise + judge, 1,000,000 calls in this process), and its share of a request\'s CPU ("off" median):');
console.log('| | ns per request | share of a request |\n|---|---|---|');
for (const [k, ns] of Object.entries(isolated)) console.log(`| ${k} | ${ns.toFixed(0)} | ${((ns / 1000 / base.cpu) * 100).toFixed(2)} % |`);
mkdirSync(join(HERE, 'results'), { recursive: true });
const out = join(HERE, 'results', `authorization-rules-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadavg: os.loadavg(), rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, summary, isolatedNsPerCall: isolated }, null, 2));
console.log(`\nwrote ${out}`);
process.exit(0);
