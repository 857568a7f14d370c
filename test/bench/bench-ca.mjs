/**
 * The device CA as the benchmarks run it: `ca init` into a folder, its config rewritten for
 * loopback (free ports, no enrollment rate limit, silent log), then `runCa` in a process of its
 * own (this file, forked with --serve) so the load generator does not share its event loop.
 *
 *   const ca = await initBenchCa(dir);            // the store can be filled before it starts
 *   const { urls, child, stop } = await startBenchCa(ca.configFile);
 */
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const dist = new URL('../../dist/', import.meta.url);
const here = fileURLToPath(import.meta.url);

if (process.argv[1] === here && process.argv[2] === '--serve') {
  const { loadCaConfigFile } = await import(new URL('config/index.js', dist).href);
  const { runCa } = await import(new URL('enroll/index.js', dist).href);
  const { pino } = await import('pino');
  const ca = await runCa(loadCaConfigFile(process.argv[3]), { logger: pino({ level: 'silent' }) });
  process.send({ enrollUrl: ca.enrollUrl, adminUrl: ca.adminUrl, publishUrl: ca.publishUrl });
  process.on('message', () => ca.close().then(() => process.exit(0)));
}

/** `ca init` into `dir` and a loopback config; resolves to the config file and its parsed content. */
export async function initBenchCa(dir, name = 'Bench') {
  const { initCa } = await import(new URL('enroll/index.js', dist).href);
  const publishPort = await freePort();
  await initCa({ dir, name, algorithm: 'p256', hostnames: ['localhost'], publishBaseUrl: `http://127.0.0.1:${publishPort}` });
  const configFile = join(dir, 'ca.yaml');
  const config = parse(readFileSync(configFile, 'utf8'));
  config.enroll.listen = { host: '127.0.0.1', port: await freePort() };
  config.admin.listen = { host: '127.0.0.1', port: await freePort() };
  config.publish.listen = { host: '127.0.0.1', port: publishPort };
  config.enroll.rateLimit = { perMinute: 1_000_000, burst: 1_000_000 };
  config.log = { level: 'silent' };
  writeFileSync(configFile, stringify(config));
  return { configFile, config };
}

/** Forks the CA; resolves once it listens, with its URLs, the child and `stop()` (resolves on exit). */
export async function startBenchCa(configFile) {
  const child = fork(here, ['--serve', configFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const urls = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`CA exited (${code})`)));
  });
  const stop = () => {
    if (!child.connected) return Promise.resolve();
    const exited = new Promise((r) => child.once('exit', r));
    child.send('stop');
    return exited;
  };
  return { urls, child, stop };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
