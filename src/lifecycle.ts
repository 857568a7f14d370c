/**
 * Process signals: SIGHUP → reload; SIGTERM/SIGINT → drain with a deadline, once (a second signal
 * does not start a second drain).
 */

/** Something that can drain and reload. */
export interface Managed {
  close(graceMs?: number): Promise<void>;
  reload?(trigger?: string): void;
}

/** Installs the handlers; returns a promise that settles once the drain finished. */
export function handleSignals(target: Managed, onSignal?: (signal: NodeJS.Signals) => void): Promise<void> {
  return new Promise((resolve) => {
    let started = false;
    const stop = (signal: NodeJS.Signals) => {
      onSignal?.(signal);
      if (started) return;
      started = true;
      target.close().then(resolve, resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', (signal) => {
      onSignal?.(signal);
      target.reload?.('SIGHUP');
    });
  });
}
