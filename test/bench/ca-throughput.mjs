#!/usr/bin/env node
/**
 * The device CA under load: enrollments (issuance) per second, OCSP responses per second, CRL
 * downloads per second, and the time from a revocation to a re-signed CRL.
 *
 *   npm run build && node test/bench/ca-throughput.mjs [--quick]
 *
 * The CA runs in its own process (bench-ca.mjs) so the load generator does not share its event
 * loop; everything is on 127.0.0.1; each window is bounded in time and count.
 * Codes and CSRs are made before the clock starts, so issuance measures the CA's work: parse and
 * check the CSR, check the code, sign, and commit to SQLite (synchronous=FULL) before answering.
 * Prints a table and writes JSON to test/bench/results/ca-throughput-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBenchCa, startBenchCa } from './bench-ca.mjs';

const dist = new URL('../../dist/', import.meta.url);

await main();

async function main() {
  const quick = process.argv.includes('--quick');
  const windowMs = quick ? 3_000 : 10_000;
  const { createCsr, generateKey } = await import(new URL('pki/index.js', dist).href);
  const dir = mkdtempSync(join(tmpdir(), 'mtls-ca-bench-'));
  const { urls, stop } = await startBenchCa((await initBenchCa(dir)).configFile);
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });

  const root = readFileSync(join(dir, 'root-ca.pem'), 'utf8');
  const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: root, servername: 'localhost' });
  const plainAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const send = (url, method, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const agent = u.protocol === 'https:' ? tlsAgent : plainAgent;
      const req = (u.protocol === 'https:' ? https : http).request(u, { method, agent, headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const json = (url, body, extra = {}) => send(url, 'POST', JSON.stringify(body), { 'content-type': 'application/json', ...extra });
  const admin = (path, body) => json(`${urls.adminUrl}${path}`, body, { authorization: `Bearer ${token}` });

  /** Prepares `n` enrollments (codes + CSRs) before any timing. */
  async function prepare(n, algorithm, prefix) {
    const jobs = [];
    for (let i = 0; i < n; i++) {
      const deviceId = `${prefix}-${i}`;
      const code = JSON.parse((await admin('/v1/admin/codes', { deviceId })).body).code;
      const csr = (await createCsr(await generateKey(algorithm), 'CN=bench')).pem;
      jobs.push({ deviceId, code, csr });
    }
    return jobs;
  }

  /** Runs `next()` with `concurrency` in flight until the window or the work ends. */
  async function load(concurrency, next) {
    const latencies = [];
    let failures = 0;
    const start = performance.now();
    const deadline = start + windowMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          if (performance.now() > deadline) return;
          const t0 = performance.now();
          const ok = await next();
          if (ok === undefined) return;
          if (ok) latencies.push(performance.now() - t0);
          else failures++;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
    return { count: latencies.length, failures, perSecond: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) };
  }

  const enrollFrom = (jobs) => {
    let i = 0;
    return async () => {
      const job = jobs[i++];
      if (!job) return undefined;
      const r = await json(`${urls.enrollUrl}/v1/enroll`, job);
      return r.status === 201;
    };
  };

  const rows = [];
  const record = (name, r) => {
    rows.push({ name, ...r });
    console.log(`  ${name}: ${r.perSecond.toFixed(0)}/s (p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, ${r.count} ok, ${r.failures} failed)`);
  };
  const cap = quick ? 400 : 2_000;
  console.log(`CA benchmark (${quick ? 'quick' : 'full'}: ${windowMs / 1000} s windows, at most ${cap} enrollments each) — preparing codes and CSRs…`);
  record('enroll P-256, 1 in flight', await load(1, enrollFrom(await prepare(cap, 'p256', 'c1'))));
  record('enroll P-256, 8 in flight', await load(8, enrollFrom(await prepare(cap, 'p256', 'c8'))));
  record('enroll RSA-2048, 8 in flight', await load(8, enrollFrom(await prepare(quick ? 40 : 150, 'rsa2048', 'rsa'))));

  // OCSP: one good and one revoked certificate, requests built by openssl (with and without nonce).
  const enrolled = [];
  for (const job of await prepare(2, 'p256', 'ocsp')) enrolled.push(JSON.parse((await json(`${urls.enrollUrl}/v1/enroll`, job)).body));
  await admin('/v1/admin/revoke', { serial: enrolled[1].serial, reason: 'keyCompromise' });
  const bundle = join(dir, 'bundle.pem');
  writeFileSync(bundle, readFileSync(join(dir, 'issuing-ca.pem'), 'utf8') + root);
  const requests = enrolled.map((e, i) => {
    const cert = join(dir, `ocsp-${i}.pem`);
    writeFileSync(cert, e.certificate);
    const out = join(dir, `ocsp-${i}.req`);
    execFileSync('openssl', ['ocsp', '-issuer', join(dir, 'issuing-ca.pem'), '-cert', cert, '-no_nonce', '-reqout', out]);
    return { cert, der: readFileSync(out) };
  });
  const nonced = Array.from({ length: quick ? 50 : 200 }, (_, i) => {
    const out = join(dir, `nonce-${i}.req`);
    execFileSync('openssl', ['ocsp', '-issuer', join(dir, 'issuing-ca.pem'), '-cert', requests[0].cert, '-reqout', out]);
    return readFileSync(out);
  });
  // Proof the answers under load are valid: openssl verifies one of each.
  for (const [i, expected] of [[0, 'good'], [1, 'revoked']]) {
    const respOut = join(dir, `resp-${i}.der`);
    writeFileSync(respOut, (await send(`${urls.publishUrl}/ocsp`, 'POST', requests[i].der, { 'content-type': 'application/ocsp-request' })).body);
    const text = execFileSync('openssl', ['ocsp', '-respin', respOut, '-issuer', join(dir, 'issuing-ca.pem'), '-cert', requests[i].cert, '-CAfile', bundle], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    if (!text.includes(`: ${expected}`)) throw new Error(`openssl did not accept the ${expected} answer:\n${text}`);
  }
  console.log('  (openssl verified a good and a revoked answer)');
  let k = 0;
  const ocspCall = (pick) => async () => {
    const r = await send(`${urls.publishUrl}/ocsp`, 'POST', pick(), { 'content-type': 'application/ocsp-request' });
    return r.status === 200;
  };
  record('OCSP, 1 in flight', await load(1, ocspCall(() => requests[k++ % 2].der)));
  record('OCSP, 16 in flight', await load(16, ocspCall(() => requests[k++ % 2].der)));
  record('OCSP with nonce, 16 in flight', await load(16, ocspCall(() => nonced[k++ % nonced.length])));
  record('GET /crl, 16 in flight', await load(16, async () => (await send(`${urls.publishUrl}/crl`, 'GET')).status === 200));

  // Revocation → a CRL that lists it.
  const [victim] = await prepare(1, 'p256', 'victim');
  const issued = JSON.parse((await json(`${urls.enrollUrl}/v1/enroll`, victim)).body);
  const serialBytes = Buffer.from(issued.serial, 'hex');
  const t0 = performance.now();
  await admin('/v1/admin/revoke', { serial: issued.serial, reason: 'keyCompromise' });
  let crlMs = NaN;
  while (performance.now() - t0 < 10_000) {
    if ((await send(`${urls.publishUrl}/crl`, 'GET')).body.includes(serialBytes)) {
      crlMs = performance.now() - t0;
      break;
    }
  }
  console.log(`  revocation → CRL listing it: ${crlMs.toFixed(1)} ms (including the admin call)`);

  console.log('\n| measurement | per second | p50 | p99 |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.perSecond.toFixed(0)} | ${r.p50Ms.toFixed(1)} ms | ${r.p99Ms.toFixed(1)} ms |`);
  console.log(`| revocation → new CRL | — | ${crlMs.toFixed(1)} ms | — |`);
  const results = join(new URL('.', import.meta.url).pathname, 'results');
  mkdirSync(results, { recursive: true });
  const file = join(results, `ca-throughput-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ quick, windowMs, node: process.version, cpus: cpus().length, rows, revocationToCrlMs: crlMs }, null, 2));
  console.log(`\nJSON: ${file}`);
  tlsAgent.destroy();
  plainAgent.destroy();
  await stop();
  rmSync(dir, { recursive: true, force: true });
}
