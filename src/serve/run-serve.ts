/**
 * `serve` in the shape the config asks for: one process, or a node:cluster primary and its
 * workers (workers.ts).
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { SidecarConfig } from '../config/index.js';
import { handleSignals } from '../lifecycle.js';
import { startSidecar } from './start-sidecar.js';
import { runPrimary, runWorker } from './workers.js';

/** How many workers `workers` means on this machine. Pure apart from reading the CPU count. */
function workerCount(workers: SidecarConfig['workers']): number {
  return workers === 'auto' ? Math.max(1, availableParallelism()) : workers;
}

/** Runs `serve` until a signal has drained it. Resolves with the exit code; rejects with a SidecarError if it cannot start. */
export async function runServe(config: SidecarConfig): Promise<number> {
  const n = workerCount(config.workers);
  if (cluster.isWorker) return runWorker(config, n);
  if (n === 1) {
    const sidecar = await startSidecar(config);
    await handleSignals(sidecar, (signal) => sidecar.logger.info({ event: 'signal', signal }, `received ${signal}`));
    return 0;
  }
  return runPrimary(config, n);
}
