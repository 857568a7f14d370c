/**
 * Per-device limits (issue 16): what they cost and what they protect. Runs against dist/.
 *
 *   npm run build && node test/bench/limits.mjs [--hot-path] [--memory] [--flood]
 *        [--rules FILE] [--rounds 3] [--seconds 5] [--connections 16]
 *
 * --hot-path  CPU per forwarded request (the sidecar process's user+system time over a closed-loop
 *             keep-alive run, load.mjs) with per-device limits off and on (a rate high enough
 *             that nothing is refused, plus per-device connection limits), alternating rounds;
 *             --rules FILE adds a third sidecar with that YAML fragment merged in as well, limits on
 *             (test/bench/fifty-rules.yaml: 50 route rules, the request matching the last).
 * --memory    heap per tracked device: 100,000 devices through createDeviceLimits, keyed by device
 *             id and by fingerprint, each in a fresh process (limits-memory.mjs).
 * --flood     50 devices at 4 req/s each (limit 10/s) on keep-alive connections for --seconds,
 *             without and then with one device flooding at 20x its limit (200 req/s on 8
 *             connections): p50/p99 of the 50, their errors, the flooder's 429s.
 * Without a flag all three run. Results are printed and written to test/bench/results/.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../..');
const { values: args } = parseArgs({
  options: {
    'hot-path': { type: 'boolean', default: false },
    memory: { type: 'boolean', default: false },
    flood: { type: 'boolean', default: false },
    rules: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
  },
});
const all = !args['hot-path'] && !args.memory && !args.flood;
const SECONDS = Number(args.seconds);
const WORK = mkdtempSync(join(tmpdir(), 'mtls-bench-limits-'));
const children = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(WORK, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

const { generateKey, issueCertificate } = await import(join(ROOT, 'dist/pki/index.js'));
const CLK_TCK = 100;

function cpuSeconds(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
/** Spawns a child whose first stdout line is JSON (upstream.mjs, load.mjs) and resolves with it. */
function firstJsonLine(child) {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(JSON.parse(buf.slice(0, i)));
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before answering`)));
  });
}
function startChild(argv) {
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
async function stopChild(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

// --- PKI ---------------------------------------------------------------------------------------
const day = 86_400_000;
const caKey = await generateKey('p256');
const ca = await issueCertificate({ subject: 'CN=bench root CA,O=mtls-sidecar bench', key: caKey, isCa: true, notAfter: new Date(Date.now() + 2 * day) });
const issuer = { ...ca, key: caKey };
const serverKey = await generateKey('p256');
const server = await issueCertificate({ subject: 'CN=localhost', key: serverKey, issuer, san: { dns: ['localhost'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'], notAfter: new Date(Date.now() + day) });
const files = { ca: join(WORK, 'ca.pem'), cert: join(WORK, 'server.pem'), key: join(WORK, 'server.key') };
writeFileSync(files.ca, ca.pem);
writeFileSync(files.cert, server.pem);
writeFileSync(files.key, serverKey.privateKeyPem, { mode: 0o600 });
async function device(id) {
  const key = await generateKey('p256');
  const cert = await issueCertificate({ subject: `CN=${id}`, key, issuer, san: { uri: [`urn:device:${id}`] }, extendedKeyUsage: ['clientAuth'], notAfter: new Date(Date.now() + day) });
  const certFile = join(WORK, `${id}.pem`);
  const keyFile = join(WORK, `${id}.key`);
  writeFileSync(certFile, cert.pem);
  writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
  return { id, certFile, keyFile, context: tls.createSecureContext({ cert: cert.pem, key: key.privateKeyPem, ca: ca.pem }) };
}

const upstream = startChild([join(HERE, 'upstream.mjs')]);
const UPSTREAM_PORT = (await firstJsonLine(upstream)).port;
const rules = args.rules ? parseYaml(readFileSync(args.rules, 'utf8')) : {};

function merge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object' ? merge(base[k], v) : v;
  return out;
}
let configs = 0;
/** A sidecar child (dist/cli.js serve) with `limits` merged in; resolves once it answers. */
async function startSidecar(limits, probeDevice, withRules = false) {
  const port = await freePort();
  const file = join(WORK, `sidecar-${++configs}.yaml`);
  const config = merge(
    {
      version: 1,
      listen: { host: '127.0.0.1', port },
      tls: { cert: files.cert, key: files.key },
      clientAuth: { caBundle: [files.ca] },
      upstream: { url: `http://127.0.0.1:${UPSTREAM_PORT}` },
      limits: { keepAliveTimeoutMs: 300_000, ...limits },
      admin: { enabled: false },
      log: { level: 'warn', accessLog: false },
      revocation: { mode: 'none' },
      shutdown: { timeoutSeconds: 1 },
    },
    withRules ? rules : {},
  );
  writeFileSync(file, stringify(config));
  const child = startChild([join(ROOT, 'dist/cli.js'), 'serve', '--config', file]);
  child.stdout.resume();
  for (let i = 0; i < 100; i++) {
    const conn = await connect(port, probeDevice).catch(() => undefined);
    if (conn) {
      const r = await conn.get();
      conn.close();
      if (r.status === 200) return { child, port };
    }
    await sleep(100);
  }
  throw new Error('sidecar did not start');
}

/** A keep-alive connection sending one request at a time; `get()` resolves with status and latency. */
function connect(port, dev) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: dev.context }, () => resolve(conn));
    let buf = '';
    let waiter;
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0 || !waiter) return;
      const len = Number(/content-length: *(\d+)/i.exec(buf.slice(0, i))?.[1] ?? 0);
      if (buf.length < i + 4 + len) return;
      const status = Number(buf.slice(9, 12));
      buf = buf.slice(i + 4 + len);
      const w = waiter;
      waiter = undefined;
      w({ status });
    });
    socket.on('error', (e) => (waiter ? (waiter({ error: e.code ?? e.message }), (waiter = undefined)) : reject(e)));
    socket.on('close', () => waiter && (waiter({ error: 'closed' }), (waiter = undefined)));
    const conn = {
      get() {
        return new Promise((res) => {
          if (socket.destroyed) return res({ error: 'closed' });
          const t0 = performance.now();
          waiter = (r) => res({ ...r, ms: performance.now() - t0 });
          socket.write('GET /bench HTTP/1.1\r\nHost: localhost\r\n\r\n');
        });
      },
      close: () => socket.destroy(),
    };
  });
}
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const results = { at: new Date().toISOString(), node: process.version, rules: args.rules ?? null };

// --- hot path ----------------------------------------------------------------------------------
if (all || args['hot-path']) {
  const dev = await device('bench-hot-path');
  const limitsOn = { perDevice: { requestsPerSecond: 1_000_000, maxConnections: 1_000, maxConnectionsPerCertificate: 1_000 } };
  // off: neither limits nor rules; on: limits; with --rules, 'rules+limits': both (the issue's figure).
  const variants = { off: [{}, false], on: [limitsOn, false], ...(args.rules ? { 'rules+limits': [limitsOn, true] } : {}) };
  const names = Object.keys(variants);
  const rows = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const name of round % 2 === 0 ? names : names.slice().reverse()) {
      const sc = await startSidecar(variants[name][0], dev, variants[name][1]);
      const before = cpuSeconds(sc.child.pid);
      const load = startChild([join(HERE, 'load.mjs'), '--port', String(sc.port), '--tls', '--cert', dev.certFile, '--key', dev.keyFile, '--ca', files.ca, '--connections', args.connections, '--warmup', '0', '--duration', String(SECONDS)]);
      const out = await firstJsonLine(load);
      const cpu = cpuSeconds(sc.child.pid) - before;
      await stopChild(sc.child);
      rows[name].push({ rps: Math.round(out.rps), cpuUsPerRequest: Math.round((cpu * 1e6) / out.responses), non2xx: out.non2xx });
      console.log(`hot path ${name}: ${Math.round(out.rps)} req/s, ${Math.round((cpu * 1e6) / out.responses)} µs CPU per request (non-2xx ${out.non2xx})`);
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const off = median(rows.off.map((r) => r.cpuUsPerRequest));
  const on = median(rows.on.map((r) => r.cpuUsPerRequest));
  // The check alone, in this process: what it adds to each request, free of the run-to-run noise
  // of whole-request CPU on a shared machine.
  const { createDeviceLimits } = await import(join(ROOT, 'dist/policy/index.js'));
  const limits = createDeviceLimits({ perDevice: { requestsPerSecond: 1_000_000, key: 'deviceId', maxConnections: 0, maxConnectionsPerCertificate: 0, trackedDevices: 100_000 }, routes: {}, store: 'local' });
  const ids = Array.from({ length: 1_000 }, (_, i) => `device-${i}`);
  const calls = 2_000_000;
  for (let i = 0; i < 200_000; i++) limits.checkRequest(ids[i % 1_000], 'fp', 'default');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) limits.checkRequest(ids[i % 1_000], 'fp', 'default');
  const nsPerCheck = Math.round(Number(process.hrtime.bigint() - t0) / calls);
  const both = rows['rules+limits'] ? median(rows['rules+limits'].map((r) => r.cpuUsPerRequest)) : undefined;
  const pct = (x) => Math.round(((x - off) / off) * 1000) / 10;
  results.hotPath = { rows, medianCpuUsPerRequest: { off, on, ...(both === undefined ? {} : { rulesAndLimits: both }) }, overheadPercent: pct(on), ...(both === undefined ? {} : { rulesAndLimitsOverheadPercent: pct(both) }), nsPerCheck };
  console.log(`hot path: median ${off} µs off, ${on} µs limits on: ${pct(on)} %${both === undefined ? '' : `; ${both} µs rules+limits: ${pct(both)} %`}; the check alone: ${nsPerCheck} ns (${((nsPerCheck / 1000 / off) * 100).toFixed(2)} % of a request)`);
}

// --- memory per tracked device ------------------------------------------------------------------
if (all || args.memory) {
  results.memory = {};
  for (const key of ['deviceId', 'fingerprint']) {
    const child = spawn(process.execPath, ['--expose-gc', join(HERE, 'limits-memory.mjs'), key, '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const row = await firstJsonLine(child);
    results.memory[key] = row.bytesPerDevice;
    console.log(`memory: ${row.bytesPerDevice} bytes per tracked device (key: ${key}, ${row.devices} devices, id strings not counted)`);
  }
}

// --- flood -------------------------------------------------------------------------------------
if (all || args.flood) {
  const RATE = 10;
  const good = await Promise.all(Array.from({ length: 50 }, (_, i) => device(`calm-${i}`)));
  const flooder = await device('flooder');
  const sc = await startSidecar({ perDevice: { requestsPerSecond: RATE } }, good[0]);
  const paced = async (conn, intervalMs, end, sink) => {
    let due = performance.now();
    while (performance.now() < end) {
      sink.push(await conn.get());
      due += intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
  };
  results.flood = {};
  for (const withFlooder of [false, true]) {
    const goodConns = await Promise.all(good.map((d) => connect(sc.port, d)));
    const floodConns = withFlooder ? await Promise.all(Array.from({ length: 8 }, () => connect(sc.port, flooder))) : [];
    const calm = [];
    const flood = [];
    const end = performance.now() + SECONDS * 1000;
    await Promise.all([...goodConns.map((c) => paced(c, 250, end, calm)), ...floodConns.map((c) => paced(c, 40, end, flood))]);
    [...goodConns, ...floodConns].forEach((c) => c.close());
    const ms = calm.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
    const row = {
      requests: calm.length,
      errors: calm.filter((r) => r.status !== 200).length,
      p50Ms: Math.round(pct(ms, 50) * 100) / 100,
      p99Ms: Math.round(pct(ms, 99) * 100) / 100,
      ...(withFlooder ? { flooderSent: flood.length, flooderPerSecond: Math.round(flood.length / SECONDS), flooder429: flood.filter((r) => r.status === 429).length, flooder200: flood.filter((r) => r.status === 200).length } : {}),
    };
    results.flood[withFlooder ? 'withFlooder' : 'alone'] = row;
    console.log(`flood ${withFlooder ? 'with' : 'without'} the flooder: ${JSON.stringify(row)}`);
    await sleep(500);
  }
  await stopChild(sc.child);
}

await stopChild(upstream);
mkdirSync(join(HERE, 'results'), { recursive: true });
const out = join(HERE, 'results', `limits-${Date.now()}.json`);
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`written ${out}`);
