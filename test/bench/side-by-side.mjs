/**
 * Side-by-side benchmark: the upstream alone, nginx as an mTLS terminating proxy, and this
 * sidecar (workers: 1 and workers: auto), on this machine, with the same certificates and the
 * same upstream, in one command:
 *
 *   npm run build && node test/bench/side-by-side.mjs            # full run, about 4 minutes
 *   npm run build && node test/bench/side-by-side.mjs --quick    # about 1 minute, short windows
 *
 * Options: --quick, --no-nginx, --cpu-prof (also profile the sidecar, workers: 1, through one
 * keep-alive run and print its top self-time functions), --perf (the same run sampled by Linux
 * `perf record`, which sees what --cpu-prof lumps into one native call: kernel, OpenSSL, V8), --connections N (default 32),
 * --idle N (idle connections, default 10000; 1000 with --quick), --keep (keep the temp dir).
 * Needs `openssl` (s_time is the handshake client) and, for the nginx columns, `nginx`
 * (`apt-get install -y nginx`; without it those columns are skipped). Everything listens on
 * 127.0.0.1 only. Not part of the test suite (tap ignores test/bench/).
 *
 * What one run does (test/bench/README.md explains how to read it):
 *   - generates a throwaway PKI: a P-256 root CA, a server certificate for localhost/127.0.0.1,
 *     an ECDSA P-256 and an RSA-2048 client certificate, an empty CRL signed by the CA;
 *   - starts the upstream (test/bench/upstream.mjs: keep-alive HTTP/1.1, small fixed body) in a
 *     process of its own;
 *   - for each target: full mTLS handshakes/s with each client key (`openssl s_time -new`),
 *     resumed handshakes/s (`s_time -reuse`), keep-alive requests/s with p50/p99 latency
 *     (test/bench/load.mjs, C connections presenting the P-256 certificate), and the CPU the
 *     target, the upstream, the client and everything else on the machine used meanwhile;
 *   - an open-loop run at half the sidecar's (workers: 1) peak rate, straight to the upstream and
 *     through the sidecar: the p50/p99 latency the sidecar adds;
 *   - RSS of the sidecar (workers: 1) and of nginx holding N idle mTLS connections;
 *   - full-handshake rate of the sidecar with revocation.mode none vs crl (warm), alternated;
 * then prints tables with the ratios sidecar/nginx and sidecar/ceiling, and writes every figure
 * (with the machine, versions and load averages) to test/bench/results/side-by-side-<time>.json.
 * Every child process is killed at the end and on Ctrl-C.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as signData } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './bench-ca.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
if (!existsSync(join(ROOT, 'dist/cli.js')) || !existsSync(join(ROOT, 'dist/pki/index.js'))) {
  console.error('dist/ is missing: run `npm run build` first.');
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-nginx': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    perf: { type: 'boolean', default: false },
    'no-floor': { type: 'boolean', default: false },
    connections: { type: 'string' },
    idle: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const QUICK = args.quick;
const CFG = {
  handshakeSeconds: QUICK ? 1 : 5,
  /** Parallel s_time clients: one alone leaves the target idle while it computes its own half. */
  handshakeClients: 2,
  // A fresh sidecar needs about a second of load before its hot paths are optimised.
  warmupSeconds: 1,
  durationSeconds: QUICK ? 2 : 5,
  connections: Number(args.connections ?? 32),
  idleConnections: Number(args.idle ?? (QUICK ? 1000 : 10000)),
  idleClients: 2,
  revocationRounds: QUICK ? 2 : 4,
  revocationSeconds: QUICK ? 1 : 3,
};

// --- child processes: every one is tracked and killed, with its group, at the end ------------
const children = new Set();
function track(child, name) {
  child.benchName = name;
  children.add(child);
  child.exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  child.once('exit', () => children.delete(child));
  return child;
}
function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}
async function stop(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
  killGroup(child, 'SIGKILL'); // whatever of its group is left (nginx workers, cluster workers)
}
function killAllNow() {
  for (const child of children) killGroup(child, 'SIGKILL');
}
process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping every child process`);
    killAllNow();
    if (!args.keep && WORK) rmSync(WORK, { recursive: true, force: true });
    process.exit(130);
  });
}

/**
 * Each child leads its own process group, so a whole tree (nginx, cluster) dies together. Its
 * stderr (and stdout unless piped to us) goes to <name>.log in the work dir.
 */
function start(name, cmd, argv, { stdout = 'ignore', env } = {}) {
  const log = openSync(join(WORK, `${name}.log`), 'a');
  return track(spawn(cmd, argv, { cwd: ROOT, detached: true, stdio: ['pipe', stdout === 'pipe' ? 'pipe' : log, log], env: env ?? process.env }), name);
}
function logTail(name, lines = 15) {
  const file = join(WORK, `${name}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n') : '';
}
/** A shell line that raises the fd limit as far as allowed (10,000 connections need more than 1,024). */
const RAISE_FDS = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"';
const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

// --- /proc: CPU and RSS of process trees, and of the whole machine ----------------------------
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;
function readStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}
function treePids(root) {
  const parent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (st) parent.set(Number(name), st.ppid);
  }
  const pids = [root];
  for (let i = 0; i < pids.length; i++) for (const [pid, ppid] of parent) if (ppid === pids[i]) pids.push(pid);
  return pids.filter((p) => parent.has(p));
}
/** CPU seconds (user+system) of a process and its live descendants. */
function treeCpuSeconds(root) {
  return treePids(root).reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0) / CLK_TCK;
}
function treeRssBytes(root) {
  let sum = 0;
  for (const pid of treePids(root)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      if (m) sum += Number(m[1]) * 1024;
    } catch {}
  }
  return sum;
}
function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + (steal ?? 0)) / CLK_TCK;
}
const loadavg = () => readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).map(Number);

/**
 * How fast one CPU of this machine is right now: P-256 signatures per second for 0.5 s, in this
 * process. Taken at the start and the end of a run, it tells a slower host (a noisy neighbour on
 * a VM does not show up in /proc) from a slower target when runs are compared.
 */
function cpuSpeed() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(64);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 500) {
    for (let i = 0; i < 20; i++) signData('sha256', data, privateKey);
    n += 20;
  }
  return Math.round(n / ((performance.now() - t0) / 1000));
}

/**
 * CPU use of the target tree, the upstream and the whole machine between two marks. What the
 * machine used beyond target + upstream + our clients is `otherCpuCores`: other people's work,
 * which this 2-core box may be running at the same time.
 */
function cpuMarks(targetPid) {
  const take = () => ({ t: performance.now(), target: treeCpuSeconds(targetPid), upstream: treeCpuSeconds(UPSTREAM.pid), machine: machineBusySeconds() });
  let a;
  return {
    start() {
      a = take();
    },
    end(clientCpuSeconds) {
      const b = take();
      const s = (b.t - a.t) / 1000;
      const target = b.target - a.target;
      // When the target is the upstream itself (the ceiling), it is counted once.
      const upstream = targetPid === UPSTREAM.pid ? 0 : b.upstream - a.upstream;
      const machine = b.machine - a.machine;
      return {
        windowSeconds: s,
        targetCpuCores: target / s,
        upstreamCpuCores: upstream / s,
        clientCpuCores: clientCpuSeconds / s,
        otherCpuCores: Math.max(0, (machine - target - upstream - clientCpuSeconds) / s),
        loadavg: loadavg(),
        targetCpuSeconds: target,
      };
    },
  };
}

// --- small helpers -----------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function tryRun(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  return r.error ? undefined : `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}
function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}
/** Reads JSON lines from a child's stdout. */
function jsonLines(child) {
  const waiting = [];
  const queued = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let v;
      try {
        v = JSON.parse(line);
      } catch {
        continue;
      }
      const w = waiting.shift();
      if (w) w(v);
      else queued.push(v);
    }
  });
  return {
    next(timeoutMs) {
      if (queued.length) return Promise.resolve(queued.shift());
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`${child.benchName}: no answer within ${timeoutMs} ms\n${logTail(child.benchName)}`)), timeoutMs);
        waiting.push((v) => {
          clearTimeout(t);
          res(v);
        });
        child.exited.then(() => setTimeout(() => rej(new Error(`${child.benchName} exited without an answer\n${logTail(child.benchName)}`)), 50));
      });
    },
  };
}

// --- the PKI of this run -----------------------------------------------------------------------
const WORK = mkdtempSync(join(os.tmpdir(), 'mtls-bench-'));

/**
 * Every sidecar of the run is started from a copy of dist/ taken now, so a rebuild while the
 * benchmark runs (other people work in this tree) cannot make its columns measure different
 * code. The copy resolves its dependencies through a symlink to the project's node_modules.
 */
function snapshotDist() {
  const app = join(WORK, 'app');
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true, filter: (f) => !f.endsWith('.map') });
  cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
  const hash = createHash('sha256');
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const f = join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (f.endsWith('.js')) hash.update(f.slice(app.length)).update(readFileSync(f));
    }
  };
  walk(join(app, 'dist'));
  return { cli: join(app, 'dist/cli.js'), pki: join(app, 'dist/pki/index.js'), sha256: hash.digest('hex').slice(0, 16), builtAt: statSync(join(ROOT, 'dist/cli.js')).mtime.toISOString() };
}
const DIST = snapshotDist();
const CLI = DIST.cli;
const { generateKey, issueCertificate, issueCrl } = await import(DIST.pki);
async function createPki() {
  const day = 86_400_000;
  const caKey = await generateKey('p256');
  const ca = await issueCertificate({ subject: 'CN=bench root CA,O=mtls-sidecar bench', key: caKey, isCa: true, pathLength: 0, notAfter: new Date(Date.now() + 2 * day) });
  const issuer = { ...ca, key: caKey };
  const serverKey = await generateKey('p256');
  const server = await issueCertificate({ subject: 'CN=localhost', key: serverKey, issuer, san: { dns: ['localhost'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'], notAfter: new Date(Date.now() + day) });
  const files = { ca: join(WORK, 'ca.pem'), crl: join(WORK, 'ca.crl.pem'), serverCert: join(WORK, 'server.pem'), serverKey: join(WORK, 'server.key') };
  writeFileSync(files.ca, ca.pem);
  writeFileSync(files.serverCert, server.pem);
  writeFileSync(files.serverKey, serverKey.privateKeyPem, { mode: 0o600 });
  for (const alg of ['p256', 'rsa2048']) {
    const key = await generateKey(alg);
    const cert = await issueCertificate({ subject: `CN=bench-${alg},O=mtls-sidecar bench`, key, issuer, san: { uri: [`urn:device:bench-${alg}`] }, extendedKeyUsage: ['clientAuth'], notAfter: new Date(Date.now() + day) });
    files[`${alg}Cert`] = join(WORK, `client-${alg}.pem`);
    files[`${alg}Key`] = join(WORK, `client-${alg}.key`);
    writeFileSync(files[`${alg}Cert`], cert.pem);
    writeFileSync(files[`${alg}Key`], key.privateKeyPem, { mode: 0o600 });
  }
  const crl = await issueCrl({ issuer, nextUpdate: new Date(Date.now() + day) });
  writeFileSync(files.crl, crl.pem);
  return files;
}

// --- targets -----------------------------------------------------------------------------------
let PKI;
let UPSTREAM;

async function startUpstream() {
  const child = start('upstream', process.execPath, [join(HERE, 'upstream.mjs')], { stdout: 'pipe' });
  const { port } = await jsonLines(child).next(10_000);
  return { child, port, pid: child.pid };
}

/** node-floor.mjs: a bare Node https + undici proxy with the same PKI (see its header). */
async function startFloor(name) {
  const argv = [join(HERE, 'node-floor.mjs'), PKI.serverCert, PKI.serverKey, PKI.ca, String(UPSTREAM.port)];
  const child = start(name, 'bash', ['-c', `${RAISE_FDS}; exec ${[process.execPath, ...argv].map(shellQuote).join(' ')}`], { stdout: 'pipe' });
  const { port } = await jsonLines(child).next(10_000);
  await waitReady(name, port, child);
  return { name, kind: 'floor', child, pid: child.pid, port };
}

/** One GET through a target with the P-256 client certificate; resolves with the status. */
function probe(port, useTls = true) {
  return new Promise((res) => {
    const socket = useTls
      ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(PKI.ca), cert: readFileSync(PKI.p256Cert), key: readFileSync(PKI.p256Key) })
      : net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (v) => {
      socket.destroy();
      res(v);
    };
    socket.setTimeout(2000, () => done(0));
    socket.on('error', () => done(0));
    socket.once(useTls ? 'secureConnect' : 'connect', () => socket.write('GET /probe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(Number(got.slice(9, 12)));
    });
    socket.on('close', () => done(Number(got.slice(9, 12)) || 0));
  });
}
async function waitReady(name, port, child, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if ((await probe(port)) === 200) return;
    await sleep(200);
  }
  const errorLog = join(WORK, 'nginx', 'error.log');
  const nginxLog = name === 'nginx' && existsSync(errorLog) ? `\n${readFileSync(errorLog, 'utf8').slice(-2000)}` : '';
  throw new Error(`${name} did not answer 200 through mTLS on port ${port} within ${timeoutMs} ms\n${logTail(name)}${nginxLog}`);
}

async function startSidecar(name, { workers = 1, revocation = 'crl', nodeArgs = [] } = {}) {
  const port = await freePort();
  const adminPort = await freePort();
  const config = join(WORK, `${name}.yaml`);
  const revocationYaml = revocation === 'none' ? '  mode: none' : `  mode: crl\n  crl:\n    files: [${JSON.stringify(PKI.crl)}]`;
  writeFileSync(
    config,
    `version: 1
workers: ${workers}
listen: { host: 127.0.0.1, port: ${port} }
tls: { cert: ${JSON.stringify(PKI.serverCert)}, key: ${JSON.stringify(PKI.serverKey)} }
clientAuth: { caBundle: [${JSON.stringify(PKI.ca)}] }
upstream: { url: "http://127.0.0.1:${UPSTREAM.port}" }
limits: { keepAliveTimeoutMs: 300000 }
admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }
log: { level: warn, accessLog: false }
shutdown: { timeoutSeconds: 2 }
revocation:
${revocationYaml}
`,
  );
  const cmd = `${RAISE_FDS}; exec ${shellQuote(process.execPath)} ${nodeArgs.map(shellQuote).join(' ')} ${shellQuote(CLI)} serve --config ${shellQuote(config)}`;
  const child = start(name, 'bash', ['-c', cmd]);
  await waitReady(name, port, child);
  return { name, kind: 'sidecar', child, pid: child.pid, port, adminPort, workers, revocation };
}

const NGINX = args['no-nginx'] ? undefined : which('nginx');
async function startNginx() {
  const port = await freePort();
  const prefix = join(WORK, 'nginx');
  mkdirSync(join(prefix, 'tmp'), { recursive: true, mode: 0o755 });
  let hard = 20000;
  const h = tryRun('bash', ['-c', 'ulimit -Hn']);
  if (h && /^\d+$/.test(h)) hard = Math.min(65536, Number(h));
  const conf = join(prefix, 'nginx.conf');
  const tls12 = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';
  writeFileSync(
    conf,
    `# Generated by test/bench/side-by-side.mjs: nginx as the mTLS terminating proxy to compare with.
worker_processes 1;
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
worker_rlimit_nofile ${hard};
events { worker_connections ${hard - 100}; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  # Like the sidecar: no cap on requests per client connection, long keep-alive.
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  upstream bench_upstream {
    server 127.0.0.1:${UPSTREAM.port};
    keepalive 32;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${PKI.serverCert};
    ssl_certificate_key ${PKI.serverKey};
    ssl_protocols TLSv1.2 TLSv1.3;
    # The sidecar's default suites, in its order.
    ssl_ciphers ${tls12};
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 5m;
    ssl_session_tickets on;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_client_certificate ${PKI.ca};
    ssl_crl ${PKI.crl};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      # Roughly the identity headers the sidecar sets, so both do similar work per request.
      proxy_set_header X-Client-Verified $ssl_client_verify;
      proxy_set_header X-Client-Cert-Subject $ssl_client_s_dn;
      proxy_set_header X-Client-Cert-Issuer $ssl_client_i_dn;
      proxy_set_header X-Client-Cert-Serial $ssl_client_serial;
      proxy_set_header X-Client-Cert-Not-After $ssl_client_v_end;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
`,
  );
  const base = ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')];
  const test = spawnSync(NGINX, [...base, '-t'], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t failed:\n${test.stderr}`);
  const child = start('nginx', 'bash', ['-c', `${RAISE_FDS}; exec ${shellQuote(NGINX)} ${base.map(shellQuote).join(' ')}`]);
  await waitReady('nginx', port, child);
  return { name: 'nginx', kind: 'nginx', child, pid: child.pid, port };
}

// --- measurements ------------------------------------------------------------------------------
/**
 * Full (`-new`) or resumed (`-reuse`) handshakes/s with `openssl s_time`, several clients at once.
 * The rate is connections per real second, timed here (s_time's own "real seconds" is rounded
 * to whole seconds). A resumed run also reports which share of its connections really resumed.
 */
async function measureHandshakes(target, alg, mode, runSeconds = CFG.handshakeSeconds) {
  const cpu = cpuMarks(target.pid);
  const argv = ['s_time', '-connect', `127.0.0.1:${target.port}`, '-cert', PKI[`${alg}Cert`], '-key', PKI[`${alg}Key`], '-CAfile', PKI.ca, '-time', String(runSeconds)];
  // TLS 1.3 sends its session ticket after the handshake, which s_time only reads if it fetches
  // a page: resumption over 1.3 is measured with one GET per connection; over 1.2 without.
  if (mode === 'new') argv.push('-new');
  if (mode === 'reuse13') argv.push('-reuse', '-www', '/resumed');
  if (mode === 'reuse12') argv.push('-reuse', '-tls1_2');
  const line = `openssl ${argv.map(shellQuote).join(' ')}; times`;
  cpu.start();
  const t0 = performance.now();
  const runs = await Promise.all(
    Array.from({ length: CFG.handshakeClients }, async (_, i) => {
      const child = start(`s_time-${i}`, 'bash', ['-c', line], { stdout: 'pipe' });
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d) => (out += d));
      await child.exited;
      return { out, seconds: (performance.now() - t0) / 1000 };
    }),
  );
  let connections = 0;
  let resumed = 0;
  let fresh = 0;
  let clientCpu = 0;
  let seconds = 0;
  for (const { out, seconds: s } of runs) {
    const m = /(\d+) connections in [\d.]+ real seconds/.exec(out);
    if (m) connections += Number(m[1]);
    seconds = Math.max(seconds, s);
    // s_time prints one character per connection: 'r' when the session was resumed.
    const body = out.split(/Now timing|Collecting connection statistics/).slice(-1)[0] ?? '';
    resumed += (body.match(/r/g) ?? []).length;
    fresh += (body.match(/\*/g) ?? []).length;
    const t = out.trim().split('\n').slice(-1)[0].match(/(\d+)m([\d.]+)s/g) ?? [];
    for (const x of t) {
      const [, mm, ss] = /(\d+)m([\d.]+)s/.exec(x);
      clientCpu += Number(mm) * 60 + Number(ss);
    }
  }
  const usage = cpu.end(clientCpu);
  const rate = connections / seconds;
  const result = { connections, rate, perTargetCpuSecond: usage.targetCpuSeconds > 0 ? connections / usage.targetCpuSeconds : null, ...usage };
  if (mode !== 'new') result.resumedShare = resumed + fresh ? resumed / (resumed + fresh) : null;
  return result;
}

function mergeHistograms(list) {
  const counts = new Map();
  let n = 0;
  let max = 0;
  for (const h of list) {
    n += h.n;
    max = Math.max(max, h.maxUs);
    for (const [i, c] of h.buckets) counts.set(i, (counts.get(i) ?? 0) + c);
  }
  const sorted = [...counts].sort((a, b) => a[0] - b[0]);
  const pct = (p) => {
    if (!n) return null;
    const want = Math.ceil((p / 100) * n);
    let seen = 0;
    for (const [i, c] of sorted) {
      seen += c;
      if (seen >= want) return Math.pow(1.01, i - 0.5) / 1000; // ms, middle of a 1 % bucket
    }
    return max / 1000;
  };
  return { n, p50Ms: pct(50), p90Ms: pct(90), p99Ms: pct(99), p999Ms: pct(99.9), maxMs: max / 1000 };
}

/** Runs load.mjs in `procs` processes at once over the same window; merges their results. */
async function runLoad(target, { rate, procs = 1, connections = CFG.connections, warmOnly = false } = {}) {
  const cpu = cpuMarks(target.pid);
  const startAt = Date.now() + 300;
  const base = ['--port', String(target.port), '--warmup', String(CFG.warmupSeconds), '--duration', String(warmOnly ? 1 : CFG.durationSeconds), '--start-at', String(startAt)];
  if (target.kind !== 'upstream') base.push('--tls', '--cert', PKI.p256Cert, '--key', PKI.p256Key, '--ca', PKI.ca);
  const kids = [];
  for (let i = 0; i < procs; i++) {
    const argv = [...base, '--connections', String(Math.ceil(connections / procs))];
    if (rate) argv.push('--rate', String(rate / procs));
    const child = start(`load-${i}`, 'bash', ['-c', `${RAISE_FDS}; exec ${shellQuote(process.execPath)} ${shellQuote(join(HERE, 'load.mjs'))} ${argv.map(shellQuote).join(' ')}`], { stdout: 'pipe' });
    kids.push({ child, lines: jsonLines(child) });
  }
  setTimeout(() => cpu.start(), startAt + CFG.warmupSeconds * 1000 - Date.now());
  const timeout = (CFG.warmupSeconds + CFG.durationSeconds) * 1000 + 15_000;
  if (warmOnly) return Promise.all(kids.map((k) => k.lines.next(timeout)));
  const results = await Promise.all(kids.map((k) => k.lines.next(timeout)));
  const usage = cpu.end(results.reduce((s, r) => s + r.clientCpuSeconds, 0));
  const lat = mergeHistograms(results.map((r) => r.latency));
  const out = {
    rps: results.reduce((s, r) => s + r.rps, 0),
    responses: results.reduce((s, r) => s + r.responses, 0),
    non2xx: results.reduce((s, r) => s + r.non2xx, 0),
    errors: Object.assign({}, ...results.map((r) => r.errors)),
    connections,
    clientProcesses: procs,
    clientEventLoopUtilization: Math.max(...results.map((r) => r.clientEventLoopUtilization)),
    ...lat,
    ...usage,
  };
  out.targetCpuUsPerRequest = out.responses ? (usage.targetCpuSeconds * 1e6) / out.responses : null;
  if (rate) {
    out.rate = rate;
    out.corrected = mergeHistograms(results.map((r) => r.correctedLatency));
    out.meanDispatchLagMs = results.reduce((s, r) => s + r.meanDispatchLagMs, 0) / results.length;
    out.backlogAtEnd = results.reduce((s, r) => s + r.backlogAtEnd, 0);
  }
  await Promise.all(kids.map((k) => k.child.exited));
  return out;
}

/** Opens N idle mTLS connections from a few client processes; reads the target's RSS meanwhile. */
async function measureIdle(target) {
  const n = CFG.idleConnections;
  const rssBefore = treeRssBytes(target.pid);
  const t0 = performance.now();
  const kids = [];
  for (let i = 0; i < CFG.idleClients; i++) {
    const share = Math.floor(n / CFG.idleClients) + (i < n % CFG.idleClients ? 1 : 0);
    const argv = ['--port', String(target.port), '--tls', '--cert', PKI.p256Cert, '--key', PKI.p256Key, '--ca', PKI.ca, '--idle', String(share), '--idle-timeout', QUICK ? '40' : '100'];
    const child = start(`idle-${i}`, 'bash', ['-c', `${RAISE_FDS}; exec ${shellQuote(process.execPath)} ${shellQuote(join(HERE, 'load.mjs'))} ${argv.map(shellQuote).join(' ')}`], { stdout: 'pipe' });
    kids.push({ child, lines: jsonLines(child) });
  }
  const reports = await Promise.all(kids.map((k) => k.lines.next(QUICK ? 45_000 : 105_000)));
  const seconds = (performance.now() - t0) / 1000;
  await sleep(1000); // let the target settle (handshake buffers freed, GC)
  const rssWith = treeRssBytes(target.pid);
  const established = reports.reduce((s, r) => s + r.established, 0);
  const result = {
    wanted: n,
    established,
    failed: reports.reduce((s, r) => s + r.failed, 0),
    openAtRead: reports.reduce((s, r) => s + r.open, 0),
    secondsToOpen: seconds,
    rssBeforeBytes: rssBefore,
    rssWithBytes: rssWith,
    rssPerConnectionBytes: established ? (rssWith - rssBefore) / established : null,
    clientRssBytes: reports.reduce((s, r) => s + r.clientRssBytes, 0),
    errors: Object.assign({}, ...reports.map((r) => r.errors)),
    loadavg: loadavg(),
  };
  for (const k of kids) k.child.stdin.end();
  await Promise.all(kids.map((k) => Promise.race([k.child.exited, sleep(5000).then(() => stop(k.child))])));
  return result;
}

async function measureTarget(target, results) {
  const r = (results[target.name] ??= {});
  r.p256SignsPerSecondBefore = cpuSpeed();
  step(`${target.name}: keep-alive load, ${CFG.connections} connections`);
  r.keepAlive = await runLoad(target);
  r.handshakes = {};
  for (const alg of ['p256', 'rsa2048']) {
    step(`${target.name}: full handshakes, ${alg} client certificate`);
    r.handshakes[alg] = await measureHandshakes(target, alg, 'new');
  }
  step(`${target.name}: resumed handshakes, TLS 1.3 + one GET each`);
  r.handshakes.resumed13 = await measureHandshakes(target, 'p256', 'reuse13');
  step(`${target.name}: resumed handshakes, TLS 1.2`);
  r.handshakes.resumed12 = await measureHandshakes(target, 'p256', 'reuse12');
  return r;
}

// --- CPU profile summary -----------------------------------------------------------------------
function summarizeProfile(file) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  // Shares are of the time the thread was busy: the (idle) samples are left out.
  let idle = 0;
  for (const [id, us] of self) if (byId.get(id).callFrame.functionName === '(idle)') idle += us;
  const total = [...self.values()].reduce((a, b) => a + b, 0) - idle;
  const fns = new Map();
  const areas = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName === '(idle)') continue;
    const where = url ? `${url.replace(/^file:\/\//, '').replace(ROOT + '/', '')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'} ${where}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const area = !url
      ? functionName.startsWith('(') ? functionName : '(native: C++ / OpenSSL / builtins)'
      : url.includes('node_modules/')
        ? `npm: ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)[1]}`
        : url.startsWith('node:')
          ? `node: ${url.slice(5)}`
          : url.includes('/dist/')
            ? `sidecar: ${url.slice(url.indexOf('/dist/') + 6)}`
            : url;
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), share: `${((100 * us) / total).toFixed(1)} %` }));
  return { busyMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), topFunctions: top(fns, 20), topAreas: top(areas, 15) };
}

// --- perf profile (native frames) ------------------------------------------------------------
/** Native frames worth naming: where a keep-alive request's CPU goes below the JS profiler's view. */
const PERF_FRAMES = [
  ['tcp_sendmsg', 'kernel: TCP send (on loopback it also delivers to, and wakes, the receiver)'],
  ['tcp_recvmsg', 'kernel: TCP receive'],
  ['do_epoll_wait', 'kernel: epoll wait'],
  ['SSL_write', 'OpenSSL: SSL_write (encrypt + record)'],
  ['SSL_read', 'OpenSSL: SSL_read (decrypt)'],
  ['node::crypto::TLSWrap::ClearOut', 'Node TLSWrap: decrypted data to JS (incl. the HTTP parser run from it)'],
  ['node::StreamBase::Writev', 'Node: writev on the client TLS socket (incl. SSL_write + send)'],
  ['llhttp_execute', 'llhttp: parsing client requests'],
];

/** Samples the target with `perf record -g` through one keep-alive run; inclusive shares per frame. */
async function perfDuringLoad(target) {
  if (!which('perf')) return { error: 'perf not found (apt-get install linux-perf)' };
  const data = join(WORK, 'perf.data');
  const recordAfterMs = 300 + CFG.warmupSeconds * 1000;
  let recorder;
  const timer = setTimeout(() => {
    recorder = start('perf-record', 'perf', ['record', '-F', '999', '-g', '-p', String(target.pid), '-o', data, '--', 'sleep', String(CFG.durationSeconds)]);
  }, recordAfterMs);
  const loaded = await runLoad(target);
  clearTimeout(timer);
  if (recorder) await recorder.exited;
  if (!existsSync(data)) return { error: 'perf record wrote nothing (perf_event_paranoid? see perf-record.log)' };
  const report = (extra) => spawnSync('perf', ['report', '-i', data, '--stdio', '-g', 'none', ...extra], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout ?? '';
  const shares = (text) =>
    text
      .split('\n')
      .filter((l) => /^\s+\d/.test(l))
      .map((l) => l.trim().split(/\s+/));
  const byDso = shares(report(['--no-children', '--sort', 'dso'])).map(([pct, ...name]) => ({ name: name.join(' '), share: pct }));
  const inclusive = new Map();
  for (const [children, , , ...sym] of shares(report(['--children', '--sort', 'sym']))) {
    const name = sym.join(' ');
    for (const [frame] of PERF_FRAMES) if (name.startsWith(frame) || name.includes(` ${frame}`) || name.includes(`${frame}(`)) inclusive.set(frame, Math.max(inclusive.get(frame) ?? 0, parseFloat(children)));
  }
  return {
    keepAliveRps: loaded.rps,
    targetCpuUsPerRequest: loaded.targetCpuUsPerRequest,
    byDso: byDso.slice(0, 6),
    frames: PERF_FRAMES.map(([frame, what]) => ({ frame, what, inclusive: inclusive.has(frame) ? `${inclusive.get(frame).toFixed(1)} %` : '—' })),
  };
}

// --- output ------------------------------------------------------------------------------------
const t00 = performance.now();
const step = (what) => console.error(`[${((performance.now() - t00) / 1000).toFixed(0).padStart(3)} s] ${what}  (load ${loadavg().join(' ')})`);
const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ratio = (a, b) => (a == null || b == null || !b ? '—' : `${(a / b).toFixed(2)}x`);
const MB = (b) => (b == null ? null : b / 1048576);

function printTable(title, header, rows) {
  const widths = header.map((h, i) => Math.max(String(h).length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

// --- the run -----------------------------------------------------------------------------------
async function main() {
  const env = {
    startedAt: new Date().toISOString(),
    quick: QUICK,
    config: CFG,
    node: process.version,
    openssl: tryRun('openssl', ['version']),
    nginx: NGINX ? tryRun(NGINX, ['-v']) : null,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    git: tryRun('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    srcChangedSinceCommit: (tryRun('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'package.json']) ?? '').split('\n').filter(Boolean),
    dist: { builtAt: DIST.builtAt, sha256: DIST.sha256 },
    loadavgStart: loadavg(),
    p256SignsPerSecondStart: cpuSpeed(),
  };
  step(`work dir ${WORK}; ${env.cpus} CPUs; ${env.openssl}; ${env.nginx ?? 'nginx: not found'}`);
  if (!which('openssl')) throw new Error('the openssl CLI is needed (s_time is the handshake client)');
  if (!NGINX && !args['no-nginx']) console.error('nginx not found: install it (`apt-get install -y nginx`) for the nginx columns; skipping them.');

  PKI = await createPki();
  UPSTREAM = await startUpstream();
  const results = {};
  const ceiling = { name: 'ceiling', kind: 'upstream', pid: UPSTREAM.pid, port: UPSTREAM.port };

  step('ceiling (upstream direct, plain HTTP): keep-alive load');
  results.ceiling = { p256SignsPerSecondBefore: cpuSpeed(), keepAlive: await runLoad(ceiling) };

  if (NGINX) {
    try {
      const nginx = await startNginx();
      await measureTarget(nginx, results);
      await stop(nginx.child);
      // Idle connections on a fresh process, as for the sidecar.
      const fresh = await startNginx();
      step(`nginx (fresh): ${CFG.idleConnections} idle mTLS connections`);
      results.nginx.idle = await measureIdle(fresh);
      await stop(fresh.child);
    } catch (err) {
      console.error(`nginx: ${err.message}; skipping its columns`);
      results.nginx = { error: err.message };
    }
  }

  // The floor stays up (idle) until the half-peak latency run, which it also gets, at the same rate.
  const floor = args['no-floor'] ? undefined : await startFloor('node-floor');
  if (floor) await measureTarget(floor, results);

  const w1 = await startSidecar('sidecar-1', { workers: 1, revocation: 'crl' });
  await measureTarget(w1, results);

  // Half the peak of workers: 1, open loop, straight to the upstream and through the sidecar.
  const rate = Math.max(100, Math.round(results['sidecar-1'].keepAlive.rps / 2 / 10) * 10);
  step(`latency at half the sidecar's peak: ${rate} req/s open loop, upstream direct`);
  const atHalfUpstream = await runLoad(ceiling, { rate });
  step(`latency at half the sidecar's peak: ${rate} req/s open loop, through the sidecar`);
  const atHalfSidecar = await runLoad(w1, { rate });
  let atHalfFloor;
  if (floor) {
    step(`latency at half the sidecar's peak: ${rate} req/s open loop, through the node floor`);
    atHalfFloor = await runLoad(floor, { rate });
    await stop(floor.child);
    const fresh = await startFloor('node-floor-idle');
    step(`node-floor (fresh): ${CFG.idleConnections} idle mTLS connections`);
    results['node-floor'].idle = await measureIdle(fresh);
    await stop(fresh.child);
  }
  results.latencyAtHalfPeak = {
    rate,
    upstream: atHalfUpstream,
    sidecar: atHalfSidecar,
    floor: atHalfFloor,
    floorAddedP99Ms: atHalfFloor ? atHalfFloor.p99Ms - atHalfUpstream.p99Ms : undefined,
    addedP50Ms: atHalfSidecar.p50Ms - atHalfUpstream.p50Ms,
    addedP99Ms: atHalfSidecar.p99Ms - atHalfUpstream.p99Ms,
    addedCorrectedP99Ms: atHalfSidecar.corrected.p99Ms - atHalfUpstream.corrected.p99Ms,
  };

  // Warm revocation check: the same sidecar with mode none, alternated with the crl one.
  const none = await startSidecar('sidecar-1-norevocation', { workers: 1, revocation: 'none' });
  step('revocation cost: warming up the mode-none sidecar');
  await runLoad(none, { warmOnly: true });
  await measureHandshakes(none, 'p256', 'new', 1);
  const rounds = [];
  for (let i = 0; i < CFG.revocationRounds; i++) {
    step(`revocation cost, round ${i + 1}/${CFG.revocationRounds}: full handshakes, mode none then crl`);
    const a = await measureHandshakes(none, 'p256', 'new', CFG.revocationSeconds);
    const b = await measureHandshakes(w1, 'p256', 'new', CFG.revocationSeconds);
    rounds.push({ none: a, crl: b, costPercent: 100 * (a.rate / b.rate - 1), costPercentPerCpu: a.perTargetCpuSecond && b.perTargetCpuSecond ? 100 * (a.perTargetCpuSecond / b.perTargetCpuSecond - 1) : null });
  }
  await stop(none.child);
  const median = (xs) => {
    const s = xs.filter((x) => x != null).sort((a, b) => a - b);
    return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
  };
  results.revocation = {
    rounds,
    noneRate: median(rounds.map((r) => r.none.rate)),
    crlRate: median(rounds.map((r) => r.crl.rate)),
    costPercent: median(rounds.map((r) => r.costPercent)),
    costPercentPerCpu: median(rounds.map((r) => r.costPercentPerCpu)),
  };

  await stop(w1.child);
  // On a fresh process, so "before" is a baseline and not a heap grown by the load runs.
  const fresh = await startSidecar('sidecar-1-idle', { workers: 1, revocation: 'crl' });
  step(`sidecar-1 (fresh): ${CFG.idleConnections} idle mTLS connections`);
  results['sidecar-1'].idle = await measureIdle(fresh);
  await stop(fresh.child);

  const auto = await startSidecar('sidecar-auto', { workers: 'auto', revocation: 'crl' });
  await measureTarget(auto, results);
  await stop(auto.child);

  if (args['cpu-prof']) {
    const dir = join(WORK, 'cpu-prof');
    const prof = await startSidecar('sidecar-1-profiled', { workers: 1, revocation: 'crl', nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] });
    step('sidecar-1 under --cpu-prof: keep-alive load');
    const loaded = await runLoad(prof);
    await stop(prof.child, 10_000);
    const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) : undefined;
    if (file) {
      results.cpuProfile = { keepAliveRps: loaded.rps, ...summarizeProfile(join(dir, file)) };
      mkdirSync(join(HERE, 'results'), { recursive: true });
      const keepAs = join(HERE, 'results', `sidecar-keepalive-${env.startedAt.replace(/[:.]/g, '-')}.cpuprofile`);
      writeFileSync(keepAs, readFileSync(join(dir, file)));
      results.cpuProfile.file = keepAs;
    } else results.cpuProfile = { error: 'no .cpuprofile written' };
  }

  if (args.perf) {
    const sampled = await startSidecar('sidecar-1-perf', { workers: 1, revocation: 'crl' });
    step('sidecar-1 under perf record: keep-alive load');
    results.perfProfile = await perfDuringLoad(sampled);
    await stop(sampled.child);
  }

  env.loadavgEnd = loadavg();
  env.p256SignsPerSecondEnd = cpuSpeed();
  env.seconds = (performance.now() - t00) / 1000;
  report(env, results);
}

function report(env, R) {
  const T = ['ceiling', 'nginx', 'node-floor', 'sidecar-1', 'sidecar-auto'];
  const get = (t, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), R[t]);
  const row = (label, path, digits = 0, scale = (x) => x, ratios = true, lowerIsBetter = false) => {
    const v = T.map((t) => {
      const x = get(t, path);
      return x == null ? null : scale(x);
    });
    const [c, n, f, s1, sa] = v;
    void lowerIsBetter;
    return [label, ...v.map((x) => fmt(x, digits)), ratios ? ratio(s1, n) : '', ratios ? ratio(sa, n) : '', ratios ? ratio(f, n) : '', ratios ? ratio(s1, f) : '', ratios ? ratio(s1, c) : ''];
  };
  const header = ['', 'ceiling', 'nginx', 'node floor', 'sidecar w:1', 'sidecar w:auto', 'w:1/nginx', 'auto/nginx', 'floor/nginx', 'w:1/floor', 'w:1/ceiling'];
  printTable(`Side by side — ${env.cpus} CPUs, ${env.node}, ${env.openssl}, ${env.nginx ?? 'no nginx'}; load average at start ${env.loadavgStart.join(' ')}, at end ${env.loadavgEnd.join(' ')}; one CPU: ${fmt(env.p256SignsPerSecondStart)} → ${fmt(env.p256SignsPerSecondEnd)} P-256 signs/s`, header, [
    row('machine: one CPU, P-256 signs/s, before', 'p256SignsPerSecondBefore', 0, undefined, false),
    row('full handshakes/s, P-256 client', 'handshakes.p256.rate'),
    row('full handshakes/s, RSA-2048 client', 'handshakes.rsa2048.rate'),
    row('resumed TLS 1.3 conns/s, each + 1 GET', 'handshakes.resumed13.rate'),
    row('  share really resumed, %', 'handshakes.resumed13.resumedShare', 0, (x) => x * 100, false),
    row('resumed TLS 1.2 handshakes/s', 'handshakes.resumed12.rate'),
    row('  share really resumed, %', 'handshakes.resumed12.resumedShare', 0, (x) => x * 100, false),
    row('full handshakes per target CPU-second, P-256', 'handshakes.p256.perTargetCpuSecond'),
    row('full handshakes per target CPU-second, RSA-2048', 'handshakes.rsa2048.perTargetCpuSecond'),
    row('  target CPU during P-256 handshakes, cores', 'handshakes.p256.targetCpuCores', 2, undefined, false),
    row('  s_time clients CPU, cores', 'handshakes.p256.clientCpuCores', 2, undefined, false),
    row(`keep-alive req/s (${CFG.connections} conns)`, 'keepAlive.rps'),
    row('  latency p50, ms', 'keepAlive.p50Ms', 2),
    row('  latency p99, ms', 'keepAlive.p99Ms', 2),
    row('  target CPU, cores', 'keepAlive.targetCpuCores', 2, undefined, false),
    row('  target CPU per request, µs', 'keepAlive.targetCpuUsPerRequest', 1),
    row('  upstream CPU, cores', 'keepAlive.upstreamCpuCores', 2, undefined, false),
    row('  load client CPU, cores', 'keepAlive.clientCpuCores', 2, undefined, false),
    row('  others on the machine, cores', 'keepAlive.otherCpuCores', 2, undefined, false),
    row('  errors + non-2xx', 'keepAlive.non2xx', 0, undefined, false),
    row(`RSS of a fresh process, MB`, 'idle.rssBeforeBytes', 1, MB),
    row(`RSS with ${CFG.idleConnections} idle mTLS conns, MB`, 'idle.rssWithBytes', 1, MB),
    row('  per connection, KB', 'idle.rssPerConnectionBytes', 1, (x) => x / 1024),
    row('  connections established', 'idle.established', 0, undefined, false),
  ]);
  const L = R.latencyAtHalfPeak;
  const F = L.floor;
  const fl = (x, d = 3) => (F ? fmt(x, d) : '—');
  printTable(`Latency at half the sidecar's (workers: 1) peak: ${L.rate} req/s, open loop, ${CFG.connections} connections`, ['', 'upstream direct', 'through node floor', 'through sidecar w:1', 'added by sidecar', 'added by floor'], [
    ['p50, ms (write → last byte)', fmt(L.upstream.p50Ms, 3), fl(F?.p50Ms), fmt(L.sidecar.p50Ms, 3), fmt(L.addedP50Ms, 3), fl(F && F.p50Ms - L.upstream.p50Ms)],
    ['p90, ms', fmt(L.upstream.p90Ms, 3), fl(F?.p90Ms), fmt(L.sidecar.p90Ms, 3), fmt(L.sidecar.p90Ms - L.upstream.p90Ms, 3), fl(F && F.p90Ms - L.upstream.p90Ms)],
    ['p99, ms', fmt(L.upstream.p99Ms, 3), fl(F?.p99Ms), fmt(L.sidecar.p99Ms, 3), fmt(L.addedP99Ms, 3), fl(L.floorAddedP99Ms)],
    ['p99 from due time, ms (incl. ~1 ms timer)', fmt(L.upstream.corrected.p99Ms, 3), fl(F?.corrected.p99Ms), fmt(L.sidecar.corrected.p99Ms, 3), fmt(L.addedCorrectedP99Ms, 3), ''],
    ['achieved req/s', fmt(L.upstream.rps), fl(F?.rps, 0), fmt(L.sidecar.rps), '', ''],
    ['target CPU, cores', '', fl(F?.targetCpuCores, 2), fmt(L.sidecar.targetCpuCores, 2), '', ''],
    ['others on the machine, cores', fmt(L.upstream.otherCpuCores, 2), fl(F?.otherCpuCores, 2), fmt(L.sidecar.otherCpuCores, 2), '', ''],
  ]);
  const V = R.revocation;
  printTable('Warm revocation check (sidecar workers: 1, full P-256 handshakes, rounds alternated)', ['', 'mode none', 'mode crl', 'cost'], [
    ['handshakes/s (median of rounds)', fmt(V.noneRate), fmt(V.crlRate), `${fmt(V.costPercent, 1)} %`],
    ...V.rounds.map((r, i) => [`  round ${i + 1}: handshakes/s | per target CPU-s`, `${fmt(r.none.rate)} | ${fmt(r.none.perTargetCpuSecond)}`, `${fmt(r.crl.rate)} | ${fmt(r.crl.perTargetCpuSecond)}`, `${fmt(r.costPercent, 1)} % | ${fmt(r.costPercentPerCpu, 1)} %`]),
  ]);

  const n = R.nginx ?? {};
  const s1 = R['sidecar-1'];
  const sa = R['sidecar-auto'];
  const yes = (ok) => (ok == null ? 'n/a' : ok ? 'MET' : 'NOT MET');
  const f = R['node-floor'] ?? {};
  const goals = [
    ['full handshakes/s >= 1.2x nginx (P-256, one worker each)', `${fmt(s1.handshakes.p256.rate)} vs ${fmt(n.handshakes?.p256.rate)} (per CPU-s: ${fmt(s1.handshakes.p256.perTargetCpuSecond)} vs ${fmt(n.handshakes?.p256.perTargetCpuSecond)})`, yes(n.handshakes ? s1.handshakes.p256.rate >= 1.2 * n.handshakes.p256.rate : null), f.handshakes ? `${fmt(f.handshakes.p256.rate)} (per CPU-s: ${fmt(f.handshakes.p256.perTargetCpuSecond)})` : '—'],
    ['full handshakes/s >= 1.2x nginx (RSA-2048)', `${fmt(s1.handshakes.rsa2048.rate)} vs ${fmt(n.handshakes?.rsa2048.rate)}`, yes(n.handshakes ? s1.handshakes.rsa2048.rate >= 1.2 * n.handshakes.rsa2048.rate : null), f.handshakes ? fmt(f.handshakes.rsa2048.rate) : '—'],
    ['keep-alive req/s >= 0.75x nginx (one worker each)', `${ratio(s1.keepAlive.rps, n.keepAlive?.rps)} (CPU per request: ${ratio(n.keepAlive?.targetCpuUsPerRequest, s1.keepAlive.targetCpuUsPerRequest)})`, yes(n.keepAlive ? s1.keepAlive.rps >= 0.75 * n.keepAlive.rps : null), f.keepAlive ? `${ratio(f.keepAlive.rps, n.keepAlive?.rps)} (${fmt(f.keepAlive.targetCpuUsPerRequest, 1)} µs/request)` : '—'],
    [`workers: auto scales with cores (${env.cpus})`, `${ratio(sa.keepAlive.rps, s1.keepAlive.rps)} req/s, ${ratio(sa.handshakes.p256.rate, s1.handshakes.p256.rate)} handshakes/s`, sa.keepAlive.rps >= 1.5 * s1.keepAlive.rps ? 'MET' : 'NOT MET (see README: 2 cores shared with client+upstream)', '—'],
    ['p99 added latency < 1 ms at half peak', `${fmt(L.addedP99Ms, 3)} ms`, yes(L.addedP99Ms < 1), L.floorAddedP99Ms == null ? '—' : `${fmt(L.floorAddedP99Ms, 3)} ms`],
    [`${CFG.idleConnections} idle mTLS connections in < 400 MB RSS`, `${fmt(MB(s1.idle.rssWithBytes), 1)} MB (${s1.idle.established} established)`, CFG.idleConnections !== 10000 ? 'n/a (needs 10,000: a full run)' : yes(s1.idle.established === CFG.idleConnections ? s1.idle.rssWithBytes < 400 * 1048576 : null), f.idle ? `${fmt(MB(f.idle.rssWithBytes), 1)} MB` : '—'],
    ['warm revocation check adds < 2 % to a handshake', `${fmt(V.costPercent, 1)} % (per CPU-s: ${fmt(V.costPercentPerCpu, 1)} %)`, yes(V.costPercent < 2), '—'],
  ];
  printTable("Targets of the performance issue (node floor: what a bare Node https + undici proxy reaches in the same run)", ['target', 'measured', '', 'node floor'], goals);

  if (R.cpuProfile?.topFunctions) {
    printTable(`CPU profile of the sidecar (workers: 1) under keep-alive load (${fmt(R.cpuProfile.keepAliveRps)} req/s): self time by area (shares of ${R.cpuProfile.busyMs} ms busy; whole process life, start-up included)`, ['area', 'self ms', 'share'], R.cpuProfile.topAreas.map((x) => [x.name, x.selfMs, x.share]));
    printTable('  top self-time functions', ['function', 'self ms', 'share'], R.cpuProfile.topFunctions.map((x) => [x.name, x.selfMs, x.share]));
    console.log(`  profile: ${R.cpuProfile.file} (open in Chrome DevTools → Performance)`);
  }

  if (R.perfProfile?.frames) {
    const P = R.perfProfile;
    printTable(`perf record of the sidecar (workers: 1) under keep-alive load (${fmt(P.keepAliveRps)} req/s, ${fmt(P.targetCpuUsPerRequest, 1)} µs CPU/request): samples by binary`, ['binary', 'share'], P.byDso.map((x) => [x.name, x.share]));
    printTable('  native frames, inclusive (each with its callees; shares overlap)', ['frame', 'what', 'share'], P.frames.map((x) => [x.frame, x.what, x.inclusive]));
  } else if (R.perfProfile?.error) console.log(`\nperf profile: ${R.perfProfile.error}`);

  mkdirSync(join(HERE, 'results'), { recursive: true });
  const file = join(HERE, 'results', `side-by-side-${env.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ env, results: R, goals: goals.map(([target, measured, verdict, nodeFloor]) => ({ target, measured, verdict, nodeFloor })) }, null, 2)}\n`);
  console.log(`\nAll figures: ${file}  (run took ${fmt(env.seconds)} s)`);
}

try {
  await main();
} catch (err) {
  console.error(`benchmark failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  for (const child of [...children]) await stop(child, 2000);
  if (!args.keep) rmSync(WORK, { recursive: true, force: true });
  else console.error(`kept ${WORK}`);
}
