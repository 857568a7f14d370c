/**
 * The global cap on open client connections, sized to memory so a connection flood is refused at
 * the door instead of getting the container OOM-killed (which would drop every device at once).
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

/**
 * Memory one open mTLS connection holds in the sidecar: 73 KB per idle connection on Node 24
 * (README, Performance, "Idle connections"), rounded up for the buffers of a request in flight.
 */
export const BYTES_PER_CONNECTION = 80 * 1024;
/** What the process holds before any connection: heap, caches, code (the idle sidecar is ~70 MB RSS). */
export const BASELINE_BYTES = 96 * 1024 * 1024;
/** Share of what is left that connections may take; the rest is headroom for bursts and GC. */
const CONNECTION_SHARE = 0.75;
/** Never below this many, so a tiny budget still serves. */
const MIN_CONNECTIONS = 64;

/** Where cgroup v2 (and v1) say how much memory the container may use. */
const CGROUP_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

export interface ConnectionCap {
  /** Connections the whole sidecar may hold. */
  readonly total: number;
  /** This process's share (`total` split evenly over the workers, rounded up). */
  readonly perProcess: number;
  /** What sized it: `config` (a number), `memoryBudgetMiB`, `cgroup` or `machine`. */
  readonly source: 'config' | 'memoryBudgetMiB' | 'cgroup' | 'machine';
  /** The memory it was sized from, bytes (absent for `config`). */
  readonly budgetBytes?: number;
}

/**
 * The cap from `limits.maxConnections` (a number, or `auto`: from `memoryBudgetMiB`, else the
 * cgroup memory limit, else the machine's memory), shared by `workers` processes. Sync; reads
 * the cgroup files only for `auto` without a budget; never throws (an unreadable file is skipped).
 */
export function resolveConnectionCap(
  limits: { readonly maxConnections: number | 'auto'; readonly memoryBudgetMiB?: number | undefined },
  workers: number,
  readCgroupLimit: () => number | undefined = cgroupMemoryLimit,
): ConnectionCap {
  const share = (total: number) => Math.max(1, Math.ceil(total / Math.max(1, workers)));
  if (limits.maxConnections !== 'auto') return { total: limits.maxConnections, perProcess: share(limits.maxConnections), source: 'config' };
  const [budgetBytes, source] =
    limits.memoryBudgetMiB !== undefined
      ? [limits.memoryBudgetMiB * 1024 * 1024, 'memoryBudgetMiB' as const]
      : ((b) => (b !== undefined ? [b, 'cgroup' as const] : [totalmem(), 'machine' as const]))(readCgroupLimit());
  const total = Math.max(MIN_CONNECTIONS, Math.floor(((budgetBytes - BASELINE_BYTES) * CONNECTION_SHARE) / BYTES_PER_CONNECTION));
  return { total, perProcess: share(total), source, budgetBytes };
}

/** The container's memory limit in bytes, or undefined when unlimited or unreadable. */
export function cgroupMemoryLimit(): number | undefined {
  for (const file of CGROUP_FILES) {
    try {
      const text = readFileSync(file, 'utf8').trim();
      const bytes = Number(text);
      // cgroup v2 says "max"; v1 says a huge number (PAGE_COUNTER_MAX) when unlimited.
      if (Number.isSafeInteger(bytes) && bytes > 0 && bytes < 2 ** 60) return bytes;
      return undefined;
    } catch {
      // not this cgroup version, or not in a container
    }
  }
  return undefined;
}
