/**
 * Benchmark: loading a CRL of 1,000,000 entries (the default; `[entries]` changes it) into the
 * revocation checker. Every figure is for that one size, the serial-index lookups included.
 *
 * Run from a clean clone (needs the `openssl` CLI for the CA key and certificates):
 *
 *   npm ci && npm run build && node --expose-gc test/bench/crl-load.mjs [entries] [--no-extensions]
 *
 * It is a plain .mjs importing the compiled library from dist/ because Node 20 cannot run
 * TypeScript itself and no TS runner (tsx) is a dependency. It builds the CRL DER here (entries
 * with a reasonCode extension, like real CRLs; `--no-extensions` for bare serial + date entries,
 * the shape of `openssl ca` CRLs revoked without a reason) and signs the TBS with node:crypto, since
 * `openssl ca` needs minutes for a million entries. Printed: file size, time to load (verify +
 * parse, through the public checker, from a file), the serial index's size, heap and RSS added
 * (RSS also holds freed-but-retained file buffer pages), the longest event-loop stall while
 * loading (a 1 ms setInterval probe and monitorEventLoopDelay), and lookup costs.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { revocationSchema } from '../../dist/config/revocation-schema.js';
import { createSerialSetBuilder, parseCertificate } from '../../dist/pki/index.js';
import { createRevocationChecker } from '../../dist/revocation/index.js';

const args = process.argv.slice(2);
const WITH_EXTENSIONS = !args.includes('--no-extensions');
const ENTRIES = Number(args.find((a) => !a.startsWith('--')) ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'crl-bench-'));
const sh = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

// --- a CA and two leaves (one to be listed) with openssl ------------------------------------
sh('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
  '-days', '2', '-subj', '/CN=Bench CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
writeFileSync(join(dir, 'leaf.cnf'), '[x]\nbasicConstraints=CA:FALSE\n');
for (const [name, serial] of [['listed', '0x0102030405060708090A0B0C0D0E0F10'], ['unlisted', '0x7E57']]) {
  sh('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  sh('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial, '-days', '2', '-extfile', 'leaf.cnf', '-extensions', 'x', '-out', `${name}.crt`);
}
const caCert = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
const caKey = createPrivateKey(readFileSync(join(dir, 'ca.key')));
const listed = new X509Certificate(readFileSync(join(dir, 'listed.crt')));
const unlisted = new X509Certificate(readFileSync(join(dir, 'unlisted.crt')));

// --- DER building ---------------------------------------------------------------------------
const len = (n) => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]));
const tlv = (tag, ...parts) => { const c = Buffer.concat(parts); return Buffer.concat([Buffer.from([tag]), len(c.length), c]); };
const utc = (ms) => tlv(0x17, Buffer.from(`${new Date(ms).toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`, 'latin1'));
const ecdsaSha256 = tlv(0x30, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));

function buildCrl(n) {
  const revokedAt = utc(Date.now() - 86_400_000);
  const reasonExt = WITH_EXTENSIONS ? Buffer.from([0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x01]) : Buffer.alloc(0);
  const entryLen = 2 + 18 + revokedAt.length + reasonExt.length;
  const list = Buffer.allocUnsafe(n * entryLen);
  const serials = randomBytes(n * 16);
  for (let i = 0; i < n; i++) {
    const o = i * entryLen;
    list[o] = 0x30; list[o + 1] = entryLen - 2; list[o + 2] = 0x02; list[o + 3] = 16;
    serials.copy(list, o + 4, i * 16, i * 16 + 16);
    list[o + 4] = (list[o + 4] & 0x7f) | 0x01; // positive, no padding octet
    revokedAt.copy(list, o + 20);
    reasonExt.copy(list, o + 20 + revokedAt.length);
  }
  // The listed leaf's serial goes last.
  Buffer.from('0102030405060708090A0B0C0D0E0F10', 'hex').copy(list, (n - 1) * entryLen + 4);
  const crlNumber = tlv(0xa0, tlv(0x30, tlv(0x30, Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x14]), tlv(0x04, tlv(0x02, Buffer.from([0x01]))))));
  const tbs = tlv(0x30, tlv(0x02, Buffer.from([0x01])), ecdsaSha256, Buffer.from(parseCertificate(caCert.raw).subjectName),
    utc(Date.now() - 3_600_000), utc(Date.now() + 86_400_000), tlv(0x30, list), crlNumber);
  return tlv(0x30, tbs, ecdsaSha256, tlv(0x03, Buffer.from([0]), sign('sha256', tbs, caKey)));
}

const t0 = performance.now();
const der = buildCrl(ENTRIES);
const buildMs = performance.now() - t0;
const derPath = join(dir, 'big.crl');
writeFileSync(derPath, der);
const pemPath = join(dir, 'big.pem');
writeFileSync(pemPath, `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n`);

// --- load through the public checker, measuring the event loop -----------------------------
const gc = globalThis.gc ?? (() => undefined);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureLoad(file) {
  gc();
  const before = process.memoryUsage();
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let maxGap = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last - 1);
    last = now;
  }, 1);
  histogram.enable();
  await sleep(50); // let the probe settle
  let loaded;
  const logger = {
    debug() {},
    info: (o, m) => { if (m === 'CRL loaded') loaded = o; },
    warn: (o, m) => console.error(m, o),
    error: (o, m) => console.error(m, o),
  };
  const options = revocationSchema.parse({ mode: 'crl', crl: { files: [file], fetchDistributionPoints: false, maxBytes: 256 * 1024 * 1024 } });
  const t1 = performance.now();
  const checker = createRevocationChecker(options, { trustedCas: [caCert], logger });
  // Construction is a one-off at startup (lru-cache preallocates the 100k-entry tracker): it is
  // reported apart so the stall figures are those of the CRL load itself.
  const createMs = performance.now() - t1;
  histogram.reset();
  maxGap = 0;
  last = performance.now();
  await checker.ready();
  const loadMs = performance.now() - t1;
  histogram.disable();
  clearInterval(probe);
  gc();
  const after = process.memoryUsage();
  if (loaded === undefined) throw new Error(`${file} did not load`);
  return { checker, createMs, loadMs, maxGap, histMax: histogram.max / 1e6, p99: histogram.percentile(99) / 1e6, before, after, loaded };
}

const pem = await measureLoad(pemPath);
await pem.checker.close();
await sleep(100);
const run = await measureLoad(derPath);
const { checker } = run;

// --- lookups --------------------------------------------------------------------------------
const r1 = await checker.check(listed, caCert);
const r2 = await checker.check(unlisted, caCert);
if (r1.status !== 'revoked' || r2.status !== 'good') throw new Error(`wrong answers: ${r1.status} ${r2.status}`);
const CHECKS = 20_000;
let t2 = performance.now();
for (let i = 0; i < CHECKS; i++) await checker.check(i % 2 ? listed : unlisted, caCert);
const checkUs = ((performance.now() - t2) * 1000) / CHECKS;
// The O(1) part alone: SerialSet.has on a set of ENTRIES serials, half hits, half misses (keys prebuilt).
const builder = createSerialSetBuilder(16 * ENTRIES, ENTRIES);
const members = randomBytes(16 * ENTRIES);
for (let i = 0; i < ENTRIES; i++) {
  members[i * 16] |= 1;
  builder.addBytes(members, i * 16, i * 16 + 16);
}
const serialSet = await builder.finish(5);
const probeKeys = Array.from({ length: ENTRIES }, (_, i) =>
  i % 2 ? members.toString('latin1', i * 16, i * 16 + 16) : randomBytes(17).toString('latin1'));
let hits = 0;
t2 = performance.now();
for (let i = 0; i < probeKeys.length; i++) if (serialSet.has(probeKeys[i])) hits++;
const setNs = ((performance.now() - t2) * 1e6) / probeKeys.length;
await checker.close();
rmSync(dir, { recursive: true, force: true });

const mb = (b) => `${(b / 1024 / 1024).toFixed(1)} MB`;
const ms = (x) => `${x.toFixed(1)} ms`;
console.log(`CRL with ${ENTRIES.toLocaleString('en')} entries (${WITH_EXTENSIONS ? 'each with a reasonCode extension' : 'no entry extensions'}): DER ${mb(der.length)} (built and signed by the bench in ${buildMs.toFixed(0)} ms)`);
console.table({
  'createRevocationChecker() (sync, startup)': { DER: ms(run.createMs), PEM: ms(pem.createMs) },
  'load: read + verify + parse (to ready())': { DER: ms(run.loadMs), PEM: ms(pem.loadMs) },
  'max event-loop stall (1 ms probe)': { DER: ms(run.maxGap), PEM: ms(pem.maxGap) },
  'max event-loop delay (histogram)': { DER: ms(run.histMax), PEM: ms(pem.histMax) },
  'p99 event-loop delay (histogram)': { DER: ms(run.p99), PEM: ms(pem.p99) },
  'serial index size (resident)': { DER: mb(run.loaded.bytes), PEM: mb(pem.loaded.bytes) },
  'JS heap added (after GC)': { DER: mb(run.after.heapUsed - run.before.heapUsed), PEM: '' },
  'RSS added (after GC)': { DER: mb(run.after.rss - run.before.rss), PEM: '' },
  'check() per call (full path, warm)': { DER: `${checkUs.toFixed(1)} µs`, PEM: '' },
  [`SerialSet.has per lookup (${ENTRIES.toLocaleString('en')} entries)`]: { DER: `${setNs.toFixed(0)} ns`, PEM: `(${hits.toLocaleString('en')} hits of ${probeKeys.length.toLocaleString('en')} probes)` },
});
