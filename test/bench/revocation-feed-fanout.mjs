/**
 * Revocation feed fan-out: one device CA (`ca serve`, its own process), N lightweight feed
 * subscribers (raw SSE clients in this process) and a few real sidecars (`serve` processes with
 * revocation.feed.url), all on 127.0.0.1. Each round revokes one device through the admin API
 * and measures, from the moment the revoke call returns:
 *   - when every lightweight subscriber has received the CRL carrying that revocation (p50, p99,
 *     max over subscribers; all rounds pooled);
 *   - when each real sidecar refuses the revoked device on a new connection (polled every 10 ms).
 * And the CA's CPU (% of one core, from /proc) and RSS while the subscribers are connected and idle,
 * and during the rounds.
 *
 *   npm run build && node test/bench/revocation-feed-fanout.mjs [--subscribers 200] [--sidecars 3] [--rounds 10]
 *
 * Not part of the test suite (tap ignores test/bench/). Bounded: at most 5000 subscribers, 8
 * sidecars, 50 rounds; every child is killed at the end and on Ctrl-C.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './bench-ca.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SUBSCRIBERS = Math.min(5000, arg('subscribers', 200));
const SIDECARS = Math.min(8, arg('sidecars', 3));
const ROUNDS = Math.min(50, arg('rounds', 10));
const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const children = [];
const dir = mkdtempSync(join(os.tmpdir(), 'mtls-feed-bench-'));
const cleanup = () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => (cleanup(), process.exit(130)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const waitPort = async (port) => {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) return;
    await sleep(50);
  }
  throw new Error(`port ${port} never opened`);
};
const cli = (...args) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

/** CPU seconds (user+sys) and RSS bytes of a process, from /proc. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rssPages = Number(stat[21]);
  return { cpu: ticks / 100, rss: rssPages * 4096 };
}
const pct = (list, p) => {
  const s = [...list].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// The CA.
const [enrollPort, adminPort, publishPort] = [await freePort(), await freePort(), await freePort()];
const caDir = join(dir, 'ca');
cli('ca', 'init', '--dir', caDir, '--name', 'Bench Bank', '--hostname', 'localhost', '--base-url', `http://127.0.0.1:${publishPort}`);
const caConfig = parse(readFileSync(join(caDir, 'ca.yaml'), 'utf8'));
caConfig.enroll.listen = { host: '127.0.0.1', port: enrollPort };
caConfig.admin.listen = { host: '127.0.0.1', port: adminPort };
caConfig.publish.listen = { host: '127.0.0.1', port: publishPort };
caConfig.enroll.rateLimit = { perMinute: 100000, burst: 100000 };
// Every subscriber here comes from 127.0.0.1: lift the per-address cap (publish.feed.maxSubscribersPerAddress).
caConfig.publish.feed = { maxSubscribersPerAddress: 1000000 };
caConfig.log = { level: 'warn' };
writeFileSync(join(caDir, 'ca.yaml'), stringify(caConfig));
const ca = spawn(process.execPath, [CLI, 'ca', 'serve', '--config', join(caDir, 'ca.yaml')], { stdio: 'ignore' });
children.push(ca);
await waitPort(publishPort);
const root = readFileSync(join(caDir, 'root-ca.pem'), 'utf8');
const token = readFileSync(join(caDir, 'admin-token'), 'utf8').trim();
const admin = (path, body) =>
  new Promise((resolve, reject) => {
    const req = https.request(`https://127.0.0.1:${adminPort}${path}`, { method: 'POST', ca: root, servername: 'localhost', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve(JSON.parse(t)));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });

// Devices to revoke, one per round (enrolled with the CLI's device simulator).
const devices = [];
for (let i = 0; i < ROUNDS; i++) {
  const id = `bench-${i}`;
  const { code } = await admin('/v1/admin/codes', { deviceId: id });
  cli('device', 'enroll', '--url', `https://127.0.0.1:${enrollPort}`, '--ca-cert', join(caDir, 'root-ca.pem'), '--device-id', id, '--code', code, '--out', join(dir, id));
  devices.push({ id, cert: readFileSync(join(dir, id, 'device.pem'), 'utf8'), key: readFileSync(join(dir, id, 'device.key'), 'utf8') });
}

// Real sidecars: revocations only through the feed (polling hourly), so the figure is the feed's.
const sidecars = [];
for (let i = 0; i < SIDECARS; i++) {
  const port = await freePort();
  const file = join(dir, `sidecar-${i}.yaml`);
  writeFileSync(
    file,
    stringify({
      version: 1,
      listen: { host: '127.0.0.1', port },
      tls: { cert: join(caDir, 'server.pem'), key: join(caDir, 'server.key') },
      clientAuth: { caBundle: [join(caDir, 'issuing-ca.pem'), join(caDir, 'root-ca.pem')], failureMode: 'http' },
      upstream: { url: 'http://127.0.0.1:9' },
      admin: { enabled: false },
      revocation: {
        mode: 'crl',
        crl: { urls: [`http://127.0.0.1:${publishPort}/crl`], fetchDistributionPoints: false, refreshIntervalSeconds: 3600 },
        feed: { url: `http://127.0.0.1:${publishPort}/v1/crl/feed` },
      },
      log: { level: 'warn' },
    }),
  );
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: 'ignore' });
  children.push(child);
  sidecars.push({ port });
}
for (const s of sidecars) await waitPort(s.port);

/** One TLS handshake + GET; the status (403 once the device is known revoked; 502 otherwise: no upstream). */
const probe = (port, d) =>
  new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, servername: 'localhost', ca: root, cert: d.cert, key: d.key, agent: false, path: '/' }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
  });

// Lightweight subscribers: parse only the `id:` lines; record when each id arrives.
const subscribers = [];
for (let i = 0; i < SUBSCRIBERS; i++) {
  const sub = { seen: new Map(), connected: false };
  http.get(`http://127.0.0.1:${publishPort}/v1/crl/feed`, { agent: false }, (res) => {
    sub.connected = res.statusCode === 200;
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('id: ')) sub.seen.set(line.slice(4), performance.now());
      }
    });
  });
  subscribers.push(sub);
}
for (let i = 0; i < 200 && subscribers.some((s) => !s.connected); i++) await sleep(50);
const connected = subscribers.filter((s) => s.connected).length;
await sleep(1000);
const idle0 = usage(ca.pid);
await sleep(5000);
const idle1 = usage(ca.pid);

const feedLatencies = [];
const sidecarLatencies = [];
const work0 = usage(ca.pid);
const t0 = performance.now();
for (const d of devices) {
  const before = new Set(subscribers[0].seen.keys());
  const r = await admin('/v1/admin/revoke', { deviceId: d.id, reason: 'keyCompromise' });
  const revokedAt = performance.now();
  if (!r.revoked?.length) throw new Error(`revoke ${d.id}: ${JSON.stringify(r)}`);
  // The CRL number that carries it: the first id subscriber 0 sees after the revoke.
  let id;
  for (let i = 0; i < 500 && id === undefined; i++) {
    id = [...subscribers[0].seen.keys()].find((k) => !before.has(k));
    if (id === undefined) await sleep(2);
  }
  const pending = sidecars.map(async (s) => {
    for (let i = 0; i < 500; i++) {
      if ((await probe(s.port, d)) === 403) return performance.now() - revokedAt;
      await sleep(10);
    }
    return Infinity;
  });
  for (let i = 0; i < 500 && subscribers.some((s) => s.connected && !s.seen.has(id)); i++) await sleep(5);
  for (const s of subscribers) if (s.seen.has(id)) feedLatencies.push(Math.max(0, s.seen.get(id) - revokedAt));
  sidecarLatencies.push(...(await Promise.all(pending)));
  await sleep(200);
}
const work1 = usage(ca.pid);
const elapsed = (performance.now() - t0) / 1000;

const ms = (x) => (x === Infinity ? 'never' : `${x.toFixed(1)} ms`);
console.log(`node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`subscribers connected: ${connected} of ${SUBSCRIBERS}; real sidecars: ${SIDECARS}; rounds: ${ROUNDS}`);
console.log(`CA idle with them connected: ${(((idle1.cpu - idle0.cpu) / 5) * 100).toFixed(1)} % of one core, RSS ${(idle1.rss / 2 ** 20).toFixed(0)} MiB`);
console.log(`CA during the rounds: ${(((work1.cpu - work0.cpu) / elapsed) * 100).toFixed(1)} % of one core, RSS ${(work1.rss / 2 ** 20).toFixed(0)} MiB`);
console.log(`revoke call returned → subscriber received the CRL: p50 ${ms(pct(feedLatencies, 50))}, p99 ${ms(pct(feedLatencies, 99))}, max ${ms(Math.max(...feedLatencies))} (${feedLatencies.length} deliveries)`);
console.log(`revoke call returned → real sidecar refuses a new connection: p50 ${ms(pct(sidecarLatencies, 50))}, max ${ms(Math.max(...sidecarLatencies))} (${sidecarLatencies.length} sidecar-rounds)`);
cleanup();
process.exit(0);
