/**
 * The `ca …` commands of the CLI (loaded on demand by cli.ts, which owns exit codes).
 *   ca init --dir D [--name N] [--hostname H]... [--base-url URL] [--key p256|p384|rsa2048|rsa3072]
 *   ca serve --config FILE
 *   ca pins --config FILE [--format android|ios|jws|all]
 */
import { resolve } from 'node:path';
import { keyOf, need, type Values } from './cli-args.js';
import { loadCaConfigFile } from './config/index.js';
import { initCa, renderPins, runCa, type PinsFormat } from './enroll/index.js';
import { SidecarError } from './errors.js';
import { handleSignals } from './lifecycle.js';

/** Runs a `ca` subcommand; resolves to the exit code. */
export async function runCaCommand(sub: string | undefined, values: Values): Promise<number> {
  switch (sub) {
    case 'init': {
      const dir = resolve(need(values, 'dir', 'ca init'));
      const hostnames = (values.hostname as string[] | undefined) ?? ['localhost'];
      const result = await initCa({
        dir,
        name: (values.name as string | undefined) ?? 'mtls-sidecar Device',
        algorithm: keyOf(values) ?? 'p256',
        hostnames,
        publishBaseUrl: (values['base-url'] as string | undefined) ?? 'http://localhost:8080',
      });
      process.stdout.write(
        [
          `device CA created in ${dir}`,
          `  config:            ${result.config}   (run: mtls-sidecar ca serve --config ${result.config})`,
          `  trust for devices: ${result.rootCert}   (the proxy's clientAuth.caBundle: issuing-ca.pem + root-ca.pem)`,
          `  pin-signing key:   ${result.pinSigningPublicKey}   (ship it in the app)`,
          `  admin token:       ${result.adminToken}`,
          '  Keep root-ca.key and pin-backup.key offline once you are done with them.',
          '',
        ].join('\n'),
      );
      return 0;
    }
    case 'serve': {
      const config = loadCaConfigFile(need(values, 'config', 'ca serve'));
      const ca = await runCa(config);
      await handleSignals({ close: () => ca.close() });
      return 0;
    }
    case 'pins': {
      const config = loadCaConfigFile(need(values, 'config', 'ca pins'));
      if (!config.pins) throw new SidecarError('ERR_USAGE', 'pins', 'the config has no pins section');
      const format = (values.format as string | undefined) ?? 'all';
      if (!['android', 'ios', 'jws', 'all'].includes(format)) throw new SidecarError('ERR_USAGE', 'format', '--format must be android, ios, jws or all');
      process.stdout.write(await renderPins(config.pins, format as PinsFormat));
      return 0;
    }
    default:
      throw new SidecarError('ERR_USAGE', 'command', `unknown ca command "${sub ?? ''}" (init, serve or pins)`);
  }
}
