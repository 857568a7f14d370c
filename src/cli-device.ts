/**
 * The `device …` commands of the CLI: the device simulator (loaded on demand by cli.ts, which owns
 * exit codes). It needs neither the CA's code nor its libraries.
 *   device enroll --url URL --ca-cert FILE --device-id ID --code CODE [--out DIR] [--key p256] [--p12-password PW]
 *   device renew --url URL --ca-cert FILE [--dir DIR] [--key p256] [--p12-password PW]
 */
import { resolve } from 'node:path';
import { keyOf, need, type Values } from './cli-args.js';
import { enrollDevice, renewDevice } from './device/index.js';
import { SidecarError } from './errors.js';

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
