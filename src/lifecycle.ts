/**
 * Process signals. SIGTERM/SIGINT drain with a deadline then resolve `stopped`; a second signal
 * does not start a second drain.
 */

/** Something that can drain. */
export interface Drainable {
  close(graceMs?: number): Promise<void>;
}

/** Installs the handlers; returns a promise that settles once the drain finished. */
export function handleShutdownSignals(target: Drainable, graceMs: number, onSignal?: (signal: NodeJS.Signals) => void): Promise<void> {
  return new Promise((resolve) => {
    let started = false;
    const stop = (signal: NodeJS.Signals) => {
      onSignal?.(signal);
      if (started) return;
      started = true;
      target.close(graceMs).then(resolve, resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
