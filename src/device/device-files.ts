/**
 * The device folder the simulator keeps, laid out the way a mobile app's keystore export looks:
 *
 *   device.key  the private key, unencrypted PKCS#8 PEM, mode 0600
 *   device.pem  the leaf, then the chain (what curl's --cert and Node's `cert` take)
 *   chain.pem   the issuing CA, then its parents up to the root
 *   device.p12  key + leaf + chain, password-protected (iOS, Android, Java, curl --cert-type P12), mode 0600
 *
 * New files are written next to the old ones under temporary names and only then renamed over
 * them, so a failure before the renames leaves every old file as it was.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SidecarError } from '../errors.js';

/** Where each file of a device folder lives. */
export interface DeviceFiles {
  readonly dir: string;
  /** `device.key`: PKCS#8 PEM, mode 0600. */
  readonly keyFile: string;
  /** `device.pem`: leaf then chain. */
  readonly certFile: string;
  /** `chain.pem`: issuing CA then root. */
  readonly chainFile: string;
  /** `device.p12`: PKCS#12 of key, leaf and chain, mode 0600. */
  readonly p12File: string;
}

/** What gets written into a device folder. */
export interface DeviceMaterial {
  readonly keyPem: string;
  /** Leaf then chain. */
  readonly certPem: string;
  readonly chainPem: string;
  readonly p12: Buffer;
}

/** A device folder's current key and certificate, cross-checked. */
export interface CurrentDevice {
  readonly keyPem: string;
  /** `device.pem` as found: leaf then chain. */
  readonly certPem: string;
  readonly leaf: X509Certificate;
}

/** The paths of a device folder. Pure. */
export function deviceFilesIn(dir: string): DeviceFiles {
  return {
    dir,
    keyFile: join(dir, 'device.key'),
    certFile: join(dir, 'device.pem'),
    chainFile: join(dir, 'chain.pem'),
    p12File: join(dir, 'device.p12'),
  };
}

/**
 * Creates `dir` (mode 0700 when new) and checks that it is writable, so that a call to the CA is
 * not made when its answer could not be saved. Async; rejects with `ERR_ENROLL` fault
 * `device_files`. Creates no file.
 */
export async function prepareDeviceDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK);
  } catch (cause) {
    throw new SidecarError('ERR_ENROLL', 'device_files', `cannot write to the device folder ${dir}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Writes the four files of {@link DeviceFiles} into `dir` (which must exist), replacing old
 * ones. Every file is first written and flushed under a temporary name (key and PKCS#12 created
 * 0600, never briefly readable by others); only when all four are on disk are they renamed over
 * the old ones, key last. A failure before that point removes the temporary files and leaves
 * the old set untouched. Each rename is atomic, the set of four is not: a crash between renames
 * can leave a new certificate beside the old key (enroll again). Async; rejects with
 * `ERR_ENROLL` fault `device_files`.
 */
export async function writeDeviceFiles(dir: string, material: DeviceMaterial): Promise<DeviceFiles> {
  const files = deviceFilesIn(dir);
  const tag = randomBytes(6).toString('hex');
  const plan: Array<{ file: string; data: string | Buffer; mode: number }> = [
    { file: files.p12File, data: material.p12, mode: 0o600 },
    { file: files.chainFile, data: material.chainPem, mode: 0o644 },
    { file: files.certFile, data: material.certPem, mode: 0o644 },
    { file: files.keyFile, data: material.keyPem, mode: 0o600 },
  ];
  const temps = plan.map((p) => ({ ...p, temp: join(dir, `.${basename(p.file)}.${tag}.tmp`) }));
  try {
    for (const t of temps) await writeNew(t.temp, t.data, t.mode);
  } catch (cause) {
    await Promise.all(temps.map((t) => unlink(t.temp).catch(() => undefined)));
    throw new SidecarError('ERR_ENROLL', 'device_files', `cannot write the device files in ${dir}: ${(cause as Error).message}`, { cause });
  }
  try {
    for (const t of temps) await rename(t.temp, t.file);
  } catch (cause) {
    await Promise.all(temps.map((t) => unlink(t.temp).catch(() => undefined)));
    throw new SidecarError('ERR_ENROLL', 'device_files', `cannot replace the device files in ${dir}: ${(cause as Error).message}`, { cause });
  }
  await syncDir(dir);
  return files;
}

/**
 * Reads `device.key` and `device.pem` from `dir` and checks that the key belongs to the leaf.
 * Async; rejects with `ERR_TLS_MATERIAL` whose `fault` is the file. Never modifies a file.
 */
export async function readDeviceFiles(dir: string): Promise<CurrentDevice> {
  const files = deviceFilesIn(dir);
  const keyPem = await readText(files.keyFile);
  const certPem = await readText(files.certFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (cause) {
    throw materialError(files.certFile, `${files.certFile} holds no readable certificate`, cause);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keyPem));
  } catch (cause) {
    throw materialError(files.keyFile, `${files.keyFile} holds no readable private key`, cause);
  }
  if (!matches) throw materialError(files.keyFile, `${files.keyFile} is not the key of the certificate in ${files.certFile}`);
  return { keyPem, certPem, leaf };
}

async function writeNew(file: string, data: string | Buffer, mode: number): Promise<void> {
  const handle = await open(file, 'wx', mode); // wx: never follow a planted symlink or reuse a file
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Makes the renames durable. Some platforms cannot open or fsync a directory; the files are
// already in place then, so this is best effort.
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw materialError(file, `cannot read ${file}: ${(cause as Error).message} (enroll the device first)`, cause);
  }
}

function materialError(file: string, message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_TLS_MATERIAL', file, message, cause === undefined ? undefined : { cause });
}
