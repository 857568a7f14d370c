/**
 * `mtls-sidecar dev`: the quick start. Ensures the dev PKI, starts the echo upstream, writes a
 * config that points at both, starts the sidecar through the same config loader as production,
 * and prints a curl line that works.
 */
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadConfigFile } from '../config/index.js';
import { startSidecar, type RunningSidecar } from '../serve/index.js';
import { ensureDevPki, type DevPki } from './dev-pki.js';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream.js';

export interface DevOptions {
  readonly dir: string;
  readonly port: number;
  readonly adminPort?: number;
  readonly host?: string;
  readonly logLevel?: string;
}

export interface DevRun {
  readonly sidecar: RunningSidecar;
  readonly echo: EchoUpstream;
  readonly pki: DevPki;
  readonly configFile: string;
  readonly curl: string;
  close(): Promise<void>;
}

/** Starts the demo. Async; rejects with a SidecarError if the port is taken. */
export async function runDev(options: DevOptions): Promise<DevRun> {
  const pki = await ensureDevPki(options.dir);
  const echo = await startEchoUpstream();
  const configFile = join(options.dir, 'sidecar.yaml');
  writeFileSync(
    configFile,
    [
      '# Written by `mtls-sidecar dev` for the throwaway dev PKI next to it. Not for production.',
      'version: 1',
      `listen: { host: ${JSON.stringify(options.host ?? '127.0.0.1')}, port: ${options.port} }`,
      'tls: { cert: server.pem, key: server.key }',
      'clientAuth: { caBundle: [ca.pem], failureMode: http }',
      'revocation: { mode: crl, crl: { files: [ca.crl] } }',
      `upstream: { url: ${JSON.stringify(echo.url)} }`,
      `admin: { host: "127.0.0.1", port: ${options.adminPort ?? 9090} }`,
      `log: { level: ${options.logLevel ?? 'info'} }`,
      '',
    ].join('\n'),
  );
  let sidecar: RunningSidecar;
  try {
    sidecar = await startSidecar(loadConfigFile(configFile));
  } catch (err) {
    await echo.close();
    throw err;
  }
  const rel = (f: string) => relative(process.cwd(), f) || f;
  const curl = `curl --cacert ${rel(pki.caCert)} --cert ${rel(pki.deviceCert)} --key ${rel(pki.deviceKey)} https://localhost:${sidecar.port}/hello`;
  return {
    sidecar,
    echo,
    pki,
    configFile,
    curl,
    async close() {
      await sidecar.close(2_000);
      await echo.close();
    },
  };
}
