/**
 * What `startSidecar` takes and gives back: the contract the cluster workers, the dev quick start
 * and the tests rely on.
 */
import type { Server } from 'node:https';
import type { ReadinessCheck } from '../admin/index.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import type { QuarantineEntry } from '../policy/index.js';
import type { TopDevice, TopOrder } from '../policy/index.js';

/** A started sidecar. */
export interface RunningSidecar {
  /** `https://host:port` of the data listener (loopback name when bound to all interfaces). */
  readonly url: string;
  readonly port: number;
  /** `http://host:port` of the admin listener, when enabled. */
  readonly adminUrl: string | undefined;
  readonly server: Server;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** What `/readyz` checks for this process; a worker reports them to the primary, which serves them. */
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /** What works worse than configured now (e.g. `revocationFeed`), for `/readyz`'s `degraded`; never gates. */
  degraded(): Record<string, string>;
  /** Replaces the quarantine's API entries (a worker, from the primary); closes the connections of added devices. Never throws. */
  replaceQuarantineApiEntries(entries: readonly QuarantineEntry[]): void;
  /** The busiest devices of this process (`/debug/top-devices`), or undefined when no per-device limit tracks them. */
  topDevices(n: number, order: TopOrder): TopDevice[] | undefined;
  /** Takes another worker's path hint. Never throws; a no-op without `publishPathHint`. */
  receivePathHint(leafFingerprint: string, ders: readonly Buffer[]): void;
  /** Re-reads the TLS material now (SIGHUP). Never throws: a failure keeps the old material. */
  reload(trigger?: string): void;
  /** True once close() has begun. */
  readonly draining: boolean;
  /** Stops accepting, turns readiness false, closes idle connections, waits for the rest up to `graceMs`, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** Session-ticket keys shared by all workers (48 bytes). */
  readonly ticketKeys?: Buffer;
  /** Workers serve no admin listener of their own: the primary aggregates. */
  readonly admin?: boolean;
  /** Workers: sends a path hint to the other workers (see path-hints.ts); they answer through `receivePathHint`. */
  readonly publishPathHint?: (leafFingerprint: string, ders: readonly Buffer[]) => void;
  /** Processes sharing the data port (workers); each takes its share of `limits.maxConnections`. Default 1. */
  readonly workerCount?: number;
}
