/**
 * The `ca …` and `device …` commands of the CLI (dispatched from cli.ts, which owns exit codes).
 *   ca init --dir D [--name N] [--hostname H]... [--base-url URL] [--key p256|p384|rsa2048|rsa3072]
 *   ca serve --config FILE
 *   ca pins --config FILE [--format android|ios|jws|all]
 *   device enroll --url URL --ca-cert FILE --device-id ID --code CODE [--out DIR] [--key p256] [--p12-password PW]
 *   device renew --url URL --ca-cert FILE [--dir DIR] [--key p256] [--p12-password PW]
 */
import { resolve } from 'node:path';
import { loadCaConfigFile } from './config/index.js';
import { enrollDevice, renewDevice } from './device/index.js';
import { initCa, renderPins, runCa, type PinsFormat } from './enroll/index.js';
import { SidecarError } from './errors.js';
import { handleSignals } from './lifecycle.js';
import type { KeyAlgorithm } from './pki/index.js';

type Values = Record<string, string | boolean | string[] | undefined>;

const KEYS: readonly KeyAlgorithm[] = ['p256', 'p384', 'rsa2048', 'rsa3072'];

function need(values: Values, name: string, command: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new SidecarError('ERR_USAGE', name, `${command} needs --${name}`);
  return v;
}

function keyOf(values: Values, fallback: KeyAlgorithm | undefined = 'p256'): KeyAlgorithm | undefined {
  const key = (values.key as string | undefined) ?? fallback;
  if (key === undefined) return undefined;
  if (!KEYS.includes(key as KeyAlgorithm)) throw new SidecarError('ERR_USAGE', 'key', `--key must be one of ${KEYS.join(', ')}`);
  return key as KeyAlgorithm;
}

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

/** Runs a `device` subcommand; resolves to the exit code. */
export async function runDeviceCommand(sub: string | undefined, values: Values): Promise<number> {
  const p12Password = values['p12-password'] as string | undefined;
  switch (sub) {
    case 'enroll': {
      const result = await enrollDevice({
        url: need(values, 'url', 'device enroll'),
        caCertFile: need(values, 'ca-cert', 'device enroll'),
        deviceId: need(values, 'device-id', 'device enroll'),
        code: need(values, 'code', 'device enroll'),
        keyAlgorithm: keyOf(values) ?? 'p256',
        outDir: resolve((values.out as string | undefined) ?? '.'),
        ...(p12Password ? { p12Password } : {}),
      });
      process.stdout.write(`enrolled: serial ${result.serial}, valid until ${result.notAfter.toISOString()}\n`);
      return 0;
    }
    case 'renew': {
      const result = await renewDevice({
        url: need(values, 'url', 'device renew'),
        caCertFile: need(values, 'ca-cert', 'device renew'),
        dir: resolve((values.dir as string | undefined) ?? '.'),
        // Without --key the new key has the current key's type.
        ...(values.key ? { keyAlgorithm: keyOf(values) } : {}),
        ...(p12Password ? { p12Password } : {}),
      });
      process.stdout.write(`renewed: serial ${result.serial}, valid until ${result.notAfter.toISOString()}\n`);
      return 0;
    }
    default:
      throw new SidecarError('ERR_USAGE', 'command', `unknown device command "${sub ?? ''}" (enroll or renew)`);
  }
}
