#!/usr/bin/env node
/**
 * Revocation by CRL polling at the default settings, against the project's own device CA, on
 * loopback:
 *
 *  (a) revoke → refusal. A device sends requests on a keep-alive connection (`--rate`/s) while
 *      two probes open a new connection and resume a TLS session every 50 ms; then its
 *      certificate is revoked. Per trial: when each of the three was first refused, measured from
 *      the moment the revocation was asked for, and how many of the device's requests reached the
 *      upstream after it was committed. Two sidecar configs, everything else default:
 *        url   the README's: `revocation.crl.urls: [<CA publish>/crl]`, revoked through the CA's
 *              admin API;
 *        file  `revocation.crl.files: [crl.pem]`, a CRL that `openssl ca -gencrl` rewrites after
 *              `openssl ca -revoke` (a separate openssl-run CA signs those devices).
 *  (b) the CA's cost of a fleet polling /crl at the default interval with the default jitter
 *      (dist/revocation/poll-delay.js, the sidecar's own): N simulated sidecars, each on its own
 *      keep-alive connection, sending conditional GETs like the sidecar, and the same N without
 *      validators (what a CA without 304s would serve), after a row for the CA idle. The CA
 *      process's CPU and RSS (from /proc), requests/s served, the share answered 304, latency;
 *      and the pollers' own CPU, flagged when it saturates (then the pollers set the rate). The
 *      CA holds `--crl-entries` revoked certificates (a fleet renewing every few weeks keeps its
 *      superseded certificates listed until they expire).
 *
 *   npm run build && node test/bench/revocation-polling.mjs [--quick] [--trials 10] [--rate 100]
 *       [--fleet 500,2000] [--crl-entries 10000] [--window 20] [--only latency|fleet]
 *
 * The CA (bench-ca.mjs) and the sidecar run in their own processes; the clients, the upstream and
 * the simulated fleet share this one. Every phase is bounded in time and count; every child is
 * killed at the end and on Ctrl-C. Prints tables and writes JSON to
 * test/bench/results/revocation-polling-<time>.json. BENCH_DEBUG=1 traces each step and prints the
 * sidecars' logs.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort, initBenchCa, startBenchCa } from './bench-ca.mjs';

const dist = new URL('../../dist/', import.meta.url);

await main();

async function main() {
  const { values: args } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      trials: { type: 'string' },
      rate: { type: 'string', default: '100' },
      fleet: { type: 'string' },
      'crl-entries': { type: 'string' },
      window: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const quick = args.quick;
  const trials = Number(args.trials ?? (quick ? 3 : 10));
  const rate = Number(args.rate);
  const fleetSizes = (args.fleet ?? (quick ? '500' : '500,2000')).split(',').map(Number);
  const crlEntries = Number(args['crl-entries'] ?? (quick ? 1_000 : 10_000));
  const windowS = Number(args.window ?? (quick ? 8 : 20));
  const { createCsr, generateKey } = await import(new URL('pki/index.js', dist).href);
  const { openSqliteStore } = await import(new URL('enroll/store/index.js', dist).href);
  const { spreadPollDelay } = await import(new URL('revocation/poll-delay.js', dist).href);
  const { revocationSchema } = await import(new URL('config/revocation-schema.js', dist).href);
  const defaults = revocationSchema.parse({}).crl;

  const dir = mkdtempSync(join(tmpdir(), 'mtls-revocation-bench-'));
  const children = new Set();
  const cleanup = () => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  // --- the device CA, with `crlEntries` revoked certificates in its store ----------------------
  const { configFile, config } = await initBenchCa(dir);
  process.stdout.write(`Revocation polling benchmark (${quick ? 'quick' : 'full'}; defaults: refreshIntervalSeconds ${defaults.refreshIntervalSeconds}, filePollIntervalSeconds ${defaults.filePollIntervalSeconds})\n`);
  process.stdout.write(`  filling the CA's store with ${crlEntries} revoked certificates… `);
  {
    const store = openSqliteStore(config.store.path.startsWith('/') ? config.store.path : join(dir, config.store.path));
    const now = new Date();
    const notAfter = new Date(now.getTime() + 30 * 86_400_000);
    for (let i = 0; i < crlEntries; i++) {
      const deviceId = `retired-${i}`;
      const serialHex = `7f${i.toString(16).padStart(30, '0')}`;
      await store.putCode({ deviceId, userId: null, codeHash: `h${i}`, createdAt: now, expiresAt: notAfter, maxAttempts: 5 });
      await store.redeemCode(deviceId, now, { serialHex, deviceId, subject: `CN=${deviceId}`, notBefore: now, notAfter, fingerprintSha256: serialHex.repeat(2), der: Buffer.from(serialHex, 'hex'), issuedAt: now, kind: 'enroll', supersedes: null });
      await store.revoke({ serialHex }, 'superseded', now);
    }
    await store.close();
  }
  const { urls, child: caChild, stop: stopCa } = await startBenchCa(configFile);
  children.add(caChild);
  const crlUrl = `${urls.publishUrl}/crl`;
  const crlBytes = (await get(crlUrl)).body.length;
  console.log(`done; CRL ${(crlBytes / 1024).toFixed(0)} KB`);

  const root = readFileSync(join(dir, 'root-ca.pem'), 'utf8');
  const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const caCall = (url, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const req = (u.protocol === 'https:' ? https : http).request(u, { method: 'POST', ca: root, servername: 'localhost', agent: false, timeout: 10_000, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
      });
      req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 10 s`)));
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const admin = (path, body) => caCall(`${urls.adminUrl}${path}`, body, { authorization: `Bearer ${token}` });

  /** A device of the project's CA: code, CSR, enrollment. */
  async function enrollAtCa(deviceId) {
    const { code } = (await admin('/v1/admin/codes', { deviceId })).json;
    const key = await generateKey('p256');
    const csr = (await createCsr(key, `CN=${deviceId}`)).pem;
    const r = await caCall(`${urls.enrollUrl}/v1/enroll`, { deviceId, code, csr });
    if (r.status !== 201) throw new Error(`enroll ${deviceId}: ${r.status} ${JSON.stringify(r.json)}`);
    return { deviceId, cert: r.json.certificate + (r.json.chain ?? ''), key: key.privateKeyPem };
  }

  // --- an openssl-run CA whose CRL file the sidecar polls --------------------------------------
  const ossl = join(dir, 'ossl');
  mkdirSync(join(ossl, 'newcerts'), { recursive: true });
  const o = (...a) => execFileSync('openssl', a, { cwd: ossl, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(join(ossl, 'ca.cnf'), `[ ca ]\ndefault_ca = d\n[ d ]\ndir = .\ndatabase = ./index.txt\nnew_certs_dir = ./newcerts\nserial = ./serial\ncrlnumber = ./crlnumber\ncertificate = ./ca.crt\nprivate_key = ./ca.key\ndefault_md = sha256\npolicy = p\ndefault_days = 2\ndefault_crl_hours = 24\nunique_subject = no\ncopy_extensions = none\n[ p ]\ncommonName = supplied\n`);
  writeFileSync(join(ossl, 'index.txt'), '');
  writeFileSync(join(ossl, 'serial'), '1000\n');
  writeFileSync(join(ossl, 'crlnumber'), '01\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  o('req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root.crt', '-days', '2', '-subj', '/CN=Bench openssl Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  writeFileSync(join(ossl, 'ca-ext.cnf'), '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  o('req', '-new', ...ec, '-keyout', 'ca.key', '-out', 'ca.csr', '-subj', '/CN=Bench openssl Issuing CA');
  o('x509', '-req', '-in', 'ca.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-set_serial', '0x0A', '-days', '2', '-extfile', 'ca-ext.cnf', '-extensions', 'v3', '-out', 'ca.crt');
  const crlFile = join(ossl, 'crl.pem');
  const genCrl = () => o('ca', '-config', 'ca.cnf', '-gencrl', '-crlhours', '24', '-out', crlFile);
  genCrl();
  async function enrollAtOpenssl(deviceId) {
    writeFileSync(join(ossl, `${deviceId}.cnf`), `[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:device:${deviceId}\n`);
    o('req', '-new', ...ec, '-keyout', `${deviceId}.key`, '-out', `${deviceId}.csr`, '-subj', `/CN=${deviceId}`);
    o('ca', '-batch', '-config', 'ca.cnf', '-notext', '-in', `${deviceId}.csr`, '-out', `${deviceId}.crt`, '-extfile', `${deviceId}.cnf`, '-extensions', 'leaf');
    return { deviceId, cert: readFileSync(join(ossl, `${deviceId}.crt`), 'utf8') + readFileSync(join(ossl, 'ca.crt'), 'utf8'), key: readFileSync(join(ossl, `${deviceId}.key`), 'utf8') };
  }

  // --- upstream: counts each device's requests with their arrival time ------------------------
  const hits = new Map();
  const upstream = http.createServer((req, res) => {
    const id = req.headers['x-device-id'];
    if (typeof id === 'string') (hits.get(id) ?? hits.set(id, []).get(id)).push({ at: performance.now(), probe: req.headers['x-probe'] });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok'));
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;

  async function startSidecar(name, revocation, caBundle) {
    const port = await freePort();
    const file = join(dir, `sidecar-${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        version: 1,
        listen: { host: '127.0.0.1', port },
        tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') },
        clientAuth: { caBundle },
        upstream: { url: upstreamUrl },
        admin: { enabled: false },
        revocation,
        log: { level: 'warn' },
      }),
    );
    const log = join(dir, `sidecar-${name}.log`);
    const child = spawn(process.execPath, [new URL('cli.js', dist).pathname, 'serve', '--config', file], { stdio: ['ignore', openSync(log, 'w'), 'inherit'] });
    children.add(child);
    for (let i = 0; i < 200; i++) {
      if (await new Promise((r) => net.connect(port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)))) break;
      await sleep(50);
    }
    return {
      port,
      log,
      stop: async () => {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        children.delete(child);
      },
    };
  }

  const results = { quick, node: process.version, cpus: cpus().length, defaults, crlEntries, crlBytes, latency: {}, fleet: [] };

  // --- (a) revoke → refusal --------------------------------------------------------------------
  if (args.only !== 'fleet') {
    const scenarios = [
      {
        name: 'url',
        what: 'crl.urls: [CA /crl], CA admin API',
        revocation: { crl: { urls: [crlUrl] } },
        caBundle: [join(dir, 'issuing-ca.pem'), join(dir, 'root-ca.pem')],
        enroll: enrollAtCa,
        revoke: async (d) => {
          const r = await admin('/v1/admin/revoke', { deviceId: d.deviceId, reason: 'keyCompromise' });
          if (r.status !== 200) throw new Error(`revoke: ${r.status}`);
        },
      },
      {
        name: 'file',
        what: 'crl.files: [openssl ca -gencrl output]',
        revocation: { crl: { files: [crlFile] } },
        caBundle: [join(ossl, 'ca.crt'), join(ossl, 'root.crt')],
        enroll: enrollAtOpenssl,
        revoke: async (d) => {
          o('ca', '-config', 'ca.cnf', '-revoke', `${d.deviceId}.crt`, '-crl_reason', 'keyCompromise');
          genCrl();
        },
      },
    ];
    for (const s of scenarios) {
      const sidecar = await startSidecar(s.name, s.revocation, s.caBundle);
      console.log(`\n(a) revoke → refusal, ${s.what}; ${trials} trials, keep-alive client at ${rate} req/s, probes every 50 ms`);
      const rows = [];
      for (let i = 0; i < trials; i++) {
        const device = await s.enroll(`${s.name}-phone-${i}`);
        trace('enrolled', device.deviceId);
        const row = await trial(sidecar.port, device, () => s.revoke(device));
        rows.push(row);
        console.log(`  trial ${i + 1}: new connection ${fmt(row.newMs)}, keep-alive ${fmt(row.keepAliveMs)}, resumed ${fmt(row.resumedMs)} (${row.resumedShare} resumed); keep-alive requests that reached the upstream after the revocation: ${row.hitsAfter} (and ${row.probeHitsAfter} probe requests; ${row.hitsAfterRefusal} after its first refusal)${row.note ? ` — ${row.note}` : ''}`);
      }
      await sidecar.stop();
      if (process.env.BENCH_DEBUG) process.stderr.write(readFileSync(sidecar.log, 'utf8'));
      results.latency[s.name] = { what: s.what, rows };
    }
    console.log(`\n| sidecar config (defaults otherwise) | new connection refused p50 / max | open keep-alive closed p50 / max | resumed session refused p50 / max | keep-alive requests (${rate}/s) that reached the upstream after the revocation, p50 / max | any request of the device after its first refusal |`);
    console.log('|---|---|---|---|---|---|');
    for (const { what, rows } of Object.values(results.latency)) {
      const col = (k) => `${fmt(pct(rows.map((r) => r[k]), 0.5))} / ${fmt(Math.max(...rows.map((r) => r[k])))}`;
      const hitsCol = `${pct(rows.map((r) => r.hitsAfter), 0.5)} / ${Math.max(...rows.map((r) => r.hitsAfter))}`;
      console.log(`| ${what} | ${col('newMs')} | ${col('keepAliveMs')} | ${col('resumedMs')} | ${hitsCol} | ${Math.max(...rows.map((r) => r.hitsAfterRefusal))} |`);
    }
  }

  /** One trial: connect three ways, revoke, time the first refusal of each, count upstream hits. */
  async function trial(port, device, revoke) {
    const base = { host: '127.0.0.1', port, servername: 'localhost', ca: root, cert: device.cert, key: device.key };
    const probeOnce = async (probe, session) => {
      const socket = await tlsConnect({ ...base, ...(session ? { session } : {}) });
      let fresh;
      socket.on('session', (s) => (fresh = s));
      try {
        const status = await getOver(socket, probe);
        return { ok: status === 200, reused: socket.isSessionReused(), session: fresh };
      } finally {
        socket.destroy();
      }
    };
    const warm = await probeOnce('warm-up').catch((err) => ({ ok: false, err }));
    if (!warm.ok || !warm.session) throw new Error(`device ${device.deviceId} not accepted before its revocation (${warm.err?.message ?? 'no session ticket'})`);
    trace('accepted before the revocation', device.deviceId);
    let session = warm.session;
    let stop = false;
    let t0 = Infinity;
    const refusedAt = {};
    const early = [];
    const refused = (what, at) => {
      const now = at ?? performance.now();
      if (now < t0) early.push(what);
      else refusedAt[what] ??= now - t0;
    };
    let resumedTotal = 0;
    let resumedReused = 0;
    const loops = [
      (async () => {
        while (!stop && refusedAt.newMs === undefined) {
          const r = await probeOnce('new').catch(() => ({ ok: false }));
          if (!r.ok) refused('newMs');
          await sleep(50);
        }
      })(),
      (async () => {
        while (!stop && refusedAt.resumedMs === undefined) {
          const r = await probeOnce('resumed', session).catch(() => ({ ok: false }));
          if (r.ok) {
            resumedTotal++;
            if (r.reused) resumedReused++;
            if (r.session) session = r.session;
          } else refused('resumedMs');
          await sleep(50);
        }
      })(),
      (async () => {
        const socket = await tlsConnect(base);
        let closedAt;
        socket.once('close', () => (closedAt = performance.now()));
        const gap = 1000 / rate;
        let next = performance.now();
        try {
          while (!stop) {
            if ((await getOver(socket, 'keep-alive')) !== 200) break;
            next += gap;
            await sleep(Math.max(0, next - performance.now()));
          }
        } catch (err) {
          trace('keep-alive ended:', err.message); // closed by the sidecar, normally
        }
        socket.destroy();
        if (!stop) refused('keepAliveMs', closedAt);
      })(),
    ];
    await sleep(500 + Math.random() * 3_000); // the revocation lands at a random phase of the polling
    t0 = performance.now();
    await revoke();
    const committed = performance.now();
    trace('revoked', device.deviceId);
    const deadline = t0 + 15_000;
    while (performance.now() < deadline && ['newMs', 'resumedMs', 'keepAliveMs'].some((k) => refusedAt[k] === undefined)) await sleep(20);
    stop = true;
    trace('refusals seen', JSON.stringify(refusedAt));
    await Promise.all(loops);
    trace('probes stopped');
    const after = (hits.get(device.deviceId) ?? []).filter((h) => h.at > committed);
    const hitsAfter = after.filter((h) => h.probe === 'keep-alive').length;
    const probeHitsAfter = after.length - hitsAfter;
    // Once the sidecar refused anything of this device, nothing more of it may reach the upstream.
    const firstRefusal = t0 + Math.min(...Object.values(refusedAt));
    const hitsAfterRefusal = after.filter((h) => h.at > firstRefusal).length;
    const miss = (k) => refusedAt[k] ?? Infinity;
    return {
      newMs: miss('newMs'),
      keepAliveMs: miss('keepAliveMs'),
      resumedMs: miss('resumedMs'),
      hitsAfter,
      probeHitsAfter,
      hitsAfterRefusal,
      commitMs: committed - t0,
      resumedShare: resumedTotal ? `${Math.round((100 * resumedReused) / resumedTotal)} %` : '—',
      note: early.length ? `refused before the revocation: ${[...new Set(early)].join(', ')}` : undefined,
    };
  }

  // --- (b) the CA's cost of a polling fleet ----------------------------------------------------
  if (args.only !== 'latency') {
    const intervalMs = defaults.refreshIntervalSeconds * 1000;
    console.log(`\n(b) a fleet polling ${crlUrl} every ${defaults.refreshIntervalSeconds} s ±20 %: ${windowS} s measured after one interval of warm-up; CRL ${(crlBytes / 1024).toFixed(0)} KB`);
    for (const n of [0, ...fleetSizes]) {
      for (const conditional of n === 0 ? [true] : [true, false]) {
        const r = await fleet(n, conditional, intervalMs);
        results.fleet.push(r);
        console.log(`  ${n === 0 ? 'no pollers (the CA idle)' : `${n} pollers, ${conditional ? 'conditional' : 'no validators'}`}: ${r.perSecond.toFixed(0)} req/s (${r.notModifiedShare.toFixed(1)} % 304), CA CPU ${r.caCpuPercent.toFixed(1)} % of a core, RSS ${r.caRssMb.toFixed(0)} MB (max ${r.caRssMaxMb.toFixed(0)}), ${(r.bytesPerSecond / 1e6).toFixed(2)} MB/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, ${r.errors} errors; pollers' own CPU ${r.clientCpuPercent.toFixed(0)} %${r.clientCpuPercent > 90 ? ' (saturated: the pollers, not the CA, set this rate)' : ''}`);
      }
    }
    console.log('\n| simulated sidecars | requests | req/s | answered 304 | CA CPU (% of a core) | CA RSS | served | p50 / p99 |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of results.fleet) {
      console.log(`| ${r.pollers === 0 ? 'none (the CA idle)' : `${r.pollers}, ${r.conditional ? 'conditional GET' : 'no validators'}`} | ${r.count} | ${r.perSecond.toFixed(0)} | ${r.notModifiedShare.toFixed(1)} % | ${r.caCpuPercent.toFixed(1)} % | ${r.caRssMb.toFixed(0)} MB | ${(r.bytesPerSecond / 1e6).toFixed(2)} MB/s | ${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)} ms |`);
    }
  }

  /** N pollers, each on its own keep-alive connection, as the sidecar polls (jitter included). */
  async function fleet(n, conditional, intervalMs) {
    const warmMs = intervalMs * 1.2;
    const endAt = performance.now() + warmMs + windowS * 1000;
    let windowStart = Infinity;
    const latencies = [];
    let notModified = 0;
    let bytes = 0;
    let errors = 0;
    const agents = [];
    const poller = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      let etag;
      let lastModified;
      await sleep(Math.random() * intervalMs); // a fleet long past its start: evenly spread
      while (performance.now() < endAt) {
        const t = performance.now();
        const headers = conditional && etag ? { 'if-none-match': etag, ...(lastModified ? { 'if-modified-since': lastModified } : {}) } : {};
        try {
          const r = await get(crlUrl, { agent, headers, count: true });
          if (r.status === 200) {
            etag = r.headers.etag;
            lastModified = r.headers['last-modified'];
          } else if (r.status !== 304) throw new Error(`status ${r.status}`);
          if (t >= windowStart) {
            latencies.push(performance.now() - t);
            if (r.status === 304) notModified++;
            bytes += r.size;
          }
        } catch {
          if (t >= windowStart) errors++;
        }
        await sleep(spreadPollDelay(intervalMs));
      }
    };
    const running = Array.from({ length: n }, poller);
    await sleep(warmMs);
    windowStart = performance.now();
    const cpu0 = procCpuSeconds(caChild.pid);
    const self0 = process.cpuUsage();
    let rssMax = 0;
    const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, procRssMb(caChild.pid))), 1_000);
    await sleep(windowS * 1000);
    const seconds = (performance.now() - windowStart) / 1000;
    const caCpu = procCpuSeconds(caChild.pid) - cpu0;
    const self = process.cpuUsage(self0);
    clearInterval(rssTimer);
    const rss = procRssMb(caChild.pid);
    await Promise.all(running);
    for (const a of agents) a.destroy();
    latencies.sort((a, b) => a - b);
    return {
      pollers: n,
      conditional,
      intervalMs,
      seconds,
      count: latencies.length,
      perSecond: latencies.length / seconds,
      notModifiedShare: (100 * notModified) / Math.max(1, latencies.length),
      errors,
      bytesPerSecond: bytes / seconds,
      caCpuPercent: (100 * caCpu) / seconds,
      caRssMb: rss,
      caRssMaxMb: Math.max(rss, rssMax),
      clientCpuPercent: (100 * (self.user + self.system)) / 1e6 / seconds,
      p50Ms: pct(latencies, 0.5),
      p99Ms: pct(latencies, 0.99),
    };
  }

  const resultsDir = join(new URL('.', import.meta.url).pathname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `revocation-polling-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, (_k, v) => (v === Infinity ? null : v), 2));
  console.log(`\nJSON: ${file}`);
  await stopCa();
  children.delete(caChild);
  upstream.close();
  cleanup();
}

// --- helpers -------------------------------------------------------------------------------------
/** BENCH_DEBUG=1 prints each step to stderr. */
function trace(...what) {
  if (process.env.BENCH_DEBUG) console.error(`${(performance.now() / 1000).toFixed(3)}`, ...what);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function fmt(ms) {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'not refused';
}

function pct(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
}

/** Plain HTTP GET; resolves with status, headers, body size and (unless `count`) the body. */
function get(url, { agent = false, headers = {}, count = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers, timeout: 10_000 }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        if (!count) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, size, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function tlsConnect(options) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...options, minVersion: 'TLSv1.3' });
    const timer = setTimeout(() => socket.destroy(new Error('no handshake within 5 s')), 5_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * One `GET /` over an open TLS socket (HTTP/1.1 keep-alive); resolves with the status once the
 * body (Content-Length) is in, rejects if the socket ends or errs first.
 */
function getOver(socket, probe) {
  return new Promise((resolve, reject) => {
    // Closed between two requests: 'close' has been emitted already, and a write would fail silently.
    if (socket.destroyed || socket.readyState !== 'open') return reject(new Error('connection closed'));
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(reject, new Error('no answer within 5 s')), 5_000);
    const done = (fn, v) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      fn(v);
    };
    const onClose = () => done(reject, new Error('connection closed'));
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      done(resolve, Number(head.slice(9, 12)));
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    socket.write(`GET / HTTP/1.1\r\nHost: localhost\r\nX-Probe: ${probe}\r\n\r\n`);
  });
}

/** utime + stime of a process, in seconds (/proc/<pid>/stat, clock ticks of 1/100 s). */
function procCpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function procRssMb(pid) {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}
