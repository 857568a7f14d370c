#!/usr/bin/env node
/**
 * The only entry point and the only `process.exit`. Commands:
 *   serve --config FILE     run the sidecar
 *   check-config FILE       validate a config and its certificate files; exit 0 or print why
 *   dev [--port N] [--dir D] the quick start: throwaway PKI + echo upstream + sidecar
 *   ca init|serve|pins       the device CA (a separate process: the proxy never holds a CA key)
 *   device enroll|renew      a device simulator for the CA's enrollment API
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from './config/index.js';
import { isSidecarError, SidecarError, type SidecarErrorCode } from './errors.js';
import { handleSignals } from './lifecycle.js';
import { flushLogs } from './logging.js';
import { checkConfig, runServe } from './serve/index.js';

const HELP = `mtls-sidecar — a mutual-TLS terminating reverse proxy with verified device-identity headers

Usage:
  mtls-sidecar serve --config FILE    Run the sidecar with a YAML config (see config/sidecar.example.yaml)
  mtls-sidecar check-config FILE      Validate a config and the files it names; exit 0 if good
  mtls-sidecar dev [--port 8443] [--admin-port 9090] [--dir .dev-pki]
                                      Quick start: throwaway dev PKI, an echo upstream, and the
                                      sidecar in front of it; prints a curl line that works
  mtls-sidecar ca init --dir DIR [--name NAME] [--hostname H]... [--base-url URL] [--key p256]
                                      Create a device CA (root, issuing CA, OCSP signer, TLS and
                                      pin-signing keys, secrets) and a ca.yaml; never overwrites
  mtls-sidecar ca serve --config FILE Run the device CA: enrollment, admin and CRL/OCSP/pins listeners
  mtls-sidecar ca pins --config FILE [--format android|ios|jws|all]
                                      Print the pin set for an app release
  mtls-sidecar device enroll --url URL --ca-cert FILE --device-id ID --code CODE [--out DIR] [--key p256]
  mtls-sidecar device renew --url URL --ca-cert FILE [--dir DIR] [--key p256]
                                      Simulate a device: make a key and CSR, enroll or renew, and
                                      write device.key, device.pem, chain.pem and device.p12
  mtls-sidecar --help | --version

Exit codes: 0 ok, 1 runtime failure, 2 usage or invalid config (the same for serve and check-config).
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string' },
      'admin-port': { type: 'string' },
      dir: { type: 'string' },
      name: { type: 'string' },
      hostname: { type: 'string', multiple: true },
      'base-url': { type: 'string' },
      key: { type: 'string' },
      format: { type: 'string' },
      url: { type: 'string' },
      'ca-cert': { type: 'string' },
      'device-id': { type: 'string' },
      code: { type: 'string' },
      out: { type: 'string' },
      'p12-password': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  switch (command) {
    case 'serve': {
      if (!values.config) throw new SidecarError('ERR_USAGE', 'config', 'serve needs --config FILE (for a throwaway demo, run `mtls-sidecar dev`)');
      return runServe(loadConfigFile(values.config));
    }
    case 'check-config': {
      const file = rest[0] ?? values.config;
      if (!file) throw new SidecarError('ERR_USAGE', 'config', 'check-config needs a FILE');
      await checkConfig(loadConfigFile(file));
      process.stdout.write(`${file}: ok\n`);
      return 0;
    }
    case 'dev': {
      const port = values.port === undefined ? 8443 : Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new SidecarError('ERR_USAGE', 'port', `--port must be 0-65535, got ${values.port}`);
      const adminPort = values['admin-port'] === undefined ? 9090 : Number(values['admin-port']);
      if (!Number.isInteger(adminPort) || adminPort < 0 || adminPort > 65535) throw new SidecarError('ERR_USAGE', 'admin-port', `--admin-port must be 0-65535, got ${values['admin-port']}`);
      // Loaded on demand: `serve` should not carry the dev PKI's or the device CA's code and
      // libraries (better-sqlite3, jose, certificate issuing): ~16 MB of RSS in every sidecar.
      const { runDev } = await import('./dev/index.js');
      const run = await runDev({ dir: resolve(values.dir ?? '.dev-pki'), port, adminPort });
      process.stdout.write(
        [
          '',
          `mtls-sidecar dev: ${run.sidecar.url} -> echo upstream ${run.echo.url}`,
          `  throwaway PKI in ${run.pki.dir} (device id "${run.pki.deviceId}", PKCS#12 password "${run.pki.p12Password}")`,
          '',
          'Try it (with the device certificate):',
          `  ${run.curl}`,
          'Without a certificate you get the JSON reason (dev runs failureMode: http):',
          `  curl --cacert ${run.pki.caCert} https://localhost:${run.sidecar.port}/hello`,
          `Metrics, liveness and readiness: ${run.sidecar.adminUrl}/metrics /healthz /readyz`,
          '',
          'Ctrl-C stops it.',
          '',
        ].join('\n'),
      );
      await handleSignals({ close: () => run.close(), reload: () => run.sidecar.reload() });
      return 0;
    }
    case 'ca':
      return (await import('./cli-ca.js')).runCaCommand(rest[0], values);
    case 'device':
      return (await import('./cli-device.js')).runDeviceCommand(rest[0], values);
    case undefined:
      process.stdout.write(HELP);
      return 2;
    default:
      throw new SidecarError('ERR_USAGE', 'command', `unknown command "${command}" (try --help)`);
  }
}

/**
 * The exit status of each error code: 2 for what the operator must fix in the command line, the
 * config or the files it names (the same for `serve` and `check-config`), 1 for the rest. A
 * Record, so a new code cannot be added without choosing.
 */
const EXIT_STATUS: Readonly<Record<SidecarErrorCode, 1 | 2>> = {
  ERR_USAGE: 2,
  ERR_CONFIG_READ: 2,
  ERR_CONFIG_INVALID: 2,
  ERR_TLS_MATERIAL: 2,
  ERR_REVOCATION_SOURCE: 2,
  ERR_LISTEN: 1,
  ERR_PKI: 1,
  ERR_ENROLL: 1,
  ERR_STORE: 1,
};

/** Every way out: buffered log lines are written before the process ends. */
function exit(code: number): never {
  flushLogs();
  process.exit(code);
}

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (err: unknown) => {
    if (isSidecarError(err)) {
      process.stderr.write(`mtls-sidecar: ${err.message}\n`);
      exit(EXIT_STATUS[err.code]);
    }
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`mtls-sidecar: ${err.message}\n`);
      exit(2);
    }
    process.stderr.write(`mtls-sidecar: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
    exit(1);
  },
);
