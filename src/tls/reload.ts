/**
 * Hot reload of the TLS material, all-or-nothing (ghostunnel's contract): the files are compared
 * by content on an interval and on demand (SIGHUP); when they changed, the complete new material
 * is loaded and checked first, and only then handed to `apply`. If anything fails, the old
 * material keeps serving and the failure is reported once per distinct content.
 *
 * Content, not mtime or inotify: Kubernetes updates a secret volume by swapping a `..data`
 * symlink, which watchers on the files miss and which can keep mtimes unchanged.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadTlsMaterial, type TlsMaterial, type TlsMaterialPaths } from './material.js';

export type ReloadOutcome =
  | { readonly result: 'success'; readonly material: TlsMaterial; readonly trigger: string }
  | { readonly result: 'failure'; readonly error: Error; readonly trigger: string };

export interface MaterialReloaderOptions {
  readonly paths: TlsMaterialPaths;
  /** 0 disables polling; `reload()` still works. */
  readonly intervalMs: number;
  /** Installs new, fully checked material. If it throws, that counts as a failed reload. */
  readonly apply: (material: TlsMaterial) => void;
  readonly onOutcome: (outcome: ReloadOutcome) => void;
  readonly load?: (paths: TlsMaterialPaths) => TlsMaterial;
}

export interface MaterialReloader {
  /** Checks now. `force` reloads even when the content looks unchanged (SIGHUP). Never throws. */
  reload(trigger: string, force?: boolean): void;
  stop(): void;
}

/** A digest of every file's bytes (unreadable files hash as their error, so a fix is seen). */
function contentDigest(paths: TlsMaterialPaths): string {
  const h = createHash('sha256');
  for (const file of [paths.cert, paths.key, ...paths.caBundle]) {
    try {
      h.update(readFileSync(file));
    } catch (err) {
      h.update(`error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`);
    }
    h.update('\0');
  }
  return h.digest('hex');
}

/** Starts polling (timer unref'd). The material in use at start is taken as the baseline. */
export function createMaterialReloader(options: MaterialReloaderOptions): MaterialReloader {
  const load = options.load ?? loadTlsMaterial;
  // The last content we acted on, success or failure: a broken file is reported once, not every tick.
  let seen = contentDigest(options.paths);

  function reload(trigger: string, force = false): void {
    const digest = contentDigest(options.paths);
    if (!force && digest === seen) return;
    seen = digest;
    let material: TlsMaterial;
    try {
      material = load(options.paths);
      options.apply(material);
    } catch (error) {
      options.onOutcome({ result: 'failure', error: error as Error, trigger });
      return;
    }
    options.onOutcome({ result: 'success', material, trigger });
  }

  const timer = options.intervalMs > 0 ? setInterval(() => reload('poll'), options.intervalMs) : undefined;
  timer?.unref();
  return {
    reload,
    stop: () => clearInterval(timer),
  };
}
