/**
 * Reading the option values `parseArgs` gave the `ca` and `device` commands: required strings and
 * `--key`. Usage mistakes are SidecarError ERR_USAGE (cli.ts exits 2).
 */
import { SidecarError } from './errors.js';
import type { KeyAlgorithm } from './pki/index.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

const KEYS: readonly KeyAlgorithm[] = ['p256', 'p384', 'rsa2048', 'rsa3072'];

/** The string value of a required `--name`. Throws ERR_USAGE naming `command` when it is missing or empty. */
export function need(values: Values, name: string, command: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new SidecarError('ERR_USAGE', name, `${command} needs --${name}`);
  return v;
}

/** `--key` as a key algorithm, else `fallback`. Throws ERR_USAGE for an unknown algorithm. */
export function keyOf(values: Values, fallback: KeyAlgorithm | undefined = 'p256'): KeyAlgorithm | undefined {
  const key = (values.key as string | undefined) ?? fallback;
  if (key === undefined) return undefined;
  if (!KEYS.includes(key as KeyAlgorithm)) throw new SidecarError('ERR_USAGE', 'key', `--key must be one of ${KEYS.join(', ')}`);
  return key as KeyAlgorithm;
}
